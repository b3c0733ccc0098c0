"""Affine resampling of image batches, and its adjoint: the geometric core that
RandomTranslation, RandomRotation and RandomZoom share. Written once on the array module
(NumPy or CuPy), vectorised over the batch; only the GPU's adjoint sums have a kernel.

Notation (channels-last):
    x:           (N, H, W, C)  the images; the output has the same shape
    transforms:  (N, 6)        per image [a0, a1, a2, b0, b1, b2], the images' dtype: output
                               pixel (row r, column c) samples the input at column
                               a0 c + a1 r + a2 and row b0 c + b1 r + b2 (the first six entries
                               of keras.ops.image.affine_transform's transforms, whose
                               projective c0, c1 are 0 here)
    Sampling:    indices (K, M) the flat input pixel each output pixel reads (M = N*H*W;
                 K = 4 corners for bilinear, 1 for nearest), weights (K, M) their weights
                 (0 where a corner lies outside under 'constant'), fill (M,) the weight of
                 fill_value ('constant' only, else None)

Interpolation and fill modes are those of jax.scipy.ndimage.map_coordinates, which Keras's
JAX backend calls: bilinear weights from floor(coordinate), nearest rounding halves away
from zero, and outside the image

    reflect   (d c b a | a b c d | d c b a)   about the edge
    wrap      (a b c d | a b c d | a b c d)
    nearest   (a a a a | a b c d | d d d d)
    constant  (k k k k | a b c d | k k k k)   k = fill_value, blended in by the weights

For fixed transforms the output is linear in x: backward is the adjoint (the transpose),
each output gradient sent back to the input pixels it read: summed by bincount on the CPU
(in float64, then cast back), on the GPU by one thread per input pixel over its
contributions sorted to it (no atomics, so the sums repeat exactly from run to run).
"""

from typing import NamedTuple

import numpy as np

from engine import backend

FILL_MODES = ("reflect", "wrap", "nearest", "constant")
INTERPOLATIONS = ("nearest", "bilinear")


class Sampling(NamedTuple):
    indices: object
    weights: object
    fill: object


def _fix(index, size, fill_mode, xp):
    """Indices (whole numbers held in floats) outside [0, size) mapped into it by the fill
    mode, and whether each was inside (None unless 'constant', where outside pixels read
    fill_value instead). In floats, k - m floor(k / m) is exact for whole numbers below 2^24
    (division rounds correctly) and 4x faster than NumPy's integer mod."""
    if fill_mode in ("reflect", "wrap"):
        period = 2 * size if fill_mode == "reflect" else size
        index = index - period * xp.floor(index / period)
        if fill_mode == "reflect":  # k for k < size, 2 size - 1 - k above, branch-free
            index = (size - 0.5) - xp.abs(index - (size - 0.5))
        return index, None
    inside = None if fill_mode == "nearest" else (index >= 0) & (index < size)
    return xp.clip(index, 0, size - 1), inside


def _nodes(coordinate, size, interpolation, fill_mode, xp):
    """[(index, inside, weight), ...] along one axis, the index as an intp array: two
    neighbours for bilinear, one for nearest (the coordinate rounded half away from zero;
    its weight None, meaning 1)."""
    if interpolation == "nearest":
        whole = xp.trunc(coordinate)
        away = xp.abs(coordinate - whole) >= 0.5  # exact: coordinate - trunc(coordinate)
        index, inside = _fix(whole + xp.sign(coordinate) * away, size, fill_mode, xp)
        return [(index.astype(xp.intp), inside, None)]
    lower = xp.floor(coordinate)
    upper_weight = coordinate - lower
    nodes = []
    for index, weight in ((lower, 1 - upper_weight), (lower + 1, upper_weight)):
        index, inside = _fix(index, size, fill_mode, xp)
        nodes.append((index.astype(xp.intp), inside, weight))
    return nodes


def sampling(transforms, shape, interpolation="bilinear", fill_mode="constant"):
    """Where each output pixel of images of ``shape`` (N, H, W, C) reads, and with which
    weights, under ``transforms`` (N, 6) (a device array of the images' dtype)."""
    xp = backend.get_array_module(transforms)
    n, h, w, _ = shape
    rows = xp.arange(h, dtype=transforms.dtype)[None, :, None]
    cols = xp.arange(w, dtype=transforms.dtype)[None, None, :]
    a0, a1, a2, b0, b1, b2 = (transforms[:, i, None, None] for i in range(6))
    # The terms in the order of Keras's einsum (row, then column, then offset).
    row_nodes = _nodes(b1 * rows + b0 * cols + b2, h, interpolation, fill_mode, xp)
    col_nodes = _nodes(a1 * rows + a0 * cols + a2, w, interpolation, fill_mode, xp)
    k = len(row_nodes) * len(col_nodes)
    indices = xp.empty((k, n, h, w), dtype=xp.intp)
    weights = xp.empty((k, n, h, w), dtype=transforms.dtype)
    fill = xp.zeros((n, h, w), dtype=transforms.dtype) if fill_mode == "constant" else None
    base = (xp.arange(n) * (h * w))[:, None, None]
    corner = 0
    for row, row_inside, row_weight in row_nodes:
        start = row * w + base  # the flat index of (image, row, column 0)
        for col, col_inside, col_weight in col_nodes:
            xp.add(start, col, out=indices[corner])
            if row_weight is None:  # nearest
                weights[corner] = 1
            else:
                xp.multiply(row_weight, col_weight, out=weights[corner])
            if fill is not None:  # what falls outside weighs fill_value instead
                outside = weights[corner] * ~(row_inside & col_inside)
                fill += outside
                weights[corner] -= outside
            corner += 1
    return Sampling(
        indices.reshape(k, -1),
        weights.reshape(k, -1),
        None if fill is None else fill.reshape(-1),
    )


def sample(x, plan, fill_value=0.0):
    """The resampled images (N, H, W, C) for ``plan`` (a Sampling of x's shape)."""
    c = x.shape[3]
    flat = x.reshape(-1, c)
    y = plan.weights[0][:, None] * flat[plan.indices[0]]
    for weight, index in zip(plan.weights[1:], plan.indices[1:]):
        y += weight[:, None] * flat[index]
    if plan.fill is not None and fill_value != 0:
        y += plan.fill[:, None] * fill_value
    return y.reshape(x.shape)


def sample_adjoint(dy, plan):
    """The gradient (N, H, W, C) of the images from the output's gradient dy: the transpose
    of ``sample`` (fill_value, a constant, receives nothing)."""
    xp = backend.get_array_module(dy)
    c = dy.shape[3]
    g = dy.reshape(-1, c)
    if c == 1:
        targets, values = plan.indices, plan.weights * g[:, 0]
    else:
        targets = plan.indices[:, :, None] * c + xp.arange(c)
        values = plan.weights[:, :, None] * g
    targets, values = targets.reshape(-1), values.reshape(-1)
    if backend.is_gpu_array(dy):
        return _gather_sums_gpu(targets, values, dy.size).reshape(dy.shape)
    dx = np.bincount(targets, weights=values, minlength=dy.size)
    return dx.astype(dy.dtype).reshape(dy.shape)


# One thread per input element, summing the contributions sorted to it (CSR rows).
_GPU_SOURCE = (
    "raw T values, raw int32 order, raw int32 starts",
    "T dx",
    """
    T sum = 0;
    for (int j = starts[i]; j < starts[i + 1]; ++j) sum += values[order[j]];
    dx = sum;
    """,
)


def _gather_sums_gpu(targets, values, size):
    """out[p] = sum of values[j] over the j with targets[j] == p, without atomics: the
    contributions sorted by target (a deterministic sort), then summed in that order."""
    cupy = backend._import_cupy()
    order = cupy.argsort(targets)
    starts = cupy.searchsorted(targets[order], cupy.arange(size + 1))
    out = cupy.empty(size, dtype=values.dtype)
    return backend.elementwise_kernel("xpcnn_affine_adjoint", _GPU_SOURCE)(
        cupy.ascontiguousarray(values), order.astype(cupy.int32), starts.astype(cupy.int32), out
    )


def affine_transform(x, transforms, interpolation="bilinear", fill_mode="constant", fill_value=0.0):
    """keras.ops.image.affine_transform for (N, H, W, C) images and (N, 6) transforms:
    (output, Sampling for sample_adjoint)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"Unknown interpolation {interpolation!r}; expected one of {', '.join(INTERPOLATIONS)}."
        )
    if fill_mode not in FILL_MODES:
        raise ValueError(
            f"Unknown fill_mode {fill_mode!r}; expected one of {', '.join(FILL_MODES)}."
        )
    plan = sampling(transforms, x.shape, interpolation, fill_mode)
    return sample(x, plan, fill_value), plan
