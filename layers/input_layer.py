"""InputLayer and Input: where a functional graph starts.

    x = Input(shape=(28, 28, 1))    # a KerasTensor of shape (None, 28, 28, 1)

Data are cast to floatx() on their way in, whatever the dtype declared here.
"""

from engine import backend, utils
from engine.node import Node
from layers.base import Layer


class InputLayer(Layer):
    """The layer behind Input(): it has no weights and one node without inputs."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
        super().__init__(name=name)
        if batch_shape is not None:
            if shape is not None:
                raise ValueError("InputLayer takes shape or batch_shape, not both.")
            shape = tuple(batch_shape)[1:]
        if shape is None:
            raise ValueError("Input needs a shape, e.g. Input(shape=(28, 28, 1)).")
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape,)
        self.input_shape = utils.standardize_shape(shape, "Input shape")
        self.batch_size = batch_size
        self.dtype = dtype or backend.floatx()
        self.built = True
        Node(self, [], [self.input_shape], self.dtype)

    def compute_output_shape(self, input_shape):
        return self.input_shape

    def forward(self, x, ctx):
        return x

    def get_config(self):
        return {"name": self.name, "shape": list(self.input_shape)}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):  # noqa: N802 (Keras's name)
    """A symbolic input of ``shape`` per sample (no batch axis), as keras.Input."""
    layer = InputLayer(
        shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape
    )
    return layer.output
