"""Sequential: a Model whose graph is a chain, one layer after the other.

    model = Sequential([Input((28, 28, 1)), Conv2D(32, 3), Flatten(), Dense(10)])
    model = Sequential([Conv2D(32, 3, input_shape=(28, 28, 1)), ...])   # the same
    model = Sequential([Conv2D(32, 3), ...])    # built on the first data it sees

As Keras 3's: once the input shape is known (an Input, a first layer's input_shape or
built weights, build(), or the first data), each layer is called on the previous one's
output, which makes the functional graph the model runs. Layers that are already built
keep their weights: Sequential(model.layers + [Softmax()]) shares them with ``model``.
"""

from engine import serialization, utils
from engine.keras_tensor import KerasTensor
from engine.model import Model
from layers.base import Layer
from layers.input_layer import Input, InputLayer


@serialization.register_model("Sequential")
class Sequential(Model):
    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name or utils.unique_name("sequential"), trainable=trainable)
        self._stack = []
        self._input_layer = None
        self.built = False
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        """The layers added, in order (the Input, if one was given, is not among them)."""
        return list(self._stack)

    def add(self, layer):
        """Append a layer (or put an Input first). A layer that cannot take the current
        output's shape is refused and nothing changes."""
        if isinstance(layer, KerasTensor) and isinstance(layer.node.layer, InputLayer):
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(
                    f"Sequential {self.name!r}: an Input can only come first, before any layer."
                )
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential.add expects a Layer, got {type(layer).__name__}: {layer!r}."
            )
        if self.built:
            output = layer(self._outputs[0])  # builds it, or refuses it, before it is added
            self._stack.append(layer)
            self._set_graph(self._inputs[0], output)
            return
        self._stack.append(layer)
        shape = self._known_input_shape()
        if shape is not None:
            try:
                self.build(shape)
            except ValueError:
                self._stack.pop()
                raise

    def _known_input_shape(self):
        if self._input_layer is not None:
            return self._input_layer.input_shape
        first = self._stack[0]
        return first.input_shape

    def pop(self):
        """Remove the last layer (as Keras's Sequential.pop)."""
        if not self._stack:
            raise ValueError(f"Sequential {self.name!r} has no layers to pop.")
        layer = self._stack.pop()
        if self.built and self._stack:
            self._set_graph(self._inputs[0], self._nodes[-2].outputs[0])
        elif self.built:
            self.built, self._nodes, self._outputs, self._layers = False, [], [], []
        return layer

    def build(self, input_shape=None):
        """Build every layer for per-sample inputs of ``input_shape`` (a leading None is dropped).

        The whole stack is checked first: a shape that does not fit builds nothing.
        """
        if not self._stack:
            raise ValueError("Sequential.build: the model has no layers; add some first.")
        if input_shape is None:
            input_shape = self._known_input_shape()
            if input_shape is None:
                raise ValueError("Sequential.build needs an input shape, e.g. build((28, 28, 1)).")
        shape = utils.standardize_shape(input_shape)
        if self.built:
            if shape != self.input_shape:
                raise ValueError(
                    f"Sequential {self.name!r} was built for inputs {self.input_shape}, "
                    f"got {shape}."
                )
            return
        self._output_shape_for(shape)  # check the whole stack first
        if self._input_layer is not None and self._input_layer.input_shape == shape:
            x = inputs = self._input_layer.output
        else:
            x = inputs = Input(shape)
        for layer in self._stack:
            x = layer(x)
        self._set_graph(inputs, x)

    def _output_shape_for(self, input_shape):
        """The model's per-sample output shape for ``input_shape``; builds nothing.

        Raises ValueError naming the first layer that cannot take its input.
        """
        shape = utils.standardize_shape(input_shape)
        for layer in self._stack:
            shape = layer.check_input_shape(shape)
            if isinstance(shape, list):
                raise ValueError(
                    f"Layer {layer.name!r} has {len(shape)} outputs; in a Sequential model "
                    "every layer has one (use the functional API: engine.Model)."
                )
        return shape

    def compute_output_shape(self, input_shape):
        if not self.built:
            return self._output_shape_for(input_shape)
        return super().compute_output_shape(input_shape)

    _summary_shows_connections = False

    def get_config(self):
        """The layers' configs in order, and the input shape once built."""
        config = {
            "name": self.name,
            "layers": [serialization.layer_entry(layer) for layer in self._stack],
        }
        if self.built:
            config["input_shape"] = list(self.input_shape)
        if not self.trainable:
            config["trainable"] = False
        return config

    def _own_layers(self):
        return list(self._stack)
