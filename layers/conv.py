"""Conv2D: im2col + one matrix product forward, col2im backward (channels-last)."""

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


def spatial_plan(input_shape, kernel, strides, padding, what):
    """Output (OH, OW) and pads (top, bottom, left, right) for an (H, W, C) input."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{what} expects inputs of shape (height, width, channels) per sample, "
            f"got {input_shape}."
        )
    sizes, pads = [], []
    for axis in range(2):
        pad = padding if isinstance(padding, str) else padding[axis]
        out, (before, after) = im2col.conv_output_size(
            input_shape[axis], kernel[axis], strides[axis], pad
        )
        if input_shape[axis] + before + after < kernel[axis]:
            raise ValueError(
                f"{what}: kernel {kernel} is larger than its padded input "
                f"{input_shape[:2]} with padding {padding!r}."
            )
        sizes.append(out)
        pads.extend((before, after))
    return tuple(sizes), tuple(pads)


class Conv2D(Layer):
    """2-D convolution of (N, H, W, C) inputs with a (KH, KW, C, filters) kernel.

    After build, ``output_hw`` is the output's (OH, OW) and ``pads`` the zero padding
    (top, bottom, left, right) its padding option gives for the built input shape.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = utils.positive_int(filters, "Conv2D filters")
        self.kernel_size = utils.as_pair(kernel_size, "Conv2D kernel_size")
        self.strides = utils.as_pair(strides, "Conv2D strides")
        self.padding = standardize_padding(padding)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        for initializer in (kernel_initializer, bias_initializer):
            initializers.get(initializer)  # an unknown name fails here, not at build time
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def _plan(self, input_shape):
        return spatial_plan(
            utils.standardize_shape(input_shape),
            self.kernel_size,
            self.strides,
            self.padding,
            f"Conv2D {self.name!r}",
        )

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = self._plan(input_shape)
        return (oh, ow, self.filters)

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        self.output_hw, self.pads = self._plan(input_shape)
        kh, kw = self.kernel_size
        self.kernel = self.add_weight(
            "kernel",
            (kh, kw, input_shape[2], self.filters),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                "bias", (self.filters,), self.bias_initializer, regularizer=self.bias_regularizer
            )

    def forward(self, x, ctx):
        n = x.shape[0]
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        cols = ctx.workspace.get(
            "cols",
            (n * self.output_hw[0] * self.output_hw[1], kh * kw * x.shape[3]),
            x.dtype,
            backend.get_array_module(x),
        )
        im2col.im2col(x, kh, kw, sh, sw, self.pads, out=cols)
        out = cols @ self.kernel.reshape(-1, self.filters)
        if self.use_bias:
            out += self.bias  # in place on the product's fresh output
        shape = (n, *self.output_hw, self.filters)
        y = self.activation.forward(out, inplace=True).reshape(shape)
        if ctx.for_backward:
            ctx.cols, ctx.x_shape = cols, x.shape
            ctx.saved = self.activation.saved_for_backward(out.reshape(shape), y)
        return y

    def backward(self, ctx, dy):
        dz = self.activation.backward(dy, ctx.saved).reshape(-1, self.filters)
        if ctx.needs_weight_grads:
            ctx.grads["kernel"] = self.kernel_gradient(ctx.cols, dz)
            if self.use_bias:
                ctx.grads["bias"] = column_sums(dz, ctx.workspace)
        if not ctx.needs_input_grad[0]:
            return None  # a model's first layer: the largest product and a col2im saved
        return im2col.conv_input_gradient(
            dz, self.kernel, ctx.x_shape, *self.strides, self.pads, ctx.workspace
        )

    def kernel_gradient(self, cols, dz):
        """The kernel's gradient from the patches (M, KH*KW*C) and dz (M, F), the gradient of
        the outputs before the activation: one product."""
        return (cols.T @ dz).reshape(self.kernel.shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializer_config(self.kernel_initializer),
            "bias_initializer": initializer_config(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }


def column_sums(a, workspace):
    """a.sum(axis=0) of a tall (M, F) array as the product ones(M) @ a: BLAS does it
    10x faster than NumPy's row-by-row reduction (1.1 ms -> 0.1 ms for M = 86,528)."""
    ones = workspace.get("ones", (a.shape[0],), a.dtype, backend.get_array_module(a))
    ones.fill(1)
    return ones @ a
