"""Dropout and SpatialDropout2D: inverted dropout, as Keras 3.

In training each unit is kept with probability 1 - rate and scaled by 1 / (1 - rate), so a
sum's expectation is unchanged; at inference the layer is the identity. The mask is drawn
on the host from ctx.rng (the fit's (seed, epoch, step, node) key) and moved to the device,
so runs are reproducible and both backends draw the same masks. Backward multiplies by the
same scaled mask.

``seed`` (Keras's argument) is mixed into that draw: two layers given different seeds draw
different masks at the same step, and a run stays reproducible from its key.

    x, y, dy:   (N, ...)
    mask:       the noise shape, e.g. (N, 1, 1, C) for SpatialDropout2D: 0 or 1 / (1 - rate),
                broadcast over x
"""

import numpy as np

from engine import backend, utils
from layers.base import Layer
from optim.optimizer import check_number


class Dropout(Layer):
    """Sets a fraction ``rate`` of the units to 0 in training and scales the others up.

    noise_shape: the mask's shape, the batch axis included (Keras's); None entries take the
    input's size, 1s share one draw along that axis: (None, 1, 1, C) drops whole channels.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_number(f"{type(self).__name__} rate", rate, low=0, high=1, high_open=True)
        self.noise_shape = _check_noise_shape(noise_shape)
        if seed is not None and (not utils.is_int(seed) or seed < 0):
            raise ValueError(
                f"{type(self).__name__} seed must be a non-negative int or None, got {seed!r}."
            )
        self.seed = None if seed is None else int(seed)

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        self.mask_shape((None, *input_shape))
        return input_shape

    def mask_shape(self, shape):
        """The mask's shape for a batch of ``shape`` ((None, ...) when the batch is unknown)."""
        if self.noise_shape is None:
            return tuple(shape)
        if len(self.noise_shape) != len(shape):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: noise_shape {self.noise_shape} has "
                f"{len(self.noise_shape)} axes, its inputs {tuple(shape)} have {len(shape)} "
                "(the batch axis counts)."
            )
        mask = tuple(n if s is None or n is None else s for s, n in zip(self.noise_shape, shape))
        if any(m not in (1, n) for m, n in zip(mask, shape) if n is not None):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: noise_shape {self.noise_shape} does not "
                f"fit inputs of shape {tuple(shape)}: each size must be None, 1 or the "
                "input's."
            )
        return mask

    def forward(self, x, ctx):
        mask = None
        if ctx.training and self.rate > 0:
            mask = self.draw_mask(x.shape, x.dtype, ctx)
        if ctx.for_backward:
            ctx.mask = mask
        return x if mask is None else x * mask

    def draw_mask(self, shape, dtype, ctx):
        """The scaled mask (0 or 1 / (1 - rate), in ``dtype``) on the device, drawn on the host."""
        rng = ctx.rng
        if self.seed is not None:
            rng = np.random.default_rng([self.seed, int(rng.integers(2**63))])
        kept = rng.random(self.mask_shape(shape), dtype=np.float32) >= self.rate
        dtype = np.dtype(dtype)
        mask = np.where(kept, dtype.type(1 / (1 - self.rate)), dtype.type(0))
        return backend.to_device(mask)

    def backward(self, ctx, dy):
        if not ctx.needs_input_grad[0]:
            return None
        return dy if ctx.mask is None else dy * ctx.mask

    def get_config(self):
        noise = None if self.noise_shape is None else list(self.noise_shape)
        return {**super().get_config(), "rate": self.rate, "noise_shape": noise, "seed": self.seed}


class SpatialDropout2D(Dropout):
    """Dropout of whole feature maps: one draw per (sample, channel) of (N, H, W, C) inputs
    ((N, C, H, W) with data_format='channels_first')."""

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        if data_format is None:
            data_format = "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"SpatialDropout2D data_format must be 'channels_last' or 'channels_first', "
                f"got {data_format!r}."
            )
        self.data_format = data_format

    def mask_shape(self, shape):
        if len(shape) != 4:
            raise ValueError(
                f"SpatialDropout2D {self.name!r} expects inputs of shape (height, width, "
                f"channels) per sample, got {tuple(shape[1:])}."
            )
        n, a, b, c = shape
        return (n, 1, 1, c) if self.data_format == "channels_last" else (n, a, 1, 1)

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]
        return {**config, "data_format": self.data_format}


def _check_noise_shape(noise_shape):
    """None, or a tuple of positive ints and Nones."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, (list, tuple)) and all(
        d is None or (utils.is_int(d) and d > 0) for d in noise_shape
    ):
        return tuple(None if d is None else int(d) for d in noise_shape)
    raise ValueError(
        f"Dropout noise_shape must be a tuple of positive ints or None entries, "
        f"got {noise_shape!r}."
    )
