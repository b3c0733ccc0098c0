"""Random augmentation layers, as Keras 3's image preprocessing layers: active in training
only, the identity at inference. RandomFlip and RandomContrast live here with the base they
share; the affine ones (RandomTranslation, RandomRotation, RandomZoom) in layers/random_affine.py.

A call in training mode draws the batch's random parameters on the host from ctx.rng
(``draw(rng, shape)``, NumPy arrays named as Keras's transformations: 'flips',
'contrast_factor', 'translations', 'angle', 'height_zoom'/'width_zoom'), then applies them
(``augment(x, params)``), so a training step's draws follow from its random key alone and
are the same on every backend. For fixed parameters every augmentation is linear in the
image (up to RandomContrast's clipping mask), so backward is exact and the layers may sit
anywhere in a model.

    x, y:  (N, H, W, C) channels-last images; the output has the input's shape
"""

import math

import numpy as np

from engine import backend, utils
from layers.base import Layer


def is_finite_number(value):
    """True for a finite real number (a bool is not one)."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def factor_range(factor, what, low=-1.0, high=1.0, low_open=False):
    """Keras's factor convention: a number f gives (max(-|f|, low), |f|), a pair (a, b) gives
    (min, max); every number must lie in [low, high] ((low, high] when ``low_open``)."""
    pair = isinstance(factor, (tuple, list))
    values = list(factor) if pair else [factor]

    def inside(v):
        return is_finite_number(v) and (v > low if low_open else v >= low) and v <= high

    if (pair and len(values) != 2) or not all(map(inside, values)):
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(
            f"{what} must be a number or a pair of numbers in {bounds}, got {factor!r}."
        )
    if pair:
        return float(min(values)), float(max(values))
    return max(-abs(float(factor)), low), abs(float(factor))


def choice(value, options, what):
    """``value`` if it is one of ``options``, else a ValueError listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"Unknown {what} {value!r}; expected one of {', '.join(options)}.")
    return value


class RandomAugmentation(Layer):
    """What the random augmentation layers share: the identity at inference; in training,
    ``draw`` then ``augment``, and backward through ``augment_backward``.

    ``seed``: None, or an int mixed into every call's draws (so that two layers with
    different seeds draw differently); the draws stay a function of the call's random key.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (not utils.is_int(seed) or seed < 0):
            raise ValueError(
                f"{type(self).__name__} seed must be None or a non-negative int, got {seed!r}."
            )
        self.seed = None if seed is None else int(seed)

    def compute_output_shape(self, input_shape):
        shape = utils.standardize_shape(input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} expects images of shape (height, width, "
                f"channels) per sample, got {shape}."
            )
        return shape

    def generator(self, ctx):
        """The generator of this call's draws: ctx.rng, mixed with the seed when there is one."""
        if self.seed is None:
            return ctx.rng
        return np.random.default_rng([self.seed, int(ctx.rng.integers(2**63))])

    def forward(self, x, ctx):
        if not ctx.training:
            if ctx.for_backward:
                ctx.kept = None
            return x
        y, kept = self.augment(x, self.draw(self.generator(ctx), x.shape))
        if ctx.for_backward:
            ctx.kept = kept
        return y

    def backward(self, ctx, dy):
        if not ctx.needs_input_grad[0]:
            return None
        return dy if ctx.kept is None else self.augment_backward(dy, ctx.kept)

    def draw(self, rng, shape):
        """The random parameters for a batch of ``shape`` (N, H, W, C): host arrays."""
        raise NotImplementedError

    def augment(self, x, params):
        """(y, what augment_backward needs) for the batch x and drawn ``params``."""
        raise NotImplementedError

    def augment_backward(self, dy, kept):
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class RandomFlip(RandomAugmentation):
    """Flips each image with probability 1/2: left-right ('horizontal'), top-bottom
    ('vertical'), or both at once ('horizontal_and_vertical', as Keras 3 does it: one draw
    per image, so an image is either turned by 180 degrees or left as it is)."""

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")
    _AXES = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.mode = choice(mode, self.MODES, "RandomFlip mode")

    def draw(self, rng, shape):
        return {"flips": rng.uniform(size=shape[0]) <= 0.5}

    def augment(self, x, params):
        flips = backend.to_device(params["flips"])
        return self._flip(x, flips), flips

    def augment_backward(self, dy, flips):
        return self._flip(dy, flips)  # a flip is its own transpose

    def _flip(self, x, flips):
        xp = backend.get_array_module(x)
        return xp.where(flips[:, None, None, None], xp.flip(x, axis=self._AXES[self.mode]), x)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class RandomContrast(RandomAugmentation):
    """Per image, (x - mean) * f + mean, clipped to ``value_range``, where mean is each
    channel's mean over the image and f is drawn uniformly from [1 - lower, 1 + upper].

    ``factor``: a pair (lower, upper) in [0, 1], or a number f, which gives (0, f) as Keras
    3.15 computes it (its docstring says lower = upper; its code takes max(-f, 0) = 0).
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = factor_range(factor, "RandomContrast factor", low=0.0, high=1.0)
        if (
            not isinstance(value_range, (tuple, list))
            or len(value_range) != 2
            or not all(map(is_finite_number, value_range))
            or not value_range[0] < value_range[1]
        ):
            raise ValueError(
                "RandomContrast value_range must be a pair (low, high) of numbers with "
                f"low < high, got {value_range!r}."
            )
        self.value_range = tuple(float(v) for v in value_range)

    def draw(self, rng, shape):
        lower, upper = self.factor
        return {"contrast_factor": rng.uniform(1 - lower, 1 + upper, size=shape[0])}

    def augment(self, x, params):
        xp = backend.get_array_module(x)
        f = backend.to_device(params["contrast_factor"], dtype=x.dtype)[:, None, None, None]
        mean = x.mean(axis=(1, 2), keepdims=True)
        z = (x - mean) * f + mean
        low, high = self.value_range
        inside = (z >= low) & (z <= high)
        return xp.clip(z, low, high), (f, inside)

    def augment_backward(self, dy, kept):
        f, inside = kept
        g = dy * inside
        return f * g + (1 - f) * g.mean(axis=(1, 2), keepdims=True)

    def get_config(self):
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "value_range": list(self.value_range),
        }
