"""The Layer protocol every layer follows.

build(input_shape)          create parameters for a per-sample shape (no batch axis;
                            a leading None is accepted); called lazily on first use
forward(x, training=False)  the output; with training=True it keeps what backward needs
backward(dy) -> dx          fills ``grads`` and returns the gradient for the input
params, grads               dicts name -> array ('kernel', 'bias'); params are the
                            live parameters that optimizers update in place
output_shape(input_shape)   the per-sample output shape
"""

import numpy as np

from engine import backend, initializers, utils


class Layer:
    def __init__(self, name=None, input_shape=None):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Layer name must be a non-empty string, got {name!r}.")
        self.name = name or utils.unique_name(utils.snake_case(type(self).__name__))
        self.input_shape = None if input_shape is None else utils.standardize_shape(input_shape)
        self.params = {}
        self.grads = {}
        self.built = False

    def build(self, input_shape):
        """Record the per-sample input shape; subclasses create parameters after this."""
        input_shape = utils.standardize_shape(input_shape)
        if self.input_shape is not None and self.built and input_shape != self.input_shape:
            raise ValueError(
                f"Layer {self.name!r} was built for inputs of shape {self.input_shape}, "
                f"got {input_shape}."
            )
        self.output_shape(input_shape)  # validates the shape before anything is created
        self.input_shape = input_shape
        self.built = True
        return input_shape

    def __call__(self, x, training=False):
        if not self.built:
            self.build(x.shape[1:])
        return self.forward(x, training=training)

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def output_shape(self, input_shape):
        return utils.standardize_shape(input_shape)

    def add_weight(self, name, shape, initializer):
        """Create parameter ``name``: drawn on the host, cast to floatx(), moved to the device."""
        values = initializers.get(initializer)(tuple(shape), utils.global_rng())
        self.params[name] = backend.to_device(np.asarray(values), dtype=backend.floatx())
        self.grads[name] = None
        return self.params[name]

    def count_params(self):
        return int(sum(p.size for p in self.params.values()))

    def get_weights(self):
        """Copies of the parameters as NumPy arrays, in Keras's order (kernel, bias)."""
        return [backend.to_numpy(p).copy() for p in self.params.values()]

    def get_config(self):
        """Constructor arguments that rebuild this layer (saved with the model)."""
        config = {"name": self.name}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def initializer_config(initializer):
    """An initialiser as saved in a config: its name; a callable saves as 'zeros'
    because the saved weights, not the initialiser, carry its effect."""
    return initializer if isinstance(initializer, str) else "zeros"
