"""Convolution kernels: padding arithmetic, im2col and col2im, CPU and GPU side by side.

Notation (channels-last, as Keras):
    x:    (N, H, W, C)            input image batch
    cols: (N*OH*OW, KH*KW*C)      one row per output pixel, in (ky, kx, c) order,
                                  matching a (KH, KW, C, F) kernel reshaped to (-1, F);
          (G, N*OH*OW, KH*KW*C/G) with G > 1 groups: group g's rows read its channels
                                  g*C/G ... (g+1)*C/G - 1 (grouped convolution)
    pads: (top, bottom, left, right) zero padding
    dilation: (DH, DW); kernel offset (ky, kx) reads input pixel (ky*DH, kx*DW) of its window,
          so a window spans (KH - 1)*DH + 1 rows (the effective kernel)
"""

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine import backend


def effective_kernel(kernel, dilation):
    """The rows (or columns) a kernel of ``kernel`` taps spaced ``dilation`` apart spans."""
    return (kernel - 1) * dilation + 1


def conv_output_size(size, kernel, stride, padding):
    """Output length and (before, after) padding of one spatial axis.

    padding is 'valid', 'same' (TensorFlow's rule: output ceil(size / stride),
    the odd extra pixel of padding at the bottom/right) or an int of explicit
    zero padding on both sides. ``kernel`` is the effective (dilated) kernel size.
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


def zero_pad(x, pads):
    """x (N, H, W, C) with (top, bottom, left, right) zero rows and columns added (a copy,
    on x's device), or x itself when there is no padding."""
    if not any(pads):
        return x
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    xp = backend.get_array_module(x)
    padded = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
    padded[:, top : top + h, left : left + w, :] = x
    return padded


def _im2col_cpu(x, kh, kw, sh, sw, pads, out, dilation, groups):
    dh, dw = dilation
    oh, ow = output_hw(x.shape, kh, kw, sh, sw, pads, dilation)
    x = zero_pad(x, pads)
    n, h, w, c = x.shape
    if out is None:
        out = np.empty(cols_shape(n * oh * ow, kh * kw * c, groups), dtype=x.dtype)
    if c == 1:
        # One channel: copying the windows would run inner loops kw elements long;
        # one copy per kernel offset runs them OW long (3x faster on MNIST's 28x28x1).
        patches = _view(out, (n, oh, ow, kh * kw))
        for ky in range(kh):
            for kx in range(kw):
                patches[..., ky * kw + kx] = x[:, taps(ky * dh, sh, oh), taps(kx * dw, sw, ow), 0]
        return out
    s_n, s_h, s_w, s_c = x.strides
    windows = as_strided(
        x,
        (n, oh, ow, kh, kw, c),
        (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
        writeable=False,
    )
    if groups == 1:
        # One contiguous copy of the sliding windows: the whole of im2col.
        np.copyto(_view(out, windows.shape), windows)
        return out
    # Grouped: the same windows, their channels split into groups, copied group-major.
    cg = c // groups
    grouped = _view(out, (groups, n, oh, ow, kh, kw, cg)).transpose(1, 2, 3, 4, 5, 0, 6)
    np.copyto(grouped, windows.reshape(n, oh, ow, kh, kw, groups, cg))
    return out


def cols_shape(m, k, groups):
    """The shape of the patches of m output pixels with k = KH*KW*C values each."""
    return (m, k) if groups == 1 else (groups, m, k // groups)


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


def output_hw(x_shape, kh, kw, sh, sw, pads, dilation=(1, 1)):
    """(OH, OW) of a (KH, KW) window, dilated by ``dilation``, moved by (SH, SW) over padded
    (N, H, W, C) inputs."""
    top, bottom, left, right = pads
    kh, kw = effective_kernel(kh, dilation[0]), effective_kernel(kw, dilation[1])
    return (x_shape[1] + top + bottom - kh) // sh + 1, (x_shape[2] + left + right - kw) // sw + 1


def taps(k, stride, out):
    """The input rows (or columns) that the kernel tap at offset ``k`` (ky * DH for a
    dilated kernel) reads for ``out`` outputs: a strided slice."""
    return slice(k, k + stride * (out - 1) + 1, stride)


def _add_offsets_cpu(dx, block, kh, kw, sh, sw, oh, ow, dilation):
    """dx (N, H, W, C) += block(ky, kx) (N, OH, OW, C) at the pixels each kernel offset
    reads: a loop over offsets adding strided slices (np.add.at is 5-50x slower)."""
    dh, dw = dilation
    for ky in range(kh):
        for kx in range(kw):
            dx[:, taps(ky * dh, sh, oh), taps(kx * dw, sw, ow)] += block(ky, kx)


def _col2im_cpu(cols, x_shape, kh, kw, sh, sw, pads, dilation, groups):
    top, bottom, left, right = pads
    n, h, w, c = x_shape
    oh, ow = output_hw(x_shape, kh, kw, sh, sw, pads, dilation)
    dx = np.zeros((n, h + top + bottom, w + left + right, c), dtype=cols.dtype)
    if groups == 1:
        cols = cols.reshape(n, oh, ow, kh, kw, c)
        block = lambda ky, kx: cols[:, :, :, ky, kx, :]  # noqa: E731
    else:
        # Group-major rows back in channel order: dx seen as (N, H, W, G, C/G).
        cols = cols.reshape(groups, n, oh, ow, kh, kw, c // groups)
        block = lambda ky, kx: cols[:, :, :, :, ky, kx, :].transpose(1, 2, 3, 0, 4)  # noqa: E731
        dx = dx.reshape(*dx.shape[:3], groups, c // groups)
    _add_offsets_cpu(dx, block, kh, kw, sh, sw, oh, ow, dilation)
    return dx.reshape(n, *dx.shape[1:3], c)[:, top : top + h, left : left + w, :]


def add_input_gradient_cpu(dx, dy, kernel, sh, sw, workspace, dilation=(1, 1), groups=1):
    """dx += the input gradient of a valid convolution: y = im2col(x) @ kernel.reshape(-1, F)
    with strides (sh, sw) over inputs shaped like dx (N, H, W, C), given dy (N*OH*OW, F).
    With G = ``groups`` > 1 the kernel is (KH, KW, C/G, F) and output channel f reads the
    channels of group f // (F/G).

    One product per kernel offset makes its contribution a contiguous (N*OH*OW, C)
    block, so the additions run long contiguous inner loops: 2x faster than col2im of
    the one product dy @ kernel2d.T, whose C-wide columns are strided. One block buffer
    (kept in ``workspace``, an engine.workspace.Workspace) serves every offset, so it
    stays in the cache.
    """
    kh, kw, cg, f = kernel.shape
    c = cg * groups
    oh, ow = output_hw(dx.shape, kh, kw, sh, sw, (0, 0, 0, 0), dilation)
    block = workspace.get("dcols", (dy.shape[0], c), dy.dtype, np)

    def offset_block(ky, kx):
        if groups == 1:
            np.matmul(dy, kernel[ky, kx].T, out=block)
        else:  # a product per group, written into the group's columns of the block
            np.matmul(
                by_group(dy, groups),
                by_group(kernel[ky, kx], groups).transpose(0, 2, 1),
                out=by_group(block, groups),
            )
        return block.reshape(dx.shape[0], oh, ow, c)

    _add_offsets_cpu(dx, offset_block, kh, kw, sh, sw, oh, ow, dilation)


def by_group(a, groups):
    """An (M, G*K) array as its (G, M, K) view: the columns of each group, no copy."""
    m, k = a.shape
    return a.reshape(m, groups, k // groups).transpose(1, 0, 2)


# Gather style: each thread writes one output element and reads what it needs,
# so there are no atomics and the results are deterministic. With groups > 1 the
# columns are group-major (G, N*OH*OW, KH*KW*C/G); groups = 1 is the plain layout.
_GPU_SOURCES = {
    "im2col": (
        "raw T x, int32 n, int32 h, int32 w, int32 c, int32 kh, int32 kw, int32 sh, int32 sw, "
        "int32 dh, int32 dw, int32 top, int32 left, int32 oh, int32 ow, int32 groups",
        "T col",
        """
        int cg = c / groups;
        int ch = i % cg; ptrdiff_t t = i / cg;
        int kx = t % kw; t /= kw;
        int ky = t % kh; t /= kh;
        int ox = t % ow; t /= ow;
        int oy = t % oh; t /= oh;
        ptrdiff_t b = t % n; int g = t / n;
        int y = oy * sh - top + ky * dh;
        int xx = ox * sw - left + kx * dw;
        col = (0 <= y && y < h && 0 <= xx && xx < w)
            ? x[((b * h + y) * w + xx) * c + g * cg + ch] : (T)0;
        """,
    ),
    "col2im": (
        "raw T col, int32 n, int32 h, int32 w, int32 c, int32 kh, int32 kw, int32 sh, int32 sw, "
        "int32 dh, int32 dw, int32 top, int32 left, int32 oh, int32 ow, int32 groups",
        "T dx",
        """
        int ch = i % c; ptrdiff_t t = i / c;
        int xx = t % w; t /= w;
        int y = t % h; ptrdiff_t b = t / h;
        int cg = c / groups;
        ptrdiff_t rows = (ch / cg) * n + b;  // the group's first column row of image b
        int cc = ch % cg;
        T sum = 0;
        for (int ky = 0; ky < kh; ++ky) {
            int ty = y + top - ky * dh;
            if (ty < 0 || ty % sh != 0) continue;
            int oy = ty / sh;
            if (oy >= oh) continue;
            for (int kx = 0; kx < kw; ++kx) {
                int tx = xx + left - kx * dw;
                if (tx < 0 || tx % sw != 0) continue;
                int ox = tx / sw;
                if (ox >= ow) continue;
                sum += col[((((rows * oh + oy) * ow + ox) * kh + ky) * kw + kx) * cg + cc];
            }
        }
        dx = sum;
        """,
    ),
}


def _gpu_geometry(x_shape, kh, kw, sh, sw, pads, dilation, groups):
    """The kernels' int32 arguments after the array: n, h, w, c ... ow, groups."""
    top, _, left, _ = pads
    oh, ow = output_hw(x_shape, kh, kw, sh, sw, pads, dilation)
    return (*x_shape, kh, kw, sh, sw, *dilation, top, left, oh, ow, groups)


def _im2col_gpu(x, kh, kw, sh, sw, pads, out, dilation, groups):
    cupy = backend._import_cupy()
    geometry = _gpu_geometry(x.shape, kh, kw, sh, sw, pads, dilation, groups)
    n, _, _, c = x.shape
    oh, ow = geometry[-3:-1]
    shape = cols_shape(n * oh * ow, kh * kw * c, groups)
    cols = cupy.empty(shape, dtype=x.dtype) if out is None else out
    backend.elementwise_kernel("xpcnn_im2col", _GPU_SOURCES["im2col"])(
        cupy.ascontiguousarray(x), *geometry, cols
    )
    return cols


def _col2im_gpu(cols, x_shape, kh, kw, sh, sw, pads, dilation, groups):
    cupy = backend._import_cupy()
    geometry = _gpu_geometry(x_shape, kh, kw, sh, sw, pads, dilation, groups)
    dx = cupy.empty(x_shape, dtype=cols.dtype)
    backend.elementwise_kernel("xpcnn_col2im", _GPU_SOURCES["col2im"])(
        cupy.ascontiguousarray(cols), *geometry, dx
    )
    return dx


def im2col(x, kh, kw, sh, sw, pads, out=None, dilation=(1, 1), groups=1):
    """(N, H, W, C) -> (N*OH*OW, KH*KW*C) patches, zero padding applied by ``pads``;
    (G, N*OH*OW, KH*KW*C/G) with ``groups`` G > 1.

    ``out``, when given, is a C-contiguous array of that shape and dtype to fill
    (a reused buffer); otherwise a new one is returned.
    """
    if backend.is_gpu_array(x):
        return _im2col_gpu(x, kh, kw, sh, sw, pads, out, dilation, groups)
    return _im2col_cpu(x, kh, kw, sh, sw, pads, out, dilation, groups)


def col2im(cols, x_shape, kh, kw, sh, sw, pads, dilation=(1, 1), groups=1):
    """The adjoint of im2col: cols -> (N, H, W, C), overlaps summed."""
    if backend.is_gpu_array(cols):
        return _col2im_gpu(cols, x_shape, kh, kw, sh, sw, pads, dilation, groups)
    return _col2im_cpu(cols, x_shape, kh, kw, sh, sw, pads, dilation, groups)


def conv_input_gradient(dy, kernel, x_shape, sh, sw, pads, workspace, dilation=(1, 1), groups=1):
    """dx (N, H, W, C) of y = im2col(x) @ kernel.reshape(-1, F), given dy (N*OH*OW, F);
    with G = ``groups`` > 1, of the grouped convolution with a (KH, KW, C/G, F) kernel.

    The GPU makes the patch gradient dy @ kernel2d.T with one product (one per group)
    and sums it with its gather-style col2im kernel; the CPU adds per-offset products
    (add_input_gradient_cpu). ``workspace`` keeps the patch gradient between steps.
    """
    if backend.is_gpu_array(dy):
        kh, kw, cg, f = kernel.shape
        xp = backend.get_array_module(dy)
        m, k = dy.shape[0], kh * kw * cg
        dcols = workspace.get("dcols", cols_shape(m, k * groups, groups), dy.dtype, xp)
        if groups == 1:
            xp.matmul(dy, kernel.reshape(-1, f).T, out=dcols)
        else:
            kernel_t = by_group(kernel.reshape(k, f), groups).transpose(0, 2, 1)
            xp.matmul(by_group(dy, groups), kernel_t, out=dcols)
        return _col2im_gpu(dcols, x_shape, kh, kw, sh, sw, pads, dilation, groups)
    top, bottom, left, right = pads
    n, h, w, c = x_shape
    dx = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
    add_input_gradient_cpu(dx, dy, kernel, sh, sw, workspace, dilation, groups)
    return dx[:, top : top + h, left : left + w, :]
