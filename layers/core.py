"""Dense and Flatten."""

import math

from engine import initializers, regularizers, utils
from layers import activations
from layers.base import Layer, initializer_config


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...), in channels-last (C) order as Keras."""

    def compute_output_shape(self, input_shape):
        return (math.prod(utils.standardize_shape(input_shape)),)

    def forward(self, x, ctx):
        if ctx.for_backward:
            ctx.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, ctx, dy):
        return dy.reshape(ctx.x_shape)


class Dense(Layer):
    """y = activation(x @ kernel + bias) with a kernel of shape (in, units)."""

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = utils.positive_int(units, "Dense units")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        for initializer in (kernel_initializer, bias_initializer):
            initializers.get(initializer)  # an unknown name fails here, not at build time
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense {self.name!r} expects flat inputs (features,), got {input_shape}; "
                "put a Flatten() before it."
            )
        return (self.units,)

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        self.kernel = self.add_weight(
            "kernel",
            (input_shape[0], self.units),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                "bias", (self.units,), self.bias_initializer, regularizer=self.bias_regularizer
            )

    def forward(self, x, ctx):
        out = x @ self.kernel
        if self.use_bias:
            out += self.bias
        y = self.activation.forward(out, inplace=True)
        if ctx.for_backward:
            ctx.x, ctx.saved = x, self.activation.saved_for_backward(out, y)
        return y

    def backward(self, ctx, dy):
        dy = self.activation.backward(dy, ctx.saved)
        if ctx.needs_weight_grads:
            ctx.grads["kernel"] = ctx.x.T @ dy
            if self.use_bias:
                ctx.grads["bias"] = dy.sum(axis=0)
        return dy @ self.kernel.T if ctx.needs_input_grad[0] else None

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializer_config(self.kernel_initializer),
            "bias_initializer": initializer_config(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }
