"""Dense and Flatten."""

import math

from engine import initializers, utils
from layers import activations
from layers.base import Layer, initializer_config


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...), in channels-last (C) order as Keras."""

    def output_shape(self, input_shape):
        return (math.prod(utils.standardize_shape(input_shape)),)

    def forward(self, x, training=False):
        if training:  # an inference call in between leaves what backward needs
            self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._x_shape)


class Dense(Layer):
    """y = activation(x @ kernel + bias) with a kernel of shape (in, units)."""

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        input_shape=None,
        name=None,
    ):
        super().__init__(name=name, input_shape=input_shape)
        self.units = utils.positive_int(units, "Dense units")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        for initializer in (kernel_initializer, bias_initializer):
            initializers.get(initializer)  # an unknown name fails here, not at build time
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._cache = None

    def output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense {self.name!r} expects flat inputs (features,), got {input_shape}; "
                "put a Flatten() before it."
            )
        return (self.units,)

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        self.add_weight("kernel", (input_shape[0], self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)

    def forward(self, x, training=False):
        out = x @ self.params["kernel"]
        if self.use_bias:
            out += self.params["bias"]
        y = self.activation.forward(out, inplace=True)
        if training:  # an inference call in between leaves what backward needs
            self._cache = (x, y)
        return y

    # training never needs the gradient of the model's input: Sequential asks the first
    # layer to skip it.
    can_skip_input_gradient = True

    def backward(self, dy, input_gradient=True):
        """Fill grads; return dx, or None when ``input_gradient`` is False."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward() needs a forward(x, training=True) first.")
        x, y = self._cache
        dy = self.activation.backward(dy, y)
        self.grads["kernel"] = x.T @ dy
        if self.use_bias:
            self.grads["bias"] = dy.sum(axis=0)
        self._cache = None
        return dy @ self.params["kernel"].T if input_gradient else None

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation.name,
            "use_bias": self.use_bias,
            "kernel_initializer": initializer_config(self.kernel_initializer),
            "bias_initializer": initializer_config(self.bias_initializer),
        }
