"""Rescaling: y = x * scale + offset, e.g. Rescaling(1 / 255) for 8-bit images."""

import numpy as np

from engine import backend, utils
from layers.base import Layer


def _factor(value, what):
    """A finite number (as a Python float) or array of them (float64, broadcast against
    the sample's shape, e.g. one per channel); a ValueError naming ``what`` otherwise."""
    try:
        array = np.asarray(value)
        usable = array.dtype.kind in "iuf" and array.size > 0
        array = array.astype(np.float64)
    except (TypeError, ValueError):
        usable = False
    if not usable or not np.isfinite(array).all():
        raise ValueError(
            f"Rescaling {what} must be a finite number or an array of them, got {value!r}."
        )
    return float(array) if array.ndim == 0 else array


class Rescaling(Layer):
    """y = x * scale + offset; scale and offset are numbers or arrays that broadcast against
    each sample's trailing axes (one value per channel: shape (C,))."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _factor(scale, "scale")
        self.offset = _factor(offset, "offset")

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        for what, value in (("scale", self.scale), ("offset", self.offset)):
            shape = np.shape(value)
            if len(shape) > len(input_shape) or any(
                d not in (1, e) for d, e in zip(shape[::-1], input_shape[::-1])
            ):
                raise ValueError(
                    f"Rescaling {self.name!r}: {what} of shape {shape} does not fit inputs "
                    f"of shape {input_shape}: its axes must match their trailing axes (or "
                    "be 1)."
                )
        return input_shape

    @staticmethod
    def _like(value, x):
        """A Python float as it is (NumPy and CuPy cast it to x's dtype), an array moved
        to x's device in x's dtype."""
        if isinstance(value, float):
            return value
        return backend.get_array_module(x).asarray(value, dtype=x.dtype)

    def forward(self, x, ctx):
        y = x * self._like(self.scale, x)
        if np.any(self.offset):
            y += self._like(self.offset, x)
        return y

    def backward(self, ctx, dy):
        return dy * self._like(self.scale, dy)

    def get_config(self):
        def plain(value):
            return value if isinstance(value, float) else value.tolist()

        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}
