"""ZeroPadding2D and Cropping2D: rows and columns added at or cut from the map's edges.

Both take an int (the same on all four sides), a pair (symmetric rows, symmetric columns)
or ((top, bottom), (left, right)), as Keras. Each is the other's gradient.
"""

from engine import backend, utils
from layers.base import Layer


def edge_amounts(value, what):
    """An int, a pair, or a pair of pairs of non-negative ints -> ((top, bottom), (left,
    right)); a ValueError naming ``what`` and the value otherwise."""
    error = ValueError(
        f"{what} must be a non-negative int, a pair of them (rows, columns) or "
        f"((top, bottom), (left, right)), got {value!r}."
    )

    def amount(v):
        if utils.is_int(v) and v >= 0:
            return int(v)
        raise error

    def side(v):
        if utils.is_int(v):
            return (amount(v), amount(v))
        if isinstance(v, (tuple, list)) and len(v) == 2:
            return (amount(v[0]), amount(v[1]))
        raise error

    if utils.is_int(value):
        return (side(value), side(value))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (side(value[0]), side(value[1]))
    raise error


def _image_shape(layer, input_shape):
    input_shape = utils.standardize_shape(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r} expects inputs of shape "
            f"(height, width, channels) per sample, got {input_shape}."
        )
    return input_shape


def pad(x, amounts):
    """x (N, H, W, C) with zero rows and columns added: a new array."""
    (top, bottom), (left, right) = amounts
    n, h, w, c = x.shape
    y = backend.get_array_module(x).zeros((n, top + h + bottom, left + w + right, c), dtype=x.dtype)
    y[:, top : top + h, left : left + w, :] = x
    return y


def crop(x, amounts):
    """x (N, H, W, C) without the edge rows and columns: a new array."""
    (top, bottom), (left, right) = amounts
    _, h, w, _ = x.shape
    kept = x[:, top : h - bottom, left : w - right, :]
    return backend.get_array_module(x).ascontiguousarray(kept)


class ZeroPadding2D(Layer):
    """Zero rows at the top and bottom, zero columns left and right of each map."""

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.padding = edge_amounts(padding, "ZeroPadding2D padding")

    def compute_output_shape(self, input_shape):
        h, w, c = _image_shape(self, input_shape)
        (top, bottom), (left, right) = self.padding
        return (top + h + bottom, left + w + right, c)

    def forward(self, x, ctx):
        return pad(x, self.padding)

    def backward(self, ctx, dy):
        return crop(dy, self.padding)

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}


class Cropping2D(Layer):
    """Rows cut at the top and bottom, columns left and right of each map; at least one
    row and one column must remain."""

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(**kwargs)
        self.cropping = edge_amounts(cropping, "Cropping2D cropping")

    def compute_output_shape(self, input_shape):
        h, w, c = _image_shape(self, input_shape)
        (top, bottom), (left, right) = self.cropping
        if top + bottom >= h or left + right >= w:
            raise ValueError(
                f"Cropping2D {self.name!r}: cropping {self.cropping} leaves nothing of "
                f"inputs {(h, w, c)}: it must be smaller than the height and width."
            )
        return (h - top - bottom, w - left - right, c)

    def forward(self, x, ctx):
        return crop(x, self.cropping)

    def backward(self, ctx, dy):
        return pad(dy, self.cropping)

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping]}
