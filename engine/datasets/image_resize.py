"""Image resizing as ``keras.ops.image.resize`` computes it (JAX backend, antialias=False).

Shapes, channels last: one image (H, W, C) or a batch (N, H, W, C) becomes
(h, w, C) or (N, h, w, C), in the input's float dtype.

Each spatial axis is resized on its own (separable filtering). Output pixel
``i`` of an axis of ``n`` input pixels resized to ``m`` samples the input at
``s = (i + 0.5) * n / m - 0.5`` (pixel centres, as TensorFlow 2 and JAX); its
value is the sum over the input pixels ``j`` near ``s`` of
``kernel(|s - j|) * x[j]``, the weights renormalised to sum to 1 where taps
fall off the image. The kernel is not widened when shrinking
(``antialias=False``, Keras's default), so shrinking by more than 2 skips
pixels as Keras does. ``nearest`` takes ``x[floor((i + 0.5) * n / m)]``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["INTERPOLATIONS", "resize"]


def _triangle(x):
    return np.maximum(0.0, 1.0 - x)


def _keys_cubic(x):
    # Keys' cubic convolution kernel with a = -0.5 (what JAX and TensorFlow call bicubic).
    inner = ((1.5 * x - 2.5) * x) * x + 1.0
    outer = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, outer, inner))


def _lanczos(radius):
    def kernel(x):
        y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(x > 1e-3, y / (np.pi**2 * x**2), 1.0)
        return np.where(x > radius, 0.0, out)

    return kernel


# name -> (radius, kernel) of the filtering methods; "nearest" is a plain gather.
_KERNELS = {
    "bilinear": (1, _triangle),
    "bicubic": (2, _keys_cubic),
    "lanczos3": (3, _lanczos(3)),
    "lanczos5": (5, _lanczos(5)),
}
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")


def resize(
    images: np.ndarray,
    size,
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    fill_value: float = 0.0,
) -> np.ndarray:
    """Resize (H, W, C) or (N, H, W, C) float images to ``size`` = (h, w).

    ``crop_to_aspect_ratio`` first crops the largest centred window with the
    target's aspect ratio; ``pad_to_aspect_ratio`` instead pads the image
    symmetrically with ``fill_value`` to that ratio (both as Keras).
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}.")
    if images.ndim not in (3, 4):
        raise ValueError(f"resize expects (H, W, C) or (N, H, W, C) images, got {images.shape}.")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("Only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True.")
    h_axis, w_axis = images.ndim - 3, images.ndim - 2
    if crop_to_aspect_ratio:
        images = _crop_to_aspect_ratio(images, size)
    elif pad_to_aspect_ratio:
        images = _pad_to_aspect_ratio(images, size, fill_value)
    for axis, length in ((h_axis, size[0]), (w_axis, size[1])):
        if images.shape[axis] != length:  # as JAX: an unchanged axis is left exactly as it is
            images = _resize_axis(images, axis, length, interpolation)
    return images


def _resize_axis(x: np.ndarray, axis: int, length: int, interpolation: str) -> np.ndarray:
    n = x.shape[axis]
    if interpolation == "nearest":
        # float32 arithmetic, as JAX computes these offsets.
        offsets = (np.arange(length, dtype=np.float32) + np.float32(0.5)) * np.float32(n)
        index = np.floor(offsets / np.float32(length)).astype(np.intp)
        return np.take(x, np.minimum(index, n - 1), axis=axis)
    radius, kernel = _KERNELS[interpolation]
    inv_scale = 1.0 / (length / n)
    sample = (np.arange(length) + 0.5) * inv_scale - 0.5  # (length,) input coordinate
    taps = np.floor(sample).astype(np.intp)[:, None] + np.arange(-radius, radius + 1)
    inside = (taps >= 0) & (taps < n)
    weights = np.where(inside, kernel(np.abs(sample[:, None] - taps)), 0.0)  # (length, taps)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(np.abs(total) > 1000 * np.finfo(np.float32).eps, weights / total, 0.0)
    weights = weights.astype(x.dtype)
    taps = np.clip(taps, 0, n - 1)
    shape = [1] * x.ndim
    shape[axis] = length
    out = np.zeros(x.shape[:axis] + (length,) + x.shape[axis + 1 :], x.dtype)
    for t in range(taps.shape[1]):  # a loop over the kernel's taps, vectorised over pixels
        out += weights[:, t].reshape(shape) * np.take(x, taps[:, t], axis=axis)
    return out


def _crop_to_aspect_ratio(x: np.ndarray, size) -> np.ndarray:
    height, width = x.shape[-3], x.shape[-2]
    crop_height = max(min(height, int(float(width * size[0]) / size[1])), 1)
    crop_width = max(min(width, int(float(height * size[1]) / size[0])), 1)
    top = int(float(height - crop_height) / 2)
    left = int(float(width - crop_width) / 2)
    return x[..., top : top + crop_height, left : left + crop_width, :]


def _pad_to_aspect_ratio(x: np.ndarray, size, fill_value) -> np.ndarray:
    height, width = x.shape[-3], x.shape[-2]
    pad_height = max(height, int(float(width * size[0]) / size[1]))
    pad_width = max(width, int(float(height * size[1]) / size[0]))
    top = int(float(pad_height - height) / 2)
    left = int(float(pad_width - width) / 2)
    pad = [(0, 0)] * x.ndim
    # As Keras: the same band on both sides, rows when the image is too wide, else columns.
    if top > 0:
        pad[-3] = (top, top)
    elif left > 0:
        pad[-2] = (left, left)
    return np.pad(x, pad, constant_values=fill_value)
