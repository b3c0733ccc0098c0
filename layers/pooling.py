"""MaxPooling2D (channels-last), with Keras's floor semantics: 11 -> 5 for pool 2."""

from engine import maxpool, utils
from layers.base import Layer
from layers.conv import spatial_plan


class MaxPooling2D(Layer):
    """Maximum over (PH, PW) windows moved by ``strides`` (default: pool_size).

    The gradient of a window goes to its first maximum in row-major order when
    several elements tie, so exactly one input receives it.
    """

    def __init__(
        self,
        pool_size=(2, 2),
        strides=None,
        padding="valid",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.pool_size = utils.as_pair(pool_size, "MaxPooling2D pool_size")
        self.strides = (
            self.pool_size if strides is None else utils.as_pair(strides, "MaxPooling2D strides")
        )
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"Unknown padding {padding!r}; expected 'valid' or 'same'.")
        self.padding = padding.lower()

    def _plan(self, input_shape):
        return spatial_plan(
            input_shape,
            self.pool_size,
            self.strides,
            self.padding,
            f"MaxPooling2D {self.name!r}",
        )

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        (oh, ow), _ = self._plan(input_shape)
        return (oh, ow, input_shape[2])

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        _, self.pads = self._plan(input_shape)

    def forward(self, x, ctx):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        y, saved = maxpool.max_pool_forward(
            x, ph, pw, sh, sw, self.pads, for_backward=ctx.for_backward
        )
        if ctx.for_backward:
            ctx.saved, ctx.x_shape = saved, x.shape
        return y

    def backward(self, ctx, dy):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return maxpool.max_pool_backward(dy, ctx.saved, ctx.x_shape, ph, pw, sh, sw, self.pads)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }
