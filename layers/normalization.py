"""BatchNormalization and LayerNormalization, with Keras 3's arguments, defaults and formulas.

Both compute y = gamma * (x - mean) / sqrt(var + epsilon) + beta with the biased variance
(mean of squared deviations, as jnp.var). BatchNormalization takes mean and var per
feature over the batch (and every other axis) in training, and its moving averages at
inference; LayerNormalization takes them per sample over the normalised axes.

Axes are Keras's: they count the batch axis, so axis=-1 (or 3 for images) is the channels
of (N, H, W, C) inputs. Backward is exact through the statistics; with
xhat = (x - mean) / sqrt(var + epsilon), over the M values that share a statistic:

    dx = gamma / sqrt(var + epsilon) * (dy - mean(dy) - xhat * mean(dy * xhat))
    dgamma = sum(dy * xhat)        dbeta = sum(dy)
"""

import functools

import numpy as np

from engine import backend, distribute, initializers, regularizers, utils
from layers.base import Layer, initializer_config
from layers.conv import column_sums
from optim.optimizer import check_number

# On the CPU a per-channel vector broadcast along (M, C) rows runs NumPy's inner loop C
# times per row (2x slower for C = 32 than long rows); the BatchNormalization arithmetic
# views its (M, C) arrays as (M/R, R*C) rows instead and tiles the vectors R times, with R*C
# up to this many numbers.
_ROW_FLOATS = 2**15


def full_axes(axis, sample_shape, what):
    """Keras's ``axis`` (an int or a list of ints counting the batch axis) -> sorted positive
    axes of the (N, *sample_shape) batch; a ValueError for the batch axis or one out of range."""
    rank = len(sample_shape) + 1
    axes = []
    for a in axis if isinstance(axis, list) else [axis]:
        if not -rank <= a < rank:
            raise ValueError(
                f"{what}: axis {a} is out of range for inputs of shape (None, "
                f"{', '.join(map(str, sample_shape))}); expected -{rank} <= axis < {rank}."
            )
        if a % rank == 0:
            raise ValueError(
                f"{what}: axis {a} is the batch axis of inputs (None, "
                f"{', '.join(map(str, sample_shape))}); normalise a feature axis (-1: the last)."
            )
        axes.append(a % rank)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{what}: axis {axis!r} names an axis twice.")
    return sorted(axes)


def _check_axis(axis, what, several):
    """An int axis (or, when ``several``, a list of them) as given, or a TypeError."""
    if several and isinstance(axis, (list, tuple)) and axis and all(map(utils.is_int, axis)):
        return [int(a) for a in axis]
    if utils.is_int(axis):
        return int(axis)
    expected = "an int or a non-empty list of ints" if several else "an int"
    raise TypeError(f"{what} axis must be {expected}, got {axis!r}.")


def _check_initializers(*names):
    for initializer in names:
        initializers.get(initializer)  # an unknown name fails here, not at build time


@functools.lru_cache(maxsize=64)
def _tile_count(m, c):
    """R: the largest divisor of m with R * c <= _ROW_FLOATS (at least 1)."""
    for r in range(max(1, _ROW_FLOATS // c), 1, -1):
        if m % r == 0:
            return r
    return 1


class ChannelRows:
    """An (M, C) view as (M/R, R*C) long rows, and (C,) vectors tiled to match."""

    def __init__(self, m, c, xp):
        self.m, self.c, self.xp = m, c, xp
        self.r = _tile_count(m, c)

    def wide(self, a):
        return a.reshape(self.m // self.r, self.r * self.c)

    def tile(self, v):
        return self.xp.tile(v, self.r)


class BatchNormalization(Layer):
    """Normalises each feature (the ``axis`` of (N, ..., C) inputs) over the batch.

    Training (ctx.training, and trainable): the batch's mean and biased variance, which also
    update moving_mean and moving_variance as Keras does,
        moving = moving * momentum + batch_statistic * (1 - momentum).
    Inference, or any call while ``trainable`` is False (as in Keras 3, a frozen
    BatchNormalization runs in inference mode even in fit): the moving statistics.

    Weights in get_weights() order: gamma (scale=True), beta (center=True), moving_mean,
    moving_variance, each of shape (C,); the moving ones are non-trainable.

    Distributed training (engine.distribute): by default each rank normalises its share of
    the global batch with its own statistics (PyTorch DDP's default) and fit averages the
    moving statistics over the ranks at every step; ``synchronized=True`` (Keras's name)
    takes the statistics of the whole global batch instead, summing the moments (and in
    backward the sums of dy and dy * (x - mean)) over the ranks: then a run on P processes
    follows the one-process run. In a single process it changes nothing.

        x, y, dy:          (N, ..., C) with C = x.shape[axis]
        rows:              (M, C)   x with the feature axis last, M = N * ... (a view for -1)
        centered:          (M, C)   rows - mean, kept for backward in training
        mean, var, inv:    (C,)     inv = 1 / sqrt(var + epsilon)
    """

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        synchronized=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.axis = _check_axis(axis, "BatchNormalization", several=False)
        if not isinstance(synchronized, (bool, np.bool_)):
            raise TypeError(
                f"BatchNormalization synchronized must be True or False, got {synchronized!r}."
            )
        self.synchronized = bool(synchronized)
        self.momentum = check_number("BatchNormalization momentum", momentum, low=0, high=1)
        self.epsilon = check_number("BatchNormalization epsilon", epsilon, low=0)
        self.center, self.scale = bool(center), bool(scale)
        _check_initializers(
            beta_initializer,
            gamma_initializer,
            moving_mean_initializer,
            moving_variance_initializer,
        )
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    @property
    def mixes_samples(self):
        """In training a sample's output depends on the batch's statistics (not when frozen)."""
        return self.trainable

    def _axis(self, input_shape):
        return full_axes(self.axis, input_shape, f"BatchNormalization {self.name!r}")[0]

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        self._axis(input_shape)
        return input_shape

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        self.feature_axis = self._axis(input_shape)  # in (N, ...) numbering
        shape = (input_shape[self.feature_axis - 1],)
        if self.scale:
            self.gamma = self.add_weight(
                "gamma", shape, self.gamma_initializer, regularizer=self.gamma_regularizer
            )
        if self.center:
            self.beta = self.add_weight(
                "beta", shape, self.beta_initializer, regularizer=self.beta_regularizer
            )
        self.moving_mean = self.add_weight(
            "moving_mean", shape, self.moving_mean_initializer, trainable=False
        )
        self.moving_variance = self.add_weight(
            "moving_variance", shape, self.moving_variance_initializer, trainable=False
        )

    # -- the (M, C) layout ------------------------------------------------------------

    def _to_rows(self, a):
        """(N, ..., C, ...) -> (M, C) with the feature axis last (a view when it is last)."""
        c = a.shape[self.feature_axis]
        if self.feature_axis == a.ndim - 1:
            return a.reshape(-1, c)
        xp = backend.get_array_module(a)
        return xp.ascontiguousarray(xp.moveaxis(a, self.feature_axis, -1)).reshape(-1, c)

    def _from_rows(self, rows, shape):
        if self.feature_axis == len(shape) - 1:
            return rows.reshape(shape)
        xp = backend.get_array_module(rows)
        a = self.feature_axis
        moved = rows.reshape(*shape[:a], *shape[a + 1 :], shape[a])
        return xp.ascontiguousarray(xp.moveaxis(moved, -1, a))

    # -- forward and backward ---------------------------------------------------------

    def forward(self, x, ctx):
        xp = backend.get_array_module(x)
        rows = self._to_rows(x)
        layout = ChannelRows(*rows.shape, xp)
        batch_statistics = ctx.training and self.trainable
        if batch_statistics:
            y = xp.empty_like(rows)  # holds the squared deviations until it holds y
            count = self.batch_count(layout.m)
            mean, var, centered = self.batch_moments(
                rows, layout, ctx.workspace, scratch=y, count=count
            )
            inv, factor = self.inverse_and_factor(var)
            xp.multiply(layout.wide(centered), layout.tile(factor), out=layout.wide(y))
            if self.center:
                layout.wide(y)[...] += layout.tile(self.beta)
            if ctx.for_backward:
                ctx.centered, ctx.count = centered, count
        else:
            inv, factor = self.inverse_and_factor(self.moving_variance)
            y = layout.wide(rows) * layout.tile(factor)
            y += layout.tile(self.inference_shift(factor))
            if ctx.for_backward:
                ctx.rows, ctx.mean = rows, self.moving_mean.copy()
        if ctx.for_backward:
            ctx.inv, ctx.batch_statistics = inv, batch_statistics
        return self._from_rows(y, x.shape)

    @property
    def synchronizing(self):
        """True when the statistics span the ranks of a distributed run."""
        return self.synchronized and distribute.current() is not None

    def batch_count(self, m):
        """The rows the statistics are taken over: this batch's m, or (synchronizing) the
        global batch's, summed over the ranks."""
        return distribute.global_count(m) if self.synchronizing else m

    def batch_moments(self, rows, layout, workspace, scratch, count=None):
        """(mean, var, centered) of the batch ``rows`` (M, C), and the moving statistics
        updated with them. Two passes, so the variance does not lose digits to a large
        mean; ``scratch`` (M, C) holds the squared deviations. Synchronizing, the sums of
        both passes are summed over the ranks (``count``: the global batch's rows)."""
        xp = layout.xp
        m = self.batch_count(layout.m) if count is None else count
        mean = self._summed(column_sums(rows, workspace)) / m
        centered = workspace.get("centered", rows.shape, rows.dtype, xp)
        xp.subtract(layout.wide(rows), layout.tile(mean), out=layout.wide(centered))
        xp.multiply(centered, centered, out=scratch)
        var = self._summed(column_sums(scratch, workspace)) / m
        momentum = self.momentum
        self.moving_mean[...] = self.moving_mean * momentum + mean * (1.0 - momentum)
        self.moving_variance[...] = self.moving_variance * momentum + var * (1.0 - momentum)
        return mean, var, centered

    def _summed(self, sums):
        """Column sums (C,), summed over the ranks when synchronizing."""
        return distribute.sum_across_replicas([sums])[0] if self.synchronizing else sums

    def inverse_and_factor(self, var):
        """1 / sqrt(var + epsilon), and the factor of the normalised value: that times gamma."""
        inv = 1 / backend.get_array_module(var).sqrt(var + self.epsilon)
        return inv, inv * self.gamma if self.scale else inv

    def inference_shift(self, factor):
        """The offset of y = x * factor + shift with the moving statistics."""
        shift = -self.moving_mean * factor
        if self.center:
            shift += self.beta
        return shift

    def backward(self, ctx, dy):
        xp = backend.get_array_module(dy)
        g = self._to_rows(dy)
        layout, m = ChannelRows(*g.shape, xp), g.shape[0]
        inv, workspace = ctx.inv, ctx.workspace
        factor = inv * self.gamma if self.scale else inv
        if ctx.batch_statistics or (ctx.needs_weight_grads and self.center):
            sum_g = column_sums(g, workspace)
        if ctx.batch_statistics or (ctx.needs_weight_grads and self.scale):
            # sum(dy * (x - mean)) over the batch: dgamma's sum and the variance's term of dx
            product = workspace.get("product", g.shape, g.dtype, xp)
            if ctx.batch_statistics:
                centered = ctx.centered
            else:
                centered = product
                xp.subtract(layout.wide(ctx.rows), layout.tile(ctx.mean), out=layout.wide(product))
            xp.multiply(g, centered, out=product)
            sum_gc = column_sums(product, workspace)
        if ctx.needs_weight_grads:
            if self.scale:
                ctx.grads["gamma"] = sum_gc * inv
            if self.center:
                ctx.grads["beta"] = sum_g
        if not ctx.needs_input_grad[0]:
            return None
        if not ctx.batch_statistics:  # the statistics are constants: dx = dy * factor
            return self._from_rows(
                (layout.wide(g) * layout.tile(factor)).reshape(g.shape), dy.shape
            )
        if self.synchronizing:
            # dx depends on the whole global batch's sums; the weight gradients above stay
            # this rank's part (fit sums those over the ranks)
            sum_g, sum_gc = distribute.sum_across_replicas([sum_g.copy(), sum_gc.copy()])
            m = ctx.count
        dx = xp.subtract(layout.wide(g), layout.tile(sum_g / m))
        dx *= layout.tile(factor)
        xp.multiply(
            layout.wide(ctx.centered),
            layout.tile(factor * inv * inv * sum_gc / m),
            out=layout.wide(product),
        )
        dx -= layout.wide(product)
        return self._from_rows(dx.reshape(g.shape), dy.shape)

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializer_config(self.beta_initializer),
            "gamma_initializer": initializer_config(self.gamma_initializer),
            "moving_mean_initializer": initializer_config(self.moving_mean_initializer),
            "moving_variance_initializer": initializer_config(self.moving_variance_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "synchronized": self.synchronized,
        }


class LayerNormalization(Layer):
    """Normalises each sample over ``axis`` (an int or a list, default the last axis).

    gamma and beta have the shape of the normalised axes (Keras's), e.g. (C,) for axis=-1.
    The same computation in training and inference; no moving statistics.

        x, y, dy:       (N, ...)
        mean, inv:      x's shape with 1 on the normalised axes
    """

    def __init__(
        self,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.axis = _check_axis(axis, "LayerNormalization", several=True)
        self.epsilon = check_number("LayerNormalization epsilon", epsilon, low=0)
        self.center, self.scale = bool(center), bool(scale)
        _check_initializers(beta_initializer, gamma_initializer)
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def _axes(self, input_shape):
        return full_axes(self.axis, input_shape, f"LayerNormalization {self.name!r}")

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        self._axes(input_shape)
        return input_shape

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        self.axes = tuple(self._axes(input_shape))
        full = (1, *input_shape)
        shape = tuple(full[a] for a in self.axes)
        # gamma and beta broadcast over the batch and the axes that are not normalised
        self.broadcast_shape = tuple(d if i in self.axes else 1 for i, d in enumerate(full))
        self.other_axes = tuple(i for i in range(len(full)) if i not in self.axes)
        if self.scale:
            self.gamma = self.add_weight(
                "gamma", shape, self.gamma_initializer, regularizer=self.gamma_regularizer
            )
        if self.center:
            self.beta = self.add_weight(
                "beta", shape, self.beta_initializer, regularizer=self.beta_regularizer
            )

    def forward(self, x, ctx):
        xp = backend.get_array_module(x)
        xhat = x - x.mean(axis=self.axes, keepdims=True)
        inv = 1 / xp.sqrt((xhat * xhat).mean(axis=self.axes, keepdims=True) + self.epsilon)
        xhat *= inv
        y = xhat * self.gamma.reshape(self.broadcast_shape) if self.scale else xhat.copy()
        if self.center:
            y += self.beta.reshape(self.broadcast_shape)
        if ctx.for_backward:
            ctx.xhat, ctx.inv = xhat, inv
        return y

    def backward(self, ctx, dy):
        xhat = ctx.xhat
        if ctx.needs_weight_grads:
            if self.scale:
                ctx.grads["gamma"] = (dy * xhat).sum(axis=self.other_axes)
            if self.center:
                ctx.grads["beta"] = dy.sum(axis=self.other_axes)
        if not ctx.needs_input_grad[0]:
            return None
        dxhat = dy * self.gamma.reshape(self.broadcast_shape) if self.scale else dy
        dx = dxhat - dxhat.mean(axis=self.axes, keepdims=True)
        dx -= xhat * (dxhat * xhat).mean(axis=self.axes, keepdims=True)
        dx *= ctx.inv
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializer_config(self.beta_initializer),
            "gamma_initializer": initializer_config(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
        }
