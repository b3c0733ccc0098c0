"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum and Concatenate.

Each is called on a list of tensors: ``Add()([x, shortcut])``. The elementwise ones take
inputs of one shape, or shapes that broadcast as Keras's merge layers allow (a dimension
of 1 against any, the shorter shape aligned on the right); their gradient sums over the
broadcast axes. Maximum and Minimum send a tie's gradient to the first input holding
the extreme value (as max pooling does), so exactly one input receives it.
"""

import numpy as np

from engine import backend, utils
from layers.base import Layer


class _Merge(Layer):
    """The elementwise merges: forward combines the inputs, ``input_gradients`` splits dy."""

    min_inputs = 1
    max_inputs = None

    def compute_output_shape(self, input_shape):
        shapes = merge_input_shapes(self, input_shape)
        out = shapes[0]
        for shape in shapes[1:]:
            out = self._broadcast(out, shape, shapes)
        return out

    def _broadcast(self, a, b, shapes):
        if len(a) < len(b):
            a, b = b, a
        out = list(a)
        for i, (da, db) in enumerate(zip(a[len(a) - len(b) :], b)):
            if da != db and 1 not in (da, db):
                raise ValueError(
                    f"{type(self).__name__} {self.name!r} cannot merge inputs of shapes "
                    f"{', '.join(str((None, *s)) for s in shapes)}: dimension {da} against {db}."
                )
            out[len(a) - len(b) + i] = max(da, db)
        return tuple(out)

    def forward(self, xs, ctx):
        y = self.combine(xs)
        if ctx.for_backward:
            ctx.xs, ctx.y = xs, y
        return y

    def backward(self, ctx, dy):
        grads = self.input_gradients(ctx, dy)
        return [
            _unbroadcast(g, x.shape) if need else None
            for g, x, need in zip(grads, ctx.xs, ctx.needs_input_grad)
        ]

    def combine(self, xs):
        raise NotImplementedError

    def input_gradients(self, ctx, dy):
        raise NotImplementedError


def merge_input_shapes(layer, input_shape):
    """The list of input shapes of a merge layer, checked against its input count."""
    what = f"{type(layer).__name__} {layer.name!r}"
    if not isinstance(input_shape, list):
        raise ValueError(
            f"{what} must be called on a list of tensors, e.g. {type(layer).__name__}()"
            f"([a, b]), got one input of shape {input_shape}."
        )
    count, low, high = len(input_shape), layer.min_inputs, layer.max_inputs
    if count < low or (high and count > high):
        wanted = f"exactly {high}" if high == low else f"at least {low}"
        raise ValueError(f"{what} takes {wanted} inputs, got {count}.")
    return [utils.standardize_shape(s) for s in input_shape]


def _unbroadcast(g, shape):
    """g summed over the axes along which an input of ``shape`` was broadcast."""
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, d in enumerate(shape) if d == 1 and g.shape[extra + i] != 1
    )
    return g.sum(axis=axes, keepdims=True).reshape(shape)


class Add(_Merge):
    """The sum of the inputs."""

    def combine(self, xs):
        y = xs[0] + xs[1] if len(xs) > 1 else xs[0].copy()
        for x in xs[2:]:
            y += x
        return y

    def input_gradients(self, ctx, dy):
        return [dy] * len(ctx.xs)


class Subtract(_Merge):
    """inputs[0] - inputs[1]."""

    min_inputs = max_inputs = 2

    def combine(self, xs):
        return xs[0] - xs[1]

    def input_gradients(self, ctx, dy):
        return [dy, -dy]


class Multiply(_Merge):
    """The elementwise product of the inputs."""

    def combine(self, xs):
        y = xs[0] * xs[1] if len(xs) > 1 else xs[0].copy()
        for x in xs[2:]:
            y = y * x
        return y

    def input_gradients(self, ctx, dy):
        grads = []
        for i in range(len(ctx.xs)):
            g = dy
            for j, x in enumerate(ctx.xs):
                if j != i:
                    g = g * x
            grads.append(g)
        return grads


class Average(_Merge):
    """The mean of the inputs."""

    def combine(self, xs):
        return Add.combine(self, xs) / len(xs)

    def input_gradients(self, ctx, dy):
        return [dy / len(ctx.xs)] * len(ctx.xs)


class _Extreme(_Merge):
    """Maximum or Minimum: ``pick`` is np.maximum or np.minimum."""

    pick = None

    def combine(self, xs):
        xp = backend.get_array_module(xs[0])
        y = xs[0]
        for x in xs[1:]:
            y = getattr(xp, self.pick)(y, x)
        return y

    def input_gradients(self, ctx, dy):
        xp = backend.get_array_module(dy)
        taken = xp.zeros(ctx.y.shape, dtype=bool)
        grads = []
        for x in ctx.xs:
            hit = (xp.broadcast_to(x, ctx.y.shape) == ctx.y) & ~taken
            taken |= hit
            grads.append(dy * hit)
        return grads


class Maximum(_Extreme):
    """The elementwise maximum of the inputs."""

    pick = "maximum"


class Minimum(_Extreme):
    """The elementwise minimum of the inputs."""

    pick = "minimum"


class Concatenate(Layer):
    """The inputs joined along ``axis`` (counted with the batch axis, as Keras: -1 is the
    channels); every other dimension must agree."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not utils.is_int(axis) or axis == 0:
            raise ValueError(
                f"Concatenate axis must be a non-zero int (0 is the batch axis), got {axis!r}."
            )
        self.axis = int(axis)

    def _sample_axis(self, rank):
        """The axis within one sample's shape (rank: that shape's length)."""
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise ValueError(
                f"Concatenate {self.name!r}: axis {self.axis} is outside inputs of rank "
                f"{rank + 1} (with the batch axis)."
            )
        return axis

    min_inputs, max_inputs = 1, None

    def compute_output_shape(self, input_shape):
        shapes = merge_input_shapes(self, input_shape)
        axis = self._sample_axis(len(shapes[0]))
        for shape in shapes[1:]:
            if len(shape) != len(shapes[0]) or any(
                a != b for i, (a, b) in enumerate(zip(shape, shapes[0])) if i != axis
            ):
                raise ValueError(
                    f"Concatenate {self.name!r} joins along axis {self.axis}, so the other "
                    f"dimensions must agree; got inputs of shapes "
                    f"{', '.join(str((None, *s)) for s in shapes)}."
                )
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def forward(self, xs, ctx):
        axis = 1 + self._sample_axis(xs[0].ndim - 1)
        if ctx.for_backward:
            ctx.sizes, ctx.axis = [x.shape[axis] for x in xs], axis
        return backend.get_array_module(xs[0]).concatenate(xs, axis=axis)

    def backward(self, ctx, dy):
        xp = backend.get_array_module(dy)
        bounds = np.cumsum([0, *ctx.sizes])
        index = [slice(None)] * dy.ndim
        grads = []
        for a, b, need in zip(bounds[:-1], bounds[1:], ctx.needs_input_grad):
            index[ctx.axis] = slice(int(a), int(b))
            grads.append(xp.ascontiguousarray(dy[tuple(index)]) if need else None)
        return grads

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
