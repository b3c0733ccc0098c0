"""GlobalAveragePooling2D and GlobalMaxPooling2D: one value per channel of a whole map.

x: (N, H, W, C) -> y: (N, C), or (N, 1, 1, C) with keepdims=True
"""

import numpy as np

from engine import backend, utils
from layers.base import Layer


class _GlobalPooling2D(Layer):
    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(keepdims, (bool, np.bool_)):
            raise ValueError(
                f"{type(self).__name__} keepdims must be True or False, got {keepdims!r}."
            )
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} expects inputs of shape "
                f"(height, width, channels) per sample, got {input_shape}."
            )
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def _shaped(self, y):
        """y (N, C) as this layer returns it."""
        return y[:, None, None, :] if self.keepdims else y

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean of each channel over the map: one reduction forward, one broadcast back."""

    def forward(self, x, ctx):
        if ctx.for_backward:
            ctx.x_shape = x.shape
        n, h, w, c = x.shape
        return self._shaped(x.reshape(n, h * w, c).mean(axis=1))

    def backward(self, ctx, dy):
        n, h, w, c = ctx.x_shape
        dx = backend.get_array_module(dy).empty(ctx.x_shape, dtype=dy.dtype)
        dx[...] = (dy.reshape(n, c) / (h * w))[:, None, None, :]
        return dx


class GlobalMaxPooling2D(_GlobalPooling2D):
    """The maximum of each channel over the map.

    When several cells tie for a channel's maximum, its gradient goes to the first of
    them in row-major (height, width) order, as MaxPooling2D does, so exactly one cell
    receives it. (Keras on JAX splits it equally between the tied cells instead: the
    same total, the same gradient wherever there is no tie.)
    """

    def forward(self, x, ctx):
        n, h, w, c = x.shape
        cells = x.reshape(n, h * w, c)
        if not ctx.for_backward:
            return self._shaped(cells.max(axis=1))
        xp = backend.get_array_module(x)
        first = cells.argmax(axis=1)  # argmax returns the first maximum
        ctx.first, ctx.x_shape = first, x.shape
        return self._shaped(xp.take_along_axis(cells, first[:, None, :], axis=1)[:, 0, :])

    def backward(self, ctx, dy):
        n, h, w, c = ctx.x_shape
        xp = backend.get_array_module(dy)
        cell = xp.arange(h * w, dtype=ctx.first.dtype)[None, :, None]
        hit = cell == ctx.first[:, None, :]
        return (hit * dy.reshape(n, 1, c)).reshape(ctx.x_shape)
