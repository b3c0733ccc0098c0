"""MaxPooling2D and AveragePooling2D (channels-last), with Keras's floor semantics: 11 -> 5
for pool 2; 'same' pads so that the output is ceil(size / stride), the odd extra cell at
the bottom/right."""

from engine import avgpool, maxpool, utils
from layers.base import Layer
from layers.conv import spatial_plan


class _Pooling2D(Layer):
    """A (PH, PW) window moved by ``strides`` (default: pool_size); after build, ``pads``
    is the padding (top, bottom, left, right) of the built input shape."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        what = type(self).__name__
        self.pool_size = utils.as_pair(pool_size, f"{what} pool_size")
        self.strides = (
            self.pool_size if strides is None else utils.as_pair(strides, f"{what} strides")
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
            f"{type(self).__name__} {self.name!r}",
        )

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        (oh, ow), _ = self._plan(input_shape)
        return (oh, ow, input_shape[2])

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        _, self.pads = self._plan(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }


class MaxPooling2D(_Pooling2D):
    """Maximum over (PH, PW) windows moved by ``strides`` (default: pool_size).

    The gradient of a window goes to its first maximum in row-major order when
    several elements tie, so exactly one input receives it.
    """

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


class AveragePooling2D(_Pooling2D):
    """Mean over (PH, PW) windows moved by ``strides`` (default: pool_size).

    With 'same' padding a window at the edge averages the real cells it covers only
    (the padding is not counted), as Keras does.
    """

    def forward(self, x, ctx):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if ctx.for_backward:
            ctx.x_shape = x.shape
        return avgpool.avg_pool_forward(x, ph, pw, sh, sw, self.pads)

    def backward(self, ctx, dy):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return avgpool.avg_pool_backward(dy, ctx.x_shape, ph, pw, sh, sw, self.pads)
