"""UpSampling2D: (N, H, W, C) -> (N, H*SH, W*SW, C), by repetition or bilinearly."""

from engine import upsample, utils
from layers.base import Layer

INTERPOLATIONS = ("nearest", "bilinear")


class UpSampling2D(Layer):
    """Each map enlarged by the integer factors ``size`` (rows, columns).

    'nearest' repeats each cell; 'bilinear' interpolates as Keras (jax.image.resize:
    half-pixel centres, the edge rows and columns extended, no antialiasing).
    """

    def __init__(self, size=(2, 2), interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = utils.as_pair(size, "UpSampling2D size")
        if not isinstance(interpolation, str) or interpolation.lower() not in INTERPOLATIONS:
            raise ValueError(
                f"Unknown interpolation {interpolation!r} for UpSampling2D; expected one of "
                f"{', '.join(INTERPOLATIONS)}."
            )
        self.interpolation = interpolation.lower()

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                f"UpSampling2D {self.name!r} expects inputs of shape (height, width, channels) "
                f"per sample, got {input_shape}."
            )
        h, w, c = input_shape
        return (h * self.size[0], w * self.size[1], c)

    def forward(self, x, ctx):
        if self.interpolation == "nearest":
            return upsample.nearest_forward(x, *self.size)
        return upsample.bilinear_forward(x, *self.size, ctx.workspace)

    def backward(self, ctx, dy):
        if self.interpolation == "nearest":
            return upsample.nearest_backward(dy, *self.size)
        return upsample.bilinear_backward(dy, *self.size, ctx.workspace)

    def get_config(self):
        return {
            **super().get_config(),
            "size": list(self.size),
            "interpolation": self.interpolation,
        }
