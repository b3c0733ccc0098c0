"""Depthwise convolution kernels, one code for NumPy and CuPy: a loop over kernel offsets.

Each input channel c is convolved with its own M filters (M, the depth multiplier,
Keras's ``depth_multiplier``) and gives output channels c*M ... c*M + M - 1, as Keras:

    x:      (N, H, W, C)        input batch; ``padded`` is it with the zero padding added
    kernel: (KH, KW, C, M)
    y:      (N, OH, OW, C*M)

A depthwise output pixel takes only KH*KW multiply-adds per channel: too few for im2col's
copy and a product per channel to pay (a grouped im2col with one channel per group was 3x
slower on (13, 13, 32) maps). Each kernel offset instead multiplies its strided slice of
the input by its (C, M) weights, vectorised over the batch, the pixels and the channels,
with array operations NumPy and CuPy both have (deterministic, no custom kernel).
"""

from engine import backend, im2col


def _offsets(kernel_shape):
    kh, kw = kernel_shape[:2]
    return [(ky, kx) for ky in range(kh) for kx in range(kw)]


def _tap_view(padded, ky, kx, strides, dilation, out_hw):
    """The (N, OH, OW, C) input pixels kernel offset (ky, kx) reads: a strided view."""
    (sh, sw), (dh, dw), (oh, ow) = strides, dilation, out_hw
    return padded[:, im2col.taps(ky * dh, sh, oh), im2col.taps(kx * dw, sw, ow)]


def depthwise_conv(x, kernel, strides, dilation, pads, workspace):
    """(y (N, OH, OW, C*M) a fresh array, padded x) for x (N, H, W, C): the padded input is
    what depthwise_kernel_gradient needs."""
    xp = backend.get_array_module(x)
    kh, kw, c, m = kernel.shape
    padded = im2col.zero_pad(x, pads)
    out_hw = im2col.output_hw(padded.shape, kh, kw, *strides, (0, 0, 0, 0), dilation)
    y = xp.empty((x.shape[0], *out_hw, c, m), dtype=x.dtype)
    term = workspace.get("term", y.shape, x.dtype, xp)
    for i, (ky, kx) in enumerate(_offsets(kernel.shape)):
        view = _tap_view(padded, ky, kx, strides, dilation, out_hw)[..., None]
        xp.multiply(view, kernel[ky, kx], out=term if i else y)
        if i:
            y += term
    return y.reshape(*y.shape[:3], c * m), padded


def depthwise_input_gradient(dy, kernel, x_shape, strides, dilation, pads, workspace):
    """dx (N, H, W, C) given dy (N, OH, OW, C*M): each offset adds dy times its weights,
    summed over the M outputs of each channel, to the input pixels it read."""
    xp = backend.get_array_module(dy)
    kh, kw, c, m = kernel.shape
    top, bottom, left, right = pads
    n, h, w, _ = x_shape
    dx = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
    dy = dy.reshape(*dy.shape[:3], c, m)
    term = workspace.get("dterm", dy.shape, dy.dtype, xp)
    for ky, kx in _offsets(kernel.shape):
        xp.multiply(dy, kernel[ky, kx], out=term)
        reads = _tap_view(dx, ky, kx, strides, dilation, dy.shape[1:3])
        reads += term[..., 0] if m == 1 else term.sum(axis=-1)
    return dx[:, top : top + h, left : left + w, :]


def depthwise_kernel_gradient(padded, dy, kernel_shape, strides, dilation):
    """The (KH, KW, C, M) kernel's gradient from the padded input and dy (N, OH, OW, C*M):
    per offset, the sum over the batch and pixels of input times dy, per channel."""
    xp = backend.get_array_module(dy)
    c, m = kernel_shape[2:]
    dy = dy.reshape(*dy.shape[:3], c, m)
    grad = xp.empty(kernel_shape, dtype=dy.dtype)
    for ky, kx in _offsets(kernel_shape):
        view = _tap_view(padded, ky, kx, strides, dilation, dy.shape[1:3])
        grad[ky, kx] = xp.einsum("nhwc,nhwcm->cm", view, dy)
    return grad
