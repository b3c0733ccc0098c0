"""Upsampling kernels by integer factors (SH, SW), CPU and GPU side by side.

Notation (channels-last):
    x:  (N, H, W, C)
    y:  (N, H*SH, W*SW, C)

'nearest' repeats every cell SH x SW times. 'bilinear' is jax.image.resize's (Keras's):
half-pixel centres, output row i samples the input at p = (i + 0.5) / SH - 0.5 from its
two nearest rows, and past an edge the edge row counts alone (jax renormalises the
triangle kernel's weights inside the image, which for upsampling is clamping). With
i = k * SH + r, p = k + d(r), d(r) = (r + 0.5) / SH - 0.5 in (-0.5, 0.5): each phase r
mixes rows (k - 1, k) when d < 0 and (k, k + 1) otherwise, with fixed weights. The CPU
computes it phase by phase, rows then columns, into planes it interleaves at the end;
the GPU runs one gather kernel forward and one backward, with the same weights in the
same order.
"""

import numpy as np

from engine import backend


def nearest_forward(x, sh, sw):
    """Each cell repeated SH x SW times, as one broadcast write (works on both backends)."""
    xp = backend.get_array_module(x)
    n, h, w, c = x.shape
    y = xp.empty((n, h, sh, w, sw, c), dtype=x.dtype)
    y[...] = x[:, :, None, :, None, :]
    return y.reshape(n, h * sh, w * sw, c)


def nearest_backward(dy, sh, sw):
    """Each cell's SH x SW copies summed: a loop over the offsets adding strided views (2x
    faster on the CPU than reshape(...).sum(axis=(2, 4)), whose inner loops are SW long)."""
    n, oh, ow, c = dy.shape
    blocks = dy.reshape(n, oh // sh, sh, ow // sw, sw, c)
    dx = blocks[:, :, 0, :, 0, :].copy()
    for a in range(sh):
        for b in range(sw):
            if a or b:
                dx += blocks[:, :, a, :, b, :]
    return dx


def phases(s):
    """(r, tap, lower, upper) for each phase r of a factor s: output row k * s + r is
    lower * row[k - 1] + upper * row[k] when tap is 0, lower * row[k] + upper * row[k + 1]
    when tap is 1 (the rows clamped to the map)."""
    rows = []
    for r in range(s):
        d = (r + 0.5) / s - 0.5
        rows.append((r, 0, -d, 1 + d) if d < 0 else (r, 1, 1 - d, d))
    return rows


def _resample_cpu(x, s, out, tmp):
    """Bilinear upsampling by s along axis 1 of x (A, L, B): output row k * s + r goes to
    out[r, :, k] (out: (s, A, L, B)); tmp: a scratch vector of at least A * L * B values.

    Row k's neighbours are x's flat elements B before and after it, so every large
    operation runs over contiguous memory (slices of axis 1 ran several times slower
    on maps bigger than the caches); the edge rows, where that offset reaches into the
    next or previous A, are then written again with their own row as the neighbour.
    """
    a, size, b = x.shape
    flat, tmp = x.reshape(-1), tmp[: x.size - b]
    one = x.dtype.type
    for r, tap, lower, upper in phases(s):
        lower, upper, plane = one(lower), one(upper), out[r]
        o = plane.reshape(-1)
        if tap == 0:  # rows k - 1 and k
            np.multiply(flat, upper, out=o)
            np.multiply(flat[:-b], lower, out=tmp)
            o[b:] += tmp
            plane[:, 0] = lower * x[:, 0] + upper * x[:, 0]
        else:  # rows k and k + 1
            np.multiply(flat, lower, out=o)
            np.multiply(flat[b:], upper, out=tmp)
            o[:-b] += tmp
            plane[:, -1] = lower * x[:, -1] + upper * x[:, -1]


def _resample_adjoint_cpu(g, dx, tmp):
    """The adjoint of _resample_cpu: dx (A, L, B) = the gradient for x from g (s, A, L, B);
    tmp: scratch of at least A * L * B values. Overwrites dx."""
    dx[...] = 0
    flat = dx.reshape(-1)
    b = dx.shape[2]
    part = tmp[: dx.size].reshape(dx.shape)
    one = g.dtype.type
    for r, tap, lower, upper in phases(g.shape[0]):
        lower, upper = one(lower), one(upper)
        # The neighbour row's share first: an edge row's share stays in it (clamped), and
        # with it zeroed in ``part`` the flat offset carries nothing into another A.
        edge = 0 if tap == 0 else -1
        np.multiply(g[r], lower if tap == 0 else upper, out=part)
        dx[:, edge] += part[:, edge]
        part[:, edge] = 0
        if tap == 0:
            flat[:-b] += part.reshape(-1)[b:]
        else:
            flat[b:] += part.reshape(-1)[:-b]
        np.multiply(g[r], upper if tap == 0 else lower, out=part)
        flat += part.reshape(-1)


def _bilinear_forward_cpu(x, sh, sw, workspace):
    n, h, w, c = x.shape
    tmp = workspace.get("bilinear_tmp", (sh * x.size,), x.dtype, np)
    rows = workspace.get("bilinear_rows", (sh, n, h, w * c), x.dtype, np)
    _resample_cpu(x.reshape(n, h, w * c), sh, rows, tmp)
    both = workspace.get("bilinear_both", (sw, sh * n * h, w, c), x.dtype, np)
    _resample_cpu(rows.reshape(sh * n * h, w, c), sw, both, tmp)
    # Phases to their places: one interleaving copy, as nearest upsampling writes.
    y = np.empty((n, h, sh, w, sw, c), dtype=x.dtype)
    np.copyto(y, both.reshape(sw, sh, n, h, w, c).transpose(2, 3, 1, 4, 0, 5))
    return y.reshape(n, h * sh, w * sw, c)


def _bilinear_backward_cpu(dy, sh, sw, workspace):
    n, oh, ow, c = dy.shape
    h, w = oh // sh, ow // sw
    g = workspace.get("bilinear_both", (sw, sh, n, h, w, c), dy.dtype, np)
    np.copyto(g, dy.reshape(n, h, sh, w, sw, c).transpose(4, 2, 0, 1, 3, 5))
    tmp = workspace.get("bilinear_tmp", (sh * n * h * w * c,), dy.dtype, np)
    rows = workspace.get("bilinear_rows", (sh * n * h, w, c), dy.dtype, np)
    _resample_adjoint_cpu(g.reshape(sw, sh * n * h, w, c), rows, tmp)
    dx = np.empty((n, h, w * c), dtype=dy.dtype)
    _resample_adjoint_cpu(rows.reshape(sh, n, h, w * c), dx, tmp)
    return dx.reshape(n, h, w, c)


# The weights of phase r of a factor s along one axis, as phases() computes them (off is
# d(r)); a is the lower tap's unclamped input row (column) for block k.
_WEIGHTS = """
        double off{v} = ({o} % {s} + 0.5) / {s} - 0.5;
        int a{v} = off{v} < 0 ? {k} - 1 : {k};
        T lower{v} = (T)(off{v} < 0 ? -off{v} : 1 - off{v});
        T upper{v} = (T)(off{v} < 0 ? 1 + off{v} : off{v});
"""

_GPU_SOURCES = {
    "forward": (
        "raw T x, int32 h, int32 w, int32 c, int32 sh, int32 sw",
        "T y",
        """
        int ch = i % c; ptrdiff_t t = i / c;
        int ox = t % (w * sw); t /= w * sw;
        int oy = t % (h * sh); ptrdiff_t n = t / (h * sh);
        """
        + _WEIGHTS.format(v="y", o="oy", s="sh", k="oy / sh")
        + _WEIGHTS.format(v="x", o="ox", s="sw", k="ox / sw")
        + """
        int y0 = ay > 0 ? ay : 0, y1 = ay + 1 < h ? ay + 1 : h - 1;
        int x0 = ax > 0 ? ax : 0, x1 = ax + 1 < w ? ax + 1 : w - 1;
        T left = lowery * x[((n * h + y0) * w + x0) * c + ch]
                 + uppery * x[((n * h + y1) * w + x0) * c + ch];
        T right = lowery * x[((n * h + y0) * w + x1) * c + ch]
                  + uppery * x[((n * h + y1) * w + x1) * c + ch];
        y = lowerx * left + upperx * right;
        """,
    ),
    # One thread per input cell, summing the outputs that read it: rows of blocks
    # ky in [yy - 1, yy + 1] (and columns likewise) are the only ones whose taps reach it.
    "backward": (
        "raw T dy, int32 h, int32 w, int32 c, int32 sh, int32 sw",
        "T dx",
        """
        int ch = i % c; ptrdiff_t t = i / c;
        int xx = t % w; t /= w;
        int yy = t % h; ptrdiff_t n = t / h;
        T sum = 0;
        for (int ky = yy - 1; ky <= yy + 1; ++ky) {
            if (ky < 0 || ky >= h) continue;
            for (int oy = ky * sh; oy < (ky + 1) * sh; ++oy) {
        """
        + _WEIGHTS.format(v="y", o="oy", s="sh", k="ky")
        + """
                T wy = ((ay > 0 ? ay : 0) == yy ? lowery : (T)0)
                       + ((ay + 1 < h ? ay + 1 : h - 1) == yy ? uppery : (T)0);
                if (wy == 0) continue;
                for (int kx = xx - 1; kx <= xx + 1; ++kx) {
                    if (kx < 0 || kx >= w) continue;
                    for (int ox = kx * sw; ox < (kx + 1) * sw; ++ox) {
        """
        + _WEIGHTS.format(v="x", o="ox", s="sw", k="kx")
        + """
                        T wx = ((ax > 0 ? ax : 0) == xx ? lowerx : (T)0)
                               + ((ax + 1 < w ? ax + 1 : w - 1) == xx ? upperx : (T)0);
                        sum += wy * wx * dy[((n * h * sh + oy) * w * sw + ox) * c + ch];
                    }
                }
            }
        }
        dx = sum;
        """,
    ),
}


def bilinear_forward(x, sh, sw, workspace):
    """(N, H, W, C) -> (N, H*SH, W*SW, C), bilinearly as jax.image.resize; ``workspace``
    (an engine.workspace.Workspace) keeps the CPU's intermediate planes."""
    if backend.is_gpu_array(x):
        cupy = backend._import_cupy()
        n, h, w, c = x.shape
        y = cupy.empty((n, h * sh, w * sw, c), dtype=x.dtype)
        backend.elementwise_kernel("xpcnn_bilinear_forward", _GPU_SOURCES["forward"])(
            cupy.ascontiguousarray(x), h, w, c, sh, sw, y
        )
        return y
    return _bilinear_forward_cpu(x, sh, sw, workspace)


def bilinear_backward(dy, sh, sw, workspace):
    """The gradient for x (N, H, W, C) from dy (N, H*SH, W*SW, C)."""
    if backend.is_gpu_array(dy):
        cupy = backend._import_cupy()
        n, oh, ow, c = dy.shape
        dx = cupy.empty((n, oh // sh, ow // sw, c), dtype=dy.dtype)
        backend.elementwise_kernel("xpcnn_bilinear_backward", _GPU_SOURCES["backward"])(
            cupy.ascontiguousarray(dy), oh // sh, ow // sw, c, sh, sw, dx
        )
        return dx
    return _bilinear_backward_cpu(dy, sh, sw, workspace)
