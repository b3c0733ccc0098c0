"""SeparableConv2D: a depthwise convolution, then a 1x1 (pointwise) convolution mixing
the channels, then the bias and the activation (Keras's separable_conv)."""

from engine import depthwise, regularizers, utils
from layers.base import initializer_config
from layers.conv import BaseConv, checked_initializer, column_sums


class SeparableConv2D(BaseConv):
    """(N, H, W, C) -> (N, OH, OW, filters).

    Weights, in Keras's order and layouts: depthwise_kernel (KH, KW, C, depth_multiplier)
    as DepthwiseConv2D's kernel (no bias of its own), pointwise_kernel
    (1, 1, C*depth_multiplier, filters), bias (filters,).

        u: (N*OH*OW, C*depth_multiplier)   the depthwise convolution's output
        y = activation(u @ pointwise_kernel + bias)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        dilation_rate=(1, 1),
        depth_multiplier=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            kernel_size,
            strides,
            padding,
            dilation_rate,
            activation,
            use_bias,
            bias_initializer,
            bias_regularizer,
            **kwargs,
        )
        self.filters = utils.positive_int(filters, "SeparableConv2D filters")
        self.depth_multiplier = utils.positive_int(
            depth_multiplier, "SeparableConv2D depth_multiplier"
        )
        self.depthwise_initializer = checked_initializer(depthwise_initializer)
        self.pointwise_initializer = checked_initializer(pointwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = self._plan(input_shape)
        return (oh, ow, self.filters)

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        self.output_hw, self.pads = self._plan(input_shape)
        channels = input_shape[2]
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel",
            (*self.kernel_size, channels, self.depth_multiplier),
            self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
        )
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel",
            (1, 1, channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer,
            regularizer=self.pointwise_regularizer,
        )
        self._add_bias(self.filters)

    def forward(self, x, ctx):
        u, padded = depthwise.depthwise_conv(
            x, self.depthwise_kernel, self.strides, self.dilation_rate, self.pads, ctx.workspace
        )
        u = u.reshape(-1, u.shape[-1])
        out = u @ self.pointwise_kernel.reshape(-1, self.filters)
        y = self._bias_and_activation(out, ctx).reshape(x.shape[0], *self.output_hw, self.filters)
        if ctx.for_backward:
            ctx.u, ctx.padded, ctx.x_shape = u, padded, x.shape
        return y

    def backward(self, ctx, dy):
        dz = self._activation_gradient(ctx, dy).reshape(-1, self.filters)
        pointwise = self.pointwise_kernel.reshape(-1, self.filters)
        du = (dz @ pointwise.T).reshape(ctx.x_shape[0], *self.output_hw, -1)
        if ctx.needs_weight_grads:
            ctx.grads["depthwise_kernel"] = depthwise.depthwise_kernel_gradient(
                ctx.padded, du, self.depthwise_kernel.shape, self.strides, self.dilation_rate
            )
            ctx.grads["pointwise_kernel"] = (ctx.u.T @ dz).reshape(self.pointwise_kernel.shape)
            if self.use_bias:
                ctx.grads["bias"] = column_sums(dz, ctx.workspace)
        if not ctx.needs_input_grad[0]:
            return None
        return depthwise.depthwise_input_gradient(
            du,
            self.depthwise_kernel,
            ctx.x_shape,
            self.strides,
            self.dilation_rate,
            self.pads,
            ctx.workspace,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializer_config(self.depthwise_initializer),
            "pointwise_initializer": initializer_config(self.pointwise_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
        }
