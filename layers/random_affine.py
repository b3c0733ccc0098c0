"""RandomTranslation, RandomRotation and RandomZoom: one affine transform per image, drawn as
Keras 3 draws it, applied by the shared core engine/affine.py (sampling with the chosen
interpolation and fill mode, and its adjoint for backward).

Factors are fractions: of the image's height or width for translation (0.1: by up to a
tenth of the height, up or down), of a full turn for rotation (0.1: up to 36 degrees either
way, positive counter-clockwise), of the size for zoom (positive zooms out: 0.2 samples a
region up to 20% larger). A number f draws from [-|f|, |f|]; a pair (a, b) from [a, b].
"""

import math

import numpy as np

from engine import affine, backend
from layers.augmentation import RandomAugmentation, choice, factor_range, is_finite_number


class _RandomAffine(RandomAugmentation):
    """The base: ``transforms(params, height, width)`` gives the (N, 6) host matrices."""

    def __init__(self, fill_mode, interpolation, seed, fill_value, **kwargs):
        super().__init__(seed=seed, **kwargs)
        name = type(self).__name__
        self.fill_mode = choice(fill_mode, affine.FILL_MODES, f"{name} fill_mode")
        self.interpolation = choice(interpolation, affine.INTERPOLATIONS, f"{name} interpolation")
        if not is_finite_number(fill_value):
            raise ValueError(f"{name} fill_value must be a finite number, got {fill_value!r}.")
        self.fill_value = float(fill_value)

    def transforms(self, params, height, width):
        raise NotImplementedError

    def augment(self, x, params):
        _, h, w, _ = x.shape
        transforms = backend.to_device(self.transforms(params, h, w), dtype=x.dtype)
        plan = affine.sampling(transforms, x.shape, self.interpolation, self.fill_mode)
        return affine.sample(x, plan, self.fill_value), plan

    def augment_backward(self, dy, plan):
        return affine.sample_adjoint(dy, plan)

    def get_config(self):
        return {
            **super().get_config(),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


class RandomTranslation(_RandomAffine):
    """Shifts each image by up to height_factor * H rows and width_factor * W columns
    (positive: down and right)."""

    def __init__(
        self,
        height_factor,
        width_factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = factor_range(height_factor, "RandomTranslation height_factor")
        self.width_factor = factor_range(width_factor, "RandomTranslation width_factor")

    def draw(self, rng, shape):
        n, h, w, _ = shape
        dy = rng.uniform(*self.height_factor, size=n) * h
        dx = rng.uniform(*self.width_factor, size=n) * w
        return {"translations": np.stack([dx, dy], axis=1)}  # pixels, (x, y) as Keras

    def transforms(self, params, height, width):
        dx, dy = params["translations"].T
        one, zero = np.ones_like(dx), np.zeros_like(dx)
        return np.stack([one, zero, -dx, zero, one, -dy], axis=1)

    def get_config(self):
        return {
            **super().get_config(),
            "height_factor": list(self.height_factor),
            "width_factor": list(self.width_factor),
        }


class RandomRotation(_RandomAffine):
    """Turns each image about its centre by up to factor * 360 degrees."""

    def __init__(
        self,
        factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = factor_range(factor, "RandomRotation factor")

    def draw(self, rng, shape):
        lower, upper = self.factor
        return {"angle": rng.uniform(lower * 360, upper * 360, size=shape[0])}  # degrees

    def transforms(self, params, height, width):
        theta = params["angle"] * (math.pi / 180)
        cos, sin = np.cos(theta), np.sin(theta)
        cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
        # Keras's matrix (base_image_preprocessing_layer._compute_affine_matrix): a rotation
        # about the centre (cx, cy), mapping output pixels to the input they read.
        a0, a1, b0, b1 = cos, -sin, sin, cos
        return np.stack([a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1], axis=1)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_RandomAffine):
    """Zooms each image about its centre by 1 + height_factor vertically and 1 + width_factor
    horizontally (width_factor None: the height's draw for both, keeping the aspect ratio).
    Factors lie in (-1, 1]."""

    def __init__(
        self,
        height_factor,
        width_factor=None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = factor_range(height_factor, "RandomZoom height_factor", low_open=True)
        self.width_factor = (
            None
            if width_factor is None
            else factor_range(width_factor, "RandomZoom width_factor", low_open=True)
        )

    def draw(self, rng, shape):
        lower, upper = self.height_factor
        height_zoom = rng.uniform(1 + lower, 1 + upper, size=shape[0])
        if self.width_factor is None:
            return {"height_zoom": height_zoom, "width_zoom": height_zoom}
        lower, upper = self.width_factor
        return {
            "height_zoom": height_zoom,
            "width_zoom": rng.uniform(1 + lower, 1 + upper, size=shape[0]),
        }

    def transforms(self, params, height, width):
        zx, zy = params["width_zoom"], params["height_zoom"]
        zero = np.zeros_like(zx)
        return np.stack(
            [zx, zero, (width - 1) / 2 * (1 - zx), zero, zy, (height - 1) / 2 * (1 - zy)],
            axis=1,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "height_factor": list(self.height_factor),
            "width_factor": None if self.width_factor is None else list(self.width_factor),
        }
