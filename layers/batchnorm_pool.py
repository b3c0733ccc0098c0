"""A BatchNormalization and the 2x2 max pooling after it, run as one step on the CPU.

The fusion pass (engine/fusion.py) runs BatchNormalization (axis -1 of (H, W, C) inputs)
followed by MaxPooling2D with pool 2x2, stride 2 and no padding as one BatchNormPool2x2
step on NumPy, in any model, because there:

- the normalisation y = (x - mean) * factor + beta is monotone in x per channel
  (non-decreasing where factor = gamma / sqrt(var + epsilon) > 0, non-increasing where it
  is < 0, constant where 0), so each window's maximum of y is the normalisation of x's
  maximum, minimum or first element: pooling runs on x and the normalisation, and its
  gradient's routing, on the quarter-size pooled map, never on the whole map;
- the gradient of the normalisation's output is non-zero only at those picked elements, so
  its sums sum(dy) and sum(dy * (x - mean)) are sums over the pooled map too; what is left
  on the whole map is the dense part of dx, -(x - mean) * k - factor * mean(dy), one pass.

The statistics are the batch's over the whole map (an odd last row or column that pooling
drops included), as BatchNormalization's. The results are the two layers', up to float
rounding (a window's gradient goes to its picked element; only where rounding makes two
different x give the same y could the layers pick another). On the GPU the layers run one
by one.

    x:        (N, H, W, C)     the BatchNormalization's input
    picked:   (N, PH, PW, C)   x's element of each window whose normalisation is the maximum
    y, dy:    (N, PH, PW, C)   the pooling's output and its gradient
    centered: (N*H*W, C)       x - mean, kept in training for the dense part of dx
"""

import numpy as np

from engine import fusion, maxpool
from layers.conv import column_sums
from layers.normalization import BatchNormalization, ChannelRows
from layers.pooling import MaxPooling2D


def can_fuse(norm, pool):
    """True for a built BatchNormalization on the channels of (H, W, C) inputs, then a built
    2x2/2 unpadded max pooling."""
    return (
        isinstance(norm, BatchNormalization)
        and isinstance(pool, MaxPooling2D)
        and not norm.synchronized  # its sums span the ranks: BatchNormalization's own code
        and norm.built
        and pool.built
        and len(norm.input_shape) == 3
        and norm.feature_axis == 3
        and pool.pool_size == (2, 2)
        and pool.strides == (2, 2)
        and not any(pool.pads)
    )


def pick_extremes(quarters, factor):
    """Per channel: the windows' maximum of x where factor > 0, minimum where < 0, first
    element where 0 (then every element normalises to the same y and MaxPooling2D's
    first-maximum rule takes the first): a new (N, PH, PW, C) array."""
    picked = maxpool.max_of_quarters(quarters)
    if (factor > 0).all():
        return picked
    low = np.minimum(quarters[0], quarters[1])
    np.minimum(low, quarters[2], out=low)
    np.minimum(low, quarters[3], out=low)
    return np.where(factor > 0, picked, np.where(factor < 0, low, quarters[0]))


@fusion.register
class BatchNormPool2x2:
    """Runs ``norm`` then ``pool`` as one step; its backward fills the norm's gradients."""

    backends = ("numpy",)
    can_fuse = staticmethod(can_fuse)

    def __init__(self, norm, pool):
        self.norm, self.pool = norm, pool
        self.name = f"{norm.name}+{pool.name}"

    @property
    def mixes_samples(self):
        return self.norm.mixes_samples

    @property
    def params(self):
        return self.norm.params

    @property
    def trainable_weights(self):
        return self.norm.trainable_weights

    def forward(self, x, ctx):
        norm = self.norm
        n, h, w, c = x.shape
        rows = x.reshape(-1, c)
        layout = ChannelRows(*rows.shape, np)
        batch_statistics = ctx.training and norm.trainable
        if batch_statistics:
            squares = ctx.workspace.get("squares", rows.shape, rows.dtype, np)
            mean, var, centered = norm.batch_moments(rows, layout, ctx.workspace, squares)
        else:
            mean, var = norm.moving_mean.copy(), norm.moving_variance
        inv, factor = norm.inverse_and_factor(var)
        quarters = maxpool._quarters(x, h // 2, w // 2)
        picked = pick_extremes(quarters, factor)
        # BatchNormalization's own arithmetic on the picked elements, so y is its y there
        small = ChannelRows(picked.size // c, c, np)
        if batch_statistics:
            y = np.subtract(small.wide(picked), small.tile(mean))
            y *= small.tile(factor)
            if norm.center:
                y += small.tile(norm.beta)
        else:
            y = small.wide(picked) * small.tile(factor)
            y += small.tile(norm.inference_shift(factor))
        y = y.reshape(picked.shape)
        if ctx.for_backward:
            ctx.x, ctx.picked, ctx.mean, ctx.inv, ctx.factor = x, picked, mean, inv, factor
            ctx.batch_statistics = batch_statistics
            if batch_statistics:
                ctx.centered = centered
        return y

    def backward(self, ctx, dy):
        norm, workspace = self.norm, ctx.workspace
        x, factor = ctx.x, ctx.factor
        n, ph, pw, c = dy.shape
        m = x.size // c
        g = dy.reshape(-1, c)
        small = ChannelRows(*g.shape, np)
        sum_g = column_sums(g, workspace)
        product = workspace.get("product", g.shape, g.dtype, np)
        np.subtract(small.wide(ctx.picked), small.tile(ctx.mean), out=small.wide(product))
        product *= g
        sum_gc = column_sums(product, workspace)  # sum(dy * (x - mean)) of the whole map
        if ctx.needs_weight_grads:
            if norm.scale:
                ctx.grads["gamma"] = sum_gc * ctx.inv
            if norm.center:
                ctx.grads["beta"] = sum_g
        if not ctx.needs_input_grad[0]:
            return None
        # the gradient reaching each picked element
        scaled = (small.wide(g) * small.tile(factor)).reshape(dy.shape)
        quarters = maxpool._quarters(x, ph, pw)
        even = x.shape[1:3] == (2 * ph, 2 * pw)
        if not ctx.batch_statistics:  # constant statistics: only the picked elements
            dx = (np.empty_like if even else np.zeros_like)(x, dtype=dy.dtype)
            maxpool.route_to_first_max(scaled, quarters, ctx.picked, maxpool._quarters(dx, ph, pw))
            return dx
        # The dense part through the statistics, then the picked elements' share added.
        layout = ChannelRows(m, c, np)
        inv = ctx.inv
        dx = np.multiply(layout.wide(ctx.centered), layout.tile(-(factor * inv * inv * sum_gc / m)))
        dx -= layout.tile(factor * sum_g / m)
        dx = dx.reshape(x.shape)
        routed = workspace.get("routed", (4, n, ph, pw, c), dy.dtype, np)
        maxpool.route_to_first_max(scaled, quarters, ctx.picked, list(routed))
        for part, share in zip(maxpool._quarters(dx, ph, pw), routed):
            part += share
        return dx
