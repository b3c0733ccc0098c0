"""Max-pooling kernels, CPU and GPU side by side.

Notation (channels-last):
    x:      (N, H, W, C)
    y:      (N, OH, OW, C)
    argmax: (N, OH, OW, C) index ky * PW + kx of the window's maximum; on a tie
            the first maximum in row-major window order wins, and only it
            receives the gradient.
    pads:   (top, bottom, left, right); padded cells never win (they are -inf).
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine import backend


def _windows_cpu(x, ph, pw, sh, sw, pads):
    top, bottom, left, right = pads
    if any(pads):
        n, h, w, c = x.shape
        padded = np.full((n, h + top + bottom, w + left + right, c), -np.inf, dtype=x.dtype)
        padded[:, top : top + h, left : left + w, :] = x
        x = padded
    n, h, w, c = x.shape
    oh, ow = (h - ph) // sh + 1, (w - pw) // sw + 1
    s_n, s_h, s_w, s_c = x.strides
    return as_strided(
        x,
        (n, oh, ow, c, ph, pw),
        (s_n, s_h * sh, s_w * sw, s_c, s_h, s_w),
        writeable=False,
    )


def _forward_cpu(x, ph, pw, sh, sw, pads, with_argmax):
    windows = _windows_cpu(x, ph, pw, sh, sw, pads)
    n, oh, ow, c = windows.shape[:4]
    if not with_argmax:
        return windows.max(axis=(4, 5)), None
    flat = windows.reshape(n, oh, ow, c, ph * pw)
    argmax = flat.argmax(axis=-1)
    y = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    return y, argmax.astype(np.uint8 if ph * pw <= 255 else np.int32)


def _backward_cpu(dy, argmax, x_shape, ph, pw, sh, sw, pads):
    top, bottom, left, right = pads
    n, h, w, c = x_shape
    oh, ow = dy.shape[1:3]
    dx = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
    for ky in range(ph):
        for kx in range(pw):
            hit = argmax == ky * pw + kx
            dx[:, ky : ky + sh * (oh - 1) + 1 : sh, kx : kx + sw * (ow - 1) + 1 : sw, :] += (
                np.where(hit, dy, 0)
            )
    return dx[:, top : top + h, left : left + w, :]


_gpu_kernels = {}

_GPU_SOURCES = {
    "forward": (
        "raw T x, int32 h, int32 w, int32 c, int32 ph, int32 pw, int32 sh, int32 sw, "
        "int32 top, int32 left, int32 oh, int32 ow",
        "T y, int32 argmax",
        """
        int ch = i % c; ptrdiff_t t = i / c;
        int ox = t % ow; t /= ow;
        int oy = t % oh; ptrdiff_t n = t / oh;
        T best = -INFINITY; int best_k = 0; bool found = false;
        for (int ky = 0; ky < ph; ++ky) {
            int yy = oy * sh - top + ky;
            if (yy < 0 || yy >= h) continue;
            for (int kx = 0; kx < pw; ++kx) {
                int xx = ox * sw - left + kx;
                if (xx < 0 || xx >= w) continue;
                T v = x[((n * h + yy) * w + xx) * c + ch];
                if (!found || v > best) { best = v; best_k = ky * pw + kx; found = true; }
            }
        }
        y = best; argmax = best_k;
        """,
    ),
    # One thread per input pixel summing the windows whose maximum it is.
    "backward": (
        "raw T dy, raw int32 argmax, int32 h, int32 w, int32 c, int32 ph, int32 pw, "
        "int32 sh, int32 sw, int32 top, int32 left, int32 oh, int32 ow",
        "T dx",
        """
        int ch = i % c; ptrdiff_t t = i / c;
        int xx = t % w; t /= w;
        int yy = t % h; ptrdiff_t n = t / h;
        T sum = 0;
        for (int ky = 0; ky < ph; ++ky) {
            int ty = yy + top - ky;
            if (ty < 0 || ty % sh != 0) continue;
            int oy = ty / sh;
            if (oy >= oh) continue;
            for (int kx = 0; kx < pw; ++kx) {
                int tx = xx + left - kx;
                if (tx < 0 || tx % sw != 0) continue;
                int ox = tx / sw;
                if (ox >= ow) continue;
                ptrdiff_t o = ((n * oh + oy) * ow + ox) * c + ch;
                if (argmax[o] == ky * pw + kx) sum += dy[o];
            }
        }
        dx = sum;
        """,
    ),
}


def _gpu_kernel(name):
    if name not in _gpu_kernels:
        cupy = backend._import_cupy()
        _gpu_kernels[name] = cupy.ElementwiseKernel(
            *_GPU_SOURCES[name], name=f"xpcnn_maxpool_{name}"
        )
    return _gpu_kernels[name]


def _forward_gpu(x, ph, pw, sh, sw, pads):
    cupy = backend._import_cupy()
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    oh, ow = (h + top + bottom - ph) // sh + 1, (w + left + right - pw) // sw + 1
    y = cupy.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = cupy.empty((n, oh, ow, c), dtype=cupy.int32)
    _gpu_kernel("forward")(
        cupy.ascontiguousarray(x), h, w, c, ph, pw, sh, sw, top, left, oh, ow, y, argmax
    )
    return y, argmax


def _backward_gpu(dy, argmax, x_shape, ph, pw, sh, sw, pads):
    cupy = backend._import_cupy()
    top, bottom, left, right = pads
    n, h, w, c = x_shape
    oh, ow = dy.shape[1:3]
    dx = cupy.empty((n, h, w, c), dtype=dy.dtype)
    _gpu_kernel("backward")(
        cupy.ascontiguousarray(dy),
        argmax,
        h,
        w,
        c,
        ph,
        pw,
        sh,
        sw,
        top,
        left,
        oh,
        ow,
        dx,
    )
    return dx


def max_pool_forward(x, ph, pw, sh, sw, pads, with_argmax=True):
    """(N, H, W, C) -> y (N, OH, OW, C) and argmax (None unless with_argmax)."""
    if backend.is_gpu_array(x):
        return _forward_gpu(x, ph, pw, sh, sw, pads)
    return _forward_cpu(x, ph, pw, sh, sw, pads, with_argmax)


def max_pool_backward(dy, argmax, x_shape, ph, pw, sh, sw, pads):
    """Route dy (N, OH, OW, C) to each window's first maximum: dx (N, H, W, C)."""
    if backend.is_gpu_array(dy):
        return _backward_gpu(dy, argmax, x_shape, ph, pw, sh, sw, pads)
    return _backward_cpu(dy, argmax, x_shape, ph, pw, sh, sw, pads)
