"""Average-pooling kernels, CPU and GPU side by side.

Notation (channels-last):
    x:      (N, H, W, C)
    y:      (N, OH, OW, C)
    pads:   (top, bottom, left, right) cells of padding ('same'); they are not counted:
            a window's sum is divided by the number of real cells it covers, as Keras
            (lax.reduce_window of the input, divided by that of ones) does.
    counts: (OH, OW) those numbers, ph * pw everywhere without padding.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine import backend, im2col, maxpool


def window_counts(h, w, ph, pw, sh, sw, pads):
    """The real (unpadded) cells under each window: an (OH, OW) int array."""
    top, bottom, left, right = pads

    def along(size, k, s, before, after):
        starts = np.arange((size + before + after - k) // s + 1) * s - before
        return np.minimum(starts + k, size) - np.maximum(starts, 0)

    return np.outer(along(h, ph, sh, top, bottom), along(w, pw, sw, left, right))


def _is_2x2(ph, pw, sh, sw, pads):
    """The common 2x2, stride 2, unpadded pooling, which has a fast path on the CPU."""
    return (ph, pw, sh, sw) == (2, 2, 2, 2) and not any(pads)


def _blocks_2x2(a, oh, ow):
    """The (N, OH, 2, OW, 2, C) view of the 2x2 windows of a (N, H, W, C) array (an odd
    last row or column is left out, as the windows leave it)."""
    s_n, s_h, s_w, s_c = a.strides
    shape = (a.shape[0], oh, 2, ow, 2, a.shape[3])
    return as_strided(a, shape, (s_n, 2 * s_h, s_h, 2 * s_w, s_w, s_c))


def _forward_2x2_cpu(x):
    # Three additions of strided quarters: 2x faster than reshape(...).mean(axis=(2, 4)),
    # whose reduction runs inner loops two elements long (26x26x32 maps, batch 128).
    oh, ow = x.shape[1] // 2, x.shape[2] // 2
    y = x[:, 0 : 2 * oh : 2, 0 : 2 * ow : 2] + x[:, 0 : 2 * oh : 2, 1 : 2 * ow : 2]
    y += x[:, 1 : 2 * oh : 2, 0 : 2 * ow : 2]
    y += x[:, 1 : 2 * oh : 2, 1 : 2 * ow : 2]
    y *= 0.25  # a power of two: exactly Keras's division by 4
    return y


def _backward_2x2_cpu(dy, x_shape):
    n, h, w, c = x_shape
    oh, ow = dy.shape[1:3]
    even = (h, w) == (2 * oh, 2 * ow)  # otherwise the odd edge stays zero
    dx = (np.empty if even else np.zeros)(x_shape, dtype=dy.dtype)
    # One broadcast write of dy / 4 into every window's four cells.
    _blocks_2x2(dx, oh, ow)[...] = (dy * 0.25)[:, :, None, :, None, :]
    return dx


def _taps(k, stride, out):
    return slice(k, k + stride * (out - 1) + 1, stride)


def _forward_cpu(x, ph, pw, sh, sw, pads):
    n, h, w, c = x.shape
    counts = window_counts(h, w, ph, pw, sh, sw, pads)
    oh, ow = counts.shape
    padded = im2col.zero_pad(x, pads)
    y = np.zeros((n, oh, ow, c), dtype=x.dtype)
    for ky in range(ph):
        for kx in range(pw):
            y += padded[:, _taps(ky, sh, oh), _taps(kx, sw, ow), :]
    if any(pads):
        y /= counts.astype(x.dtype)[:, :, None]
    else:
        y /= ph * pw
    return y


def _backward_cpu(dy, x_shape, ph, pw, sh, sw, pads):
    top, bottom, left, right = pads
    n, h, w, c = x_shape
    counts = window_counts(h, w, ph, pw, sh, sw, pads)
    oh, ow = counts.shape
    share = dy / counts.astype(dy.dtype)[:, :, None] if any(pads) else dy / (ph * pw)
    dx = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
    for ky in range(ph):
        for kx in range(pw):
            dx[:, _taps(ky, sh, oh), _taps(kx, sw, ow), :] += share
    return dx[:, top : top + h, left : left + w, :]


# Gather style: one thread per output (forward) or per input cell (backward), which sums
# what it needs: no atomics, deterministic results.
_COUNT = """
        int y0 = oy * sh - top, x0 = ox * sw - left;
        int y1 = y0 + ph < h ? y0 + ph : h, x1 = x0 + pw < w ? x0 + pw : w;
        y0 = y0 > 0 ? y0 : 0; x0 = x0 > 0 ? x0 : 0;
        int count = (y1 - y0) * (x1 - x0);
"""

_GPU_SOURCES = {
    "forward": (
        "raw T x, int32 h, int32 w, int32 c, int32 ph, int32 pw, int32 sh, int32 sw, "
        "int32 top, int32 left, int32 oh, int32 ow",
        "T y",
        """
        int ch = i % c; ptrdiff_t t = i / c;
        int ox = t % ow; t /= ow;
        int oy = t % oh; ptrdiff_t n = t / oh;
        """
        + _COUNT
        + """
        T sum = 0;
        for (int yy = y0; yy < y1; ++yy)
            for (int xx = x0; xx < x1; ++xx)
                sum += x[((n * h + yy) * w + xx) * c + ch];
        y = sum / (T)count;
        """,
    ),
    "backward": (
        "raw T dy, int32 h, int32 w, int32 c, int32 ph, int32 pw, int32 sh, int32 sw, "
        "int32 top, int32 left, int32 oh, int32 ow",
        "T dx",
        maxpool.WINDOWS_OF_PIXEL
        + _COUNT
        + """
                sum += dy[((n * oh + oy) * ow + ox) * c + ch] / (T)count;
            }
        }
        dx = sum;
        """,
    ),
}


def _forward_gpu(x, ph, pw, sh, sw, pads):
    cupy = backend._import_cupy()
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    oh, ow = (h + top + bottom - ph) // sh + 1, (w + left + right - pw) // sw + 1
    y = cupy.empty((n, oh, ow, c), dtype=x.dtype)
    backend.elementwise_kernel("xpcnn_avgpool_forward", _GPU_SOURCES["forward"])(
        cupy.ascontiguousarray(x), h, w, c, ph, pw, sh, sw, top, left, oh, ow, y
    )
    return y


def _backward_gpu(dy, x_shape, ph, pw, sh, sw, pads):
    cupy = backend._import_cupy()
    top, _, left, _ = pads
    n, h, w, c = x_shape
    oh, ow = dy.shape[1:3]
    dx = cupy.empty(x_shape, dtype=dy.dtype)
    backend.elementwise_kernel("xpcnn_avgpool_backward", _GPU_SOURCES["backward"])(
        cupy.ascontiguousarray(dy), h, w, c, ph, pw, sh, sw, top, left, oh, ow, dx
    )
    return dx


def avg_pool_forward(x, ph, pw, sh, sw, pads):
    """(N, H, W, C) -> (N, OH, OW, C): each window's mean over its real cells."""
    if backend.is_gpu_array(x):
        return _forward_gpu(x, ph, pw, sh, sw, pads)
    if _is_2x2(ph, pw, sh, sw, pads):
        return _forward_2x2_cpu(x)
    return _forward_cpu(x, ph, pw, sh, sw, pads)


def avg_pool_backward(dy, x_shape, ph, pw, sh, sw, pads):
    """dy (N, OH, OW, C) -> dx (N, H, W, C): each window's dy / count to each of its cells."""
    if backend.is_gpu_array(dy):
        return _backward_gpu(dy, x_shape, ph, pw, sh, sw, pads)
    if _is_2x2(ph, pw, sh, sw, pads):
        return _backward_2x2_cpu(dy, tuple(x_shape))
    return _backward_cpu(dy, x_shape, ph, pw, sh, sw, pads)
