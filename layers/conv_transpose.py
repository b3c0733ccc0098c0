"""Conv2DTranspose: the transpose (adjoint) of a convolution, with Keras's output sizes.

Its forward is the input gradient of a convolution: every input pixel spreads its
values times the kernel over a window of the output (im2col.conv_input_gradient); its
backward is that convolution (im2col, then one product). With strides (2, 2) it
doubles the height and width: the learned upsampling of decoders and GANs.

Where the output window sits follows Keras's JAX backend (the conv transpose padding
rule of keras/src/backend/common/backend_utils.py): the input spread ``stride`` apart,
padded by (low, high) and correlated with the flipped kernel. Per axis that is the
adjoint of the convolution over the output padded by (span - 1 - low, span - 1 - high),
span = (kernel - 1)*dilation + 1. Where span - 1 - high < 0 (a stride longer than the
span, or an output_padding), the last rows (or columns) are past that convolution's last
window (fewer than a stride of them, which its floor drops as a 'valid' convolution
drops a last row): no input reaches them and they hold the bias only.
"""

from engine import backend, im2col, regularizers, utils
from layers.base import initializer_config
from layers.conv import PADDINGS, BaseConv, checked_initializer, column_sums


def transpose_output_size(size, kernel, stride, dilation, padding, output_padding):
    """(output length, (before, after)) of one axis: Keras's output size (its
    compute_conv_transpose_output_shape) and the padding of the convolution from the
    output back to the input, from Keras's JAX padding rule (never negative: see the
    module's docstring). ``output_padding`` is an int or None (Keras's default)."""
    span = im2col.effective_kernel(kernel, dilation)
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        low, high = span - 1, span - 1 + extra
    else:
        if output_padding is None:
            total = stride + span - 2  # so that the output has size * stride rows
        else:
            total = span + span % 2 - 2 + output_padding
        low = min(total // 2 + total % 2, span - 1)
        high = total - low
    # The spread input has (size - 1)*stride + 1 rows; padded and correlated with the span.
    out = (size - 1) * stride + 1 + low + high - span + 1
    return out, (span - 1 - low, max(span - 1 - high, 0))


def _output_padding(value):
    """None, or an int or a pair of non-negative ints -> None or a pair."""
    if value is None:
        return None
    pair = (value, value) if utils.is_int(value) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(utils.is_int(p) and p >= 0 for p in pair)
    ):
        raise ValueError(
            "Conv2DTranspose output_padding must be None, a non-negative int or a pair of "
            f"them, got {value!r}."
        )
    return tuple(int(p) for p in pair)


class Conv2DTranspose(BaseConv):
    """(N, H, W, C) -> (N, OH, OW, filters) with a (KH, KW, filters, C) kernel (Keras's
    layout: the kernel of the Conv2D from (OH, OW, filters) to (H, W, C) it transposes).

    Output size per axis (Keras's): 'valid': (H - 1)*stride + max(span, stride) without
    output_padding, (H - 1)*stride + span + output_padding with it; 'same': H*stride
    without, (H - 1)*stride + span % 2 + output_padding with it; span = (KH - 1)*dilation
    + 1. After build, ``output_hw`` is (OH, OW) and ``pads`` the (top, bottom, left, right)
    padding of the convolution it transposes.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        output_padding=None,
        dilation_rate=(1, 1),
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        if not (isinstance(padding, str) and padding.lower() in PADDINGS):
            raise ValueError(
                f"Unknown padding {padding!r} for Conv2DTranspose; expected 'valid' or 'same'."
            )
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
        self.filters = utils.positive_int(filters, "Conv2DTranspose filters")
        self.output_padding = _output_padding(output_padding)
        if self.output_padding is not None:
            for axis, (extra, stride) in enumerate(zip(self.output_padding, self.strides)):
                if extra >= stride:
                    raise ValueError(
                        "Conv2DTranspose output_padding must be strictly less than strides "
                        f"on every axis; on axis {axis} output_padding is {extra} and strides "
                        f"is {stride}. Received: output_padding={self.output_padding}, "
                        f"strides={self.strides}."
                    )
        self._refuse_strides_with_dilation()
        self.kernel_initializer = checked_initializer(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)

    def _plan(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                f"Conv2DTranspose {self.name!r} expects inputs of shape (height, width, "
                f"channels) per sample, got {input_shape}."
            )
        sizes, pads = [], []
        for axis in range(2):
            extra = None if self.output_padding is None else self.output_padding[axis]
            out, axis_pads = transpose_output_size(
                input_shape[axis],
                self.kernel_size[axis],
                self.strides[axis],
                self.dilation_rate[axis],
                self.padding,
                extra,
            )
            if out < 1:
                raise ValueError(
                    f"Conv2DTranspose {self.name!r}: input {input_shape} gives an empty "
                    f"output ({out} along axis {axis}) with kernel {self.kernel_size}, strides "
                    f"{self.strides}, padding {self.padding!r} and output_padding "
                    f"{self.output_padding}."
                )
            sizes.append(out)
            pads.extend(axis_pads)
        return tuple(sizes), tuple(pads)

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = self._plan(input_shape)
        return (oh, ow, self.filters)

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        self.output_hw, self.pads = self._plan(input_shape)
        self.kernel = self.add_weight(
            "kernel",
            (*self.kernel_size, self.filters, input_shape[2]),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self._add_bias(self.filters)

    def forward(self, x, ctx):
        x2d = x.reshape(-1, x.shape[3])
        spread = im2col.conv_input_gradient(
            x2d,
            self.kernel,
            (x.shape[0], *self.output_hw, self.filters),
            *self.strides,
            self.pads,
            ctx.workspace,
            dilation=self.dilation_rate,
        )
        # A padded convolution's input gradient is a view into its padded array.
        out = backend.get_array_module(x).ascontiguousarray(spread)
        y = self._bias_and_activation(out, ctx)
        if ctx.for_backward:
            ctx.x2d, ctx.x_shape = x2d, x.shape
        return y

    def backward(self, ctx, dy):
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        dz = self._activation_gradient(ctx, dy)
        xp = backend.get_array_module(dz)
        cols = ctx.workspace.get("cols", (ctx.x2d.shape[0], kh * kw * self.filters), dz.dtype, xp)
        im2col.im2col(dz, kh, kw, sh, sw, self.pads, out=cols, dilation=self.dilation_rate)
        if ctx.needs_weight_grads:
            ctx.grads["kernel"] = (cols.T @ ctx.x2d).reshape(self.kernel.shape)
            if self.use_bias:
                ctx.grads["bias"] = column_sums(dz.reshape(-1, self.filters), ctx.workspace)
        if not ctx.needs_input_grad[0]:
            return None
        return (cols @ self.kernel.reshape(-1, ctx.x_shape[3])).reshape(ctx.x_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "output_padding": None if self.output_padding is None else list(self.output_padding),
            "kernel_initializer": initializer_config(self.kernel_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
        }
