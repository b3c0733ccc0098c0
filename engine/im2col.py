"""Convolution kernels: padding arithmetic, im2col and col2im, CPU and GPU side by side.

Notation (channels-last, as Keras):
    x:    (N, H, W, C)            input image batch
    cols: (N*OH*OW, KH*KW*C)      one row per output pixel, in (ky, kx, c) order,
                                  matching a (KH, KW, C, F) kernel reshaped to (-1, F)
    pads: (top, bottom, left, right) zero padding
"""

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine import backend


def conv_output_size(size, kernel, stride, padding):
    """Output length and (before, after) padding of one spatial axis.

    padding is 'valid', 'same' (TensorFlow's rule: output ceil(size / stride),
    the odd extra pixel of padding at the bottom/right) or an int of explicit
    zero padding on both sides.
    """
    if padding == "valid":
        before = after = 0
    elif padding == "same":
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        before, after = total // 2, total - total // 2
    else:
        before = after = int(padding)
    out = (size + before + after - kernel) // stride + 1
    return out, (before, after)


def pad_cpu(x, pads):
    """x (N, H, W, C) with (top, bottom, left, right) zero rows and columns added (a copy),
    or x itself when there is no padding."""
    if not any(pads):
        return x
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    padded = np.zeros((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
    padded[:, top : top + h, left : left + w, :] = x
    return padded


def _im2col_cpu(x, kh, kw, sh, sw, pads, out):
    oh, ow = _output_hw(x.shape, kh, kw, sh, sw, pads)
    x = pad_cpu(x, pads)
    n, h, w, c = x.shape
    if out is None:
        out = np.empty((n * oh * ow, kh * kw * c), dtype=x.dtype)
    if c == 1:
        # One channel: copying the windows would run inner loops kw elements long;
        # one copy per kernel offset runs them OW long (3x faster on MNIST's 28x28x1).
        patches = _view(out, (n, oh, ow, kh * kw))
        for ky in range(kh):
            for kx in range(kw):
                patches[..., ky * kw + kx] = x[:, _taps(ky, sh, oh), _taps(kx, sw, ow), 0]
        return out
    s_n, s_h, s_w, s_c = x.strides
    windows = as_strided(
        x,
        (n, oh, ow, kh, kw, c),
        (s_n, s_h * sh, s_w * sw, s_h, s_w, s_c),
        writeable=False,
    )
    # One contiguous copy of the sliding windows: the whole of im2col.
    np.copyto(_view(out, windows.shape), windows)
    return out


def quadrant_patches_cpu(x, kh, kw, sh, sw, ph, pw, out):
    """The im2col patches of the convolution outputs that a 2x2/2 max pooling reads,
    grouped by window quadrant, with one copy of a strided view.

    Row (q, n, py, px) of ``out`` (4*N*PH*PW, KH*KW*C) is the patch of output
    (2*py + a, 2*px + b), q = 2*a + b, of the valid convolution of x (N, H, W, C) with
    strides (sh, sw). ``out`` is C-contiguous, or the transpose of a C-contiguous
    (K, M) array (K-major), which the copy writes in contiguous runs: the fast choice
    for one input channel, whose C-contiguous rows are only KH*KW long.
    """
    n, _, _, c = x.shape
    s_n, s_h, s_w, s_c = x.strides
    windows = as_strided(
        x,
        (2, 2, n, ph, pw, kh, kw, c),
        (sh * s_h, sw * s_w, s_n, 2 * sh * s_h, 2 * sw * s_w, s_h, s_w, s_c),
        writeable=False,
    )
    np.copyto(_view(out, windows.shape), windows)
    return out


def _view(a, shape):
    """``a`` reshaped without copying: an error, never a silent copy that writes go to."""
    view = a.view()
    view.shape = shape
    return view


def _output_hw(x_shape, kh, kw, sh, sw, pads):
    """(OH, OW) of a (KH, KW) window moved by (SH, SW) over padded (N, H, W, C) inputs."""
    top, bottom, left, right = pads
    return (x_shape[1] + top + bottom - kh) // sh + 1, (x_shape[2] + left + right - kw) // sw + 1


def _taps(k, stride, out):
    """The input rows (or columns) that kernel offset ``k`` reads for ``out`` outputs."""
    return slice(k, k + stride * (out - 1) + 1, stride)


def _add_offsets_cpu(dx, block, kh, kw, sh, sw, oh, ow):
    """dx (N, H, W, C) += block(ky, kx) (N, OH, OW, C) at the pixels each kernel offset
    reads: a loop over offsets adding strided slices (np.add.at is 5-50x slower)."""
    for ky in range(kh):
        for kx in range(kw):
            dx[:, _taps(ky, sh, oh), _taps(kx, sw, ow), :] += block(ky, kx)


def _col2im_cpu(cols, x_shape, kh, kw, sh, sw, pads):
    top, bottom, left, right = pads
    n, h, w, c = x_shape
    oh, ow = _output_hw(x_shape, kh, kw, sh, sw, pads)
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    dx = np.zeros((n, h + top + bottom, w + left + right, c), dtype=cols.dtype)
    _add_offsets_cpu(dx, lambda ky, kx: cols[:, :, :, ky, kx, :], kh, kw, sh, sw, oh, ow)
    return dx[:, top : top + h, left : left + w, :]


def add_input_gradient_cpu(dx, dy, kernel, sh, sw, workspace):
    """dx += the input gradient of a valid convolution: y = im2col(x) @ kernel.reshape(-1, F)
    with strides (sh, sw) over inputs shaped like dx (N, H, W, C), given dy (N*OH*OW, F).

    One product per kernel offset makes its contribution a contiguous (N*OH*OW, C)
    block, so the additions run long contiguous inner loops: 2x faster than col2im of
    the one product dy @ kernel2d.T, whose C-wide columns are strided. One block buffer
    (kept in ``workspace``, an engine.workspace.Workspace) serves every offset, so it
    stays in the cache.
    """
    kh, kw, c, f = kernel.shape
    oh, ow = _output_hw(dx.shape, kh, kw, sh, sw, (0, 0, 0, 0))
    block = workspace.get("dcols", (dy.shape[0], c), dy.dtype, np)

    def offset_block(ky, kx):
        return np.matmul(dy, kernel[ky, kx].T, out=block).reshape(dx.shape[0], oh, ow, c)

    _add_offsets_cpu(dx, offset_block, kh, kw, sh, sw, oh, ow)


# Gather style: each thread writes one output element and reads what it needs,
# so there are no atomics and the results are deterministic.
_GPU_SOURCES = {
    "im2col": (
        "raw T x, int32 h, int32 w, int32 c, int32 kh, int32 kw, int32 sh, int32 sw, "
        "int32 top, int32 left, int32 oh, int32 ow",
        "T col",
        """
        int ch = i % c; ptrdiff_t t = i / c;
        int kx = t % kw; t /= kw;
        int ky = t % kh; t /= kh;
        int ox = t % ow; t /= ow;
        int oy = t % oh; ptrdiff_t n = t / oh;
        int y = oy * sh - top + ky;
        int xx = ox * sw - left + kx;
        col = (0 <= y && y < h && 0 <= xx && xx < w) ? x[((n * h + y) * w + xx) * c + ch] : (T)0;
        """,
    ),
    "col2im": (
        "raw T col, int32 h, int32 w, int32 c, int32 kh, int32 kw, int32 sh, int32 sw, "
        "int32 top, int32 left, int32 oh, int32 ow",
        "T dx",
        """
        int ch = i % c; ptrdiff_t t = i / c;
        int xx = t % w; t /= w;
        int y = t % h; ptrdiff_t n = t / h;
        T sum = 0;
        for (int ky = 0; ky < kh; ++ky) {
            int ty = y + top - ky;
            if (ty < 0 || ty % sh != 0) continue;
            int oy = ty / sh;
            if (oy >= oh) continue;
            for (int kx = 0; kx < kw; ++kx) {
                int tx = xx + left - kx;
                if (tx < 0 || tx % sw != 0) continue;
                int ox = tx / sw;
                if (ox >= ow) continue;
                sum += col[((((n * oh + oy) * ow + ox) * kh + ky) * kw + kx) * c + ch];
            }
        }
        dx = sum;
        """,
    ),
}


def _im2col_gpu(x, kh, kw, sh, sw, pads, out):
    cupy = backend._import_cupy()
    top, _, left, _ = pads
    n, h, w, c = x.shape
    oh, ow = _output_hw(x.shape, kh, kw, sh, sw, pads)
    cols = cupy.empty((n * oh * ow, kh * kw * c), dtype=x.dtype) if out is None else out
    backend.elementwise_kernel("xpcnn_im2col", _GPU_SOURCES["im2col"])(
        cupy.ascontiguousarray(x), h, w, c, kh, kw, sh, sw, top, left, oh, ow, cols
    )
    return cols


def _col2im_gpu(cols, x_shape, kh, kw, sh, sw, pads):
    cupy = backend._import_cupy()
    top, _, left, _ = pads
    n, h, w, c = x_shape
    oh, ow = _output_hw(x_shape, kh, kw, sh, sw, pads)
    dx = cupy.empty((n, h, w, c), dtype=cols.dtype)
    backend.elementwise_kernel("xpcnn_col2im", _GPU_SOURCES["col2im"])(
        cupy.ascontiguousarray(cols), h, w, c, kh, kw, sh, sw, top, left, oh, ow, dx
    )
    return dx


def im2col(x, kh, kw, sh, sw, pads, out=None):
    """(N, H, W, C) -> (N*OH*OW, KH*KW*C) patches, zero padding applied by ``pads``.

    ``out``, when given, is a C-contiguous array of that shape and dtype to fill
    (a reused buffer); otherwise a new one is returned.
    """
    if backend.is_gpu_array(x):
        return _im2col_gpu(x, kh, kw, sh, sw, pads, out)
    return _im2col_cpu(x, kh, kw, sh, sw, pads, out)


def col2im(cols, x_shape, kh, kw, sh, sw, pads):
    """The adjoint of im2col: (N*OH*OW, KH*KW*C) -> (N, H, W, C), overlaps summed."""
    if backend.is_gpu_array(cols):
        return _col2im_gpu(cols, x_shape, kh, kw, sh, sw, pads)
    return _col2im_cpu(cols, x_shape, kh, kw, sh, sw, pads)


def conv_input_gradient(dy, kernel, x_shape, sh, sw, pads, workspace):
    """dx (N, H, W, C) of y = im2col(x) @ kernel.reshape(-1, F), given dy (N*OH*OW, F).

    The GPU makes the patch gradient dy @ kernel2d.T with one product and sums it with
    its gather-style col2im kernel; the CPU adds per-offset products
    (add_input_gradient_cpu). ``workspace`` keeps the patch gradient between steps.
    """
    if backend.is_gpu_array(dy):
        kh, kw, c, f = kernel.shape
        xp = backend.get_array_module(dy)
        dcols = workspace.get("dcols", (dy.shape[0], kh * kw * c), dy.dtype, xp)
        xp.matmul(dy, kernel.reshape(-1, f).T, out=dcols)
        return _col2im_gpu(dcols, x_shape, kh, kw, sh, sw, pads)
    top, bottom, left, right = pads
    n, h, w, c = x_shape
    dx = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
    add_input_gradient_cpu(dx, dy, kernel, sh, sw, workspace)
    return dx[:, top : top + h, left : left + w, :]
