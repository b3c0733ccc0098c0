"""Reshape and Permute: the same values in another per-sample shape or axis order.

Both count axes as Keras does: Reshape's target_shape and Permute's dims leave the batch
axis out, and Permute's dims number the sample's axes from 1.
"""

import math

from engine import backend, utils
from layers.base import Layer


class Reshape(Layer):
    """(N, *input_shape) -> (N, *target_shape), in C (channels-last) order as Keras;
    one entry of target_shape may be -1, the size that makes the element count agree."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if (
            not isinstance(target_shape, (tuple, list))
            or not target_shape
            or not all(utils.is_int(d) and (d > 0 or d == -1) for d in target_shape)
            or list(target_shape).count(-1) > 1
        ):
            raise ValueError(
                "Reshape target_shape must be a non-empty tuple of positive ints, one of "
                f"which may be -1 (the size left over), got {target_shape!r}."
            )
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if (-1 in self.target_shape and size % known) or (
            -1 not in self.target_shape and size != known
        ):
            raise ValueError(
                f"Reshape {self.name!r} cannot reshape inputs of shape {input_shape} "
                f"({size} values) to target_shape {self.target_shape}."
            )
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def forward(self, x, ctx):
        if ctx.for_backward:
            ctx.x_shape = x.shape
        return x.reshape(x.shape[0], *self.compute_output_shape(x.shape[1:]))

    def backward(self, ctx, dy):
        return dy.reshape(ctx.x_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """The sample's axes reordered: output axis i is input axis dims[i - 1] (1-based, the
    batch axis stays first), e.g. Permute((2, 1)) swaps the two axes of (N, A, B)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        if (
            not isinstance(dims, (tuple, list))
            or not dims
            or sorted(int(d) if utils.is_int(d) else -1 for d in dims)
            != list(range(1, len(dims) + 1))
        ):
            raise ValueError(
                "Permute dims must be a permutation of 1, ..., rank (the sample's axes "
                f"numbered from 1, the batch axis left out), got {dims!r}."
            )
        self.dims = tuple(int(d) for d in dims)

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        if len(input_shape) != len(self.dims):
            raise ValueError(
                f"Permute {self.name!r} with dims {self.dims} expects inputs of rank "
                f"{len(self.dims)} per sample, got shape {input_shape}."
            )
        return tuple(input_shape[d - 1] for d in self.dims)

    def forward(self, x, ctx):
        xp = backend.get_array_module(x)
        return xp.ascontiguousarray(x.transpose(0, *self.dims))

    def backward(self, ctx, dy):
        inverse = [0] * (len(self.dims) + 1)
        for position, axis in enumerate(self.dims, start=1):
            inverse[axis] = position
        return backend.get_array_module(dy).ascontiguousarray(dy.transpose(inverse))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}
