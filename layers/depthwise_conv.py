"""DepthwiseConv2D: each input channel convolved with its own depth_multiplier filters."""

from engine import depthwise, regularizers, utils
from layers.base import initializer_config
from layers.conv import BaseConv, checked_initializer, column_sums


class DepthwiseConv2D(BaseConv):
    """(N, H, W, C) -> (N, OH, OW, C*depth_multiplier) with a (KH, KW, C, depth_multiplier)
    kernel: output channel c*depth_multiplier + m is input channel c convolved with
    kernel[:, :, c, m] (Keras's order), plus bias[c*depth_multiplier + m].

    Unlike Conv2D, strides > 1 may go with dilation_rate > 1 (as Keras's JAX backend).
    """

    def __init__(
        self,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        depth_multiplier=1,
        dilation_rate=(1, 1),
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
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
        self.depth_multiplier = utils.positive_int(
            depth_multiplier, "DepthwiseConv2D depth_multiplier"
        )
        self.depthwise_initializer = checked_initializer(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = self._plan(input_shape)
        return (oh, ow, input_shape[-1] * self.depth_multiplier)

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        self.output_hw, self.pads = self._plan(input_shape)
        channels = input_shape[2]
        self.kernel = self.add_weight(
            "kernel",
            (*self.kernel_size, channels, self.depth_multiplier),
            self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
        )
        self._add_bias(channels * self.depth_multiplier)

    def forward(self, x, ctx):
        out, padded = depthwise.depthwise_conv(
            x, self.kernel, self.strides, self.dilation_rate, self.pads, ctx.workspace
        )
        y = self._bias_and_activation(out, ctx)
        if ctx.for_backward:
            ctx.padded, ctx.x_shape = padded, x.shape
        return y

    def backward(self, ctx, dy):
        dz = self._activation_gradient(ctx, dy)
        if ctx.needs_weight_grads:
            ctx.grads["kernel"] = depthwise.depthwise_kernel_gradient(
                ctx.padded, dz, self.kernel.shape, self.strides, self.dilation_rate
            )
            if self.use_bias:
                ctx.grads["bias"] = column_sums(dz.reshape(-1, dz.shape[-1]), ctx.workspace)
        if not ctx.needs_input_grad[0]:
            return None
        return depthwise.depthwise_input_gradient(
            dz,
            self.kernel,
            ctx.x_shape,
            self.strides,
            self.dilation_rate,
            self.pads,
            ctx.workspace,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializer_config(self.depthwise_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
        }
