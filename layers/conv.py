"""Conv2D, and what the convolution layers share (BaseConv, padding and window plans).

Conv2D: im2col + one matrix product forward, col2im backward (channels-last); with
groups, one product per group (a batched matmul over a group axis).
"""

from engine import backend, im2col, initializers, regularizers, utils
from layers import activations
from layers.base import Layer, initializer_config

PADDINGS = ("valid", "same")


def standardize_padding(padding):
    """'valid', 'same', an int or an (ph, pw) pair -> 'valid', 'same' or an (ph, pw) pair."""
    if isinstance(padding, str):
        if padding.lower() in PADDINGS:
            return padding.lower()
        raise ValueError(
            f"Unknown padding {padding!r}; expected 'valid', 'same', an int or a pair of ints."
        )
    if isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        return (padding, padding)
    if (
        isinstance(padding, (tuple, list))
        and len(padding) == 2
        and all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in padding)
    ):
        return tuple(padding)
    raise ValueError(
        f"Unknown padding {padding!r}; expected 'valid', 'same', "
        "a non-negative int or a pair of them."
    )


def spatial_plan(input_shape, kernel, strides, padding, what, dilation=(1, 1)):
    """Output (OH, OW) and pads (top, bottom, left, right) for an (H, W, C) input and a
    kernel whose taps are ``dilation`` apart."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{what} expects inputs of shape (height, width, channels) per sample, "
            f"got {input_shape}."
        )
    span = tuple(im2col.effective_kernel(k, d) for k, d in zip(kernel, dilation))
    sizes, pads = [], []
    for axis in range(2):
        pad = padding if isinstance(padding, str) else padding[axis]
        out, (before, after) = im2col.conv_output_size(
            input_shape[axis], span[axis], strides[axis], pad
        )
        if input_shape[axis] + before + after < span[axis]:
            dilated = "" if span == tuple(kernel) else f" dilated by {dilation} (spanning {span})"
            raise ValueError(
                f"{what}: kernel {kernel}{dilated} is larger than its padded input "
                f"{input_shape[:2]} with padding {padding!r}."
            )
        sizes.append(out)
        pads.extend((before, after))
    return tuple(sizes), tuple(pads)


def checked_initializer(initializer):
    """``initializer`` itself once engine.initializers knows it: an unknown name fails
    when the layer is made, not when it is built."""
    initializers.get(initializer)
    return initializer


class BaseConv(Layer):
    """What the convolution layers share: the window (kernel_size, strides, padding,
    dilation_rate), the activation and the bias, checked when the layer is made.

    After build, ``output_hw`` is the output's (OH, OW) and ``pads`` the zero padding
    (top, bottom, left, right) its padding option gives for the built input shape.
    """

    def __init__(
        self,
        kernel_size,
        strides,
        padding,
        dilation_rate,
        activation,
        use_bias,
        bias_initializer,
        bias_regularizer,
        **kwargs,
    ):
        super().__init__(**kwargs)
        kind = type(self).__name__
        self.kernel_size = utils.as_pair(kernel_size, f"{kind} kernel_size")
        self.strides = utils.as_pair(strides, f"{kind} strides")
        self.padding = standardize_padding(padding)
        self.dilation_rate = utils.as_pair(dilation_rate, f"{kind} dilation_rate")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = checked_initializer(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def _refuse_strides_with_dilation(self):
        """Keras's Conv2D and Conv2DTranspose refuse this pair; so do we, in its words."""
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{type(self).__name__}: strides > 1 not supported in conjunction with "
                f"dilation_rate > 1. Received: strides={self.strides} and "
                f"dilation_rate={self.dilation_rate}."
            )

    def _plan(self, input_shape):
        return spatial_plan(
            utils.standardize_shape(input_shape),
            self.kernel_size,
            self.strides,
            self.padding,
            f"{type(self).__name__} {self.name!r}",
            self.dilation_rate,
        )

    def _add_bias(self, channels):
        if self.use_bias:
            self.bias = self.add_weight(
                "bias", (channels,), self.bias_initializer, regularizer=self.bias_regularizer
            )

    def _bias_and_activation(self, out, ctx):
        """activation(out + bias), computed in place on ``out`` (a fresh array); with
        ctx.for_backward, keeps on ctx what the activation's gradient needs."""
        if self.use_bias:
            out += self.bias
        y = self.activation.forward(out, inplace=True)
        if ctx.for_backward:
            ctx.saved = self.activation.saved_for_backward(out, y)
        return y

    def _activation_gradient(self, ctx, dy):
        """dy through the activation, shaped as what forward's activation saw."""
        return self.activation.backward(dy.reshape(ctx.saved.shape), ctx.saved)

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "dilation_rate": list(self.dilation_rate),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "bias_initializer": initializer_config(self.bias_initializer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }


class Conv2D(BaseConv):
    """2-D convolution of (N, H, W, C) inputs with a (KH, KW, C/groups, filters) kernel.

    dilation_rate spaces the kernel's taps; groups splits the channels into that many
    groups, output channel f reading the channels of group f // (filters/groups).
    After build, ``output_hw`` and ``pads`` are as in BaseConv.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        dilation_rate=(1, 1),
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
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
        self.filters = utils.positive_int(filters, "Conv2D filters")
        self.groups = utils.positive_int(groups, "Conv2D groups")
        if self.filters % self.groups:
            raise ValueError(
                f"Conv2D filters must be divisible by groups, got filters={self.filters} "
                f"and groups={self.groups}."
            )
        self._refuse_strides_with_dilation()
        self.kernel_initializer = checked_initializer(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)

    def _plan(self, input_shape):
        plan = super()._plan(input_shape)
        channels = input_shape[-1]
        if channels % self.groups:
            raise ValueError(
                f"Conv2D {self.name!r}: the input's {channels} channels are not divisible "
                f"by groups={self.groups} (input shape {tuple(input_shape)})."
            )
        return plan

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = self._plan(input_shape)
        return (oh, ow, self.filters)

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        self.output_hw, self.pads = self._plan(input_shape)
        kh, kw = self.kernel_size
        self.kernel = self.add_weight(
            "kernel",
            (kh, kw, input_shape[2] // self.groups, self.filters),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self._add_bias(self.filters)

    def forward(self, x, ctx):
        n, xp = x.shape[0], backend.get_array_module(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        m = n * self.output_hw[0] * self.output_hw[1]
        cols = ctx.workspace.get(
            "cols", im2col.cols_shape(m, kh * kw * x.shape[3], self.groups), x.dtype, xp
        )
        im2col.im2col(
            x, kh, kw, sh, sw, self.pads, out=cols, dilation=self.dilation_rate, groups=self.groups
        )
        kernel = self.kernel.reshape(-1, self.filters)
        if self.groups == 1:
            out = cols @ kernel
        else:  # one product per group, each written into its group's output channels
            out = xp.empty((m, self.filters), dtype=x.dtype)
            xp.matmul(
                cols, im2col.by_group(kernel, self.groups), out=im2col.by_group(out, self.groups)
            )
        y = self._bias_and_activation(out, ctx).reshape(n, *self.output_hw, self.filters)
        if ctx.for_backward:
            ctx.cols, ctx.x_shape = cols, x.shape
        return y

    def backward(self, ctx, dy):
        dz = self._activation_gradient(ctx, dy).reshape(-1, self.filters)
        if ctx.needs_weight_grads:
            ctx.grads["kernel"] = self.kernel_gradient(ctx.cols, dz)
            if self.use_bias:
                ctx.grads["bias"] = column_sums(dz, ctx.workspace)
        if not ctx.needs_input_grad[0]:
            return None  # a model's first layer: the largest product and a col2im saved
        return im2col.conv_input_gradient(
            dz,
            self.kernel,
            ctx.x_shape,
            *self.strides,
            self.pads,
            ctx.workspace,
            dilation=self.dilation_rate,
            groups=self.groups,
        )

    def kernel_gradient(self, cols, dz):
        """The kernel's gradient from the patches (M, KH*KW*C), or (G, M, KH*KW*C/G) with
        groups, and dz (M, F), the gradient of the outputs before the activation: one
        product (one per group)."""
        if self.groups == 1:
            return (cols.T @ dz).reshape(self.kernel.shape)
        xp = backend.get_array_module(dz)
        grad = xp.empty(self.kernel.shape, dtype=dz.dtype)
        xp.matmul(
            cols.transpose(0, 2, 1),
            im2col.by_group(dz, self.groups),
            out=im2col.by_group(grad.reshape(-1, self.filters), self.groups),
        )
        return grad

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": initializer_config(self.kernel_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
        }


def column_sums(a, workspace):
    """a.sum(axis=0) of a tall (M, F) array as the product ones(M) @ a: BLAS does it
    10x faster than NumPy's row-by-row reduction (1.1 ms -> 0.1 ms for M = 86,528)."""
    ones = workspace.get("ones", (a.shape[0],), a.dtype, backend.get_array_module(a))
    ones.fill(1)
    return ones @ a
