"""Average and global pooling, upsampling, padding, cropping, reshaping and rescaling against
Keras: forward and d/dinput (these layers have no weights; one stack adds a Conv2D so a
weight gradient flows through them too), float32 and float64."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras_helpers import assert_close, assert_matches_keras

from layers import (
    AveragePooling2D,
    Conv2D,
    Cropping2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Permute,
    Rescaling,
    Reshape,
    UpSampling2D,
    ZeroPadding2D,
)
from tests.gradient_check import forward_backward

pytestmark = pytest.mark.keras

RTOL = {"float64": 1e-10, "float32": 1e-5}


def normal(shape, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def tie_free(shape, dtype, seed=2):
    """Distinct values, so a maximum has one place (see test_keras_layers.tie_free)."""
    values = np.linspace(-1, 1, int(np.prod(shape)))
    return np.random.default_rng(seed).permutation(values).reshape(shape).astype(dtype)


# -- AveragePooling2D ----------------------------------------------------------------------

POOLS = [
    (2, None),  # the 2x2/2 fast path on the CPU
    (2, 1),  # overlapping windows
    (3, None),
    (3, 2),
    (3, 1),
    ((2, 3), (1, 2)),
    ((1, 4), (2, 3)),
]


@pytest.mark.parametrize("size", [(7, 8), (8, 8), (7, 7), (5, 3)], ids=str)
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool,strides", POOLS, ids=lambda v: str(v).replace(" ", ""))
def test_average_pooling2d(pool, strides, padding, size, floatx):
    """'same' divides an edge window by its real cells (Keras: the pooled sum over the
    pooled ones); odd sizes drop ('valid') or pad ('same') the last row or column."""
    ph, pw = np.broadcast_to(pool, 2)
    if padding == "valid" and (ph > size[0] or pw > size[1]):
        pytest.skip("the pool does not fit the input")
    x = normal((2, *size, 3), floatx)
    assert_matches_keras(
        lambda: keras.layers.AveragePooling2D(pool, strides=strides, padding=padding),
        lambda: AveragePooling2D(pool, strides=strides, padding=padding),
        x,
        RTOL[floatx],
    )


# -- global pooling ------------------------------------------------------------------------

GLOBAL = {
    "average": (keras.layers.GlobalAveragePooling2D, GlobalAveragePooling2D),
    "max": (keras.layers.GlobalMaxPooling2D, GlobalMaxPooling2D),
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("kind", sorted(GLOBAL))
@pytest.mark.parametrize("size", [(7, 8), (1, 1), (13, 5)], ids=str)
def test_global_pooling2d(kind, keepdims, size, floatx):
    x = tie_free((3, *size, 4), floatx)
    build_keras, build_ours = GLOBAL[kind]
    assert_matches_keras(
        lambda: build_keras(keepdims=keepdims),
        lambda: build_ours(keepdims=keepdims),
        x,
        RTOL[floatx],
    )


@pytest.mark.parametrize("kind", sorted(GLOBAL))
def test_global_pooling2d_inference(kind, floatx):
    """The inference path (no argmax kept) gives the same values as Keras with
    training=False."""
    x = tie_free((3, 6, 5, 4), floatx)
    build_keras, build_ours = GLOBAL[kind]
    assert_close(
        build_ours()(x),
        np.asarray(build_keras()(x, training=False)),
        RTOL[floatx],
        what="inference",
        group=f"forward {floatx}",
    )


def test_global_max_pooling2d_ties(keras_float64):
    """Ties (values from {0, 1}): ours sends a channel's gradient to its first maximum in
    row-major order; Keras on JAX splits it equally between the maxima. The forward pass,
    the total gradient and where gradient may land (only on maxima) agree."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, (3, 4, 5, 6)).astype("float64")
    dy = rng.standard_normal((3, 6))
    y, dx, _ = forward_backward(GlobalMaxPooling2D(), x, dy)
    maxima = x == x.max(axis=(1, 2), keepdims=True)
    assert (maxima.sum(axis=(1, 2)) > 1).any()  # or this test would prove nothing
    expected = np.zeros_like(x)
    for n in range(3):
        for c in range(6):
            first = np.argmax(x[n, :, :, c])  # first in row-major order
            expected[n, first // 5, first % 5, c] = dy[n, c]
    keras_layer = keras.layers.GlobalMaxPooling2D()
    dx_keras = np.asarray(jax.grad(lambda v: jnp.sum(keras_layer(v) * dy))(jnp.asarray(x)))
    np.testing.assert_array_equal(y, np.asarray(keras_layer(x)))
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_allclose(dx.sum(axis=(1, 2)), dx_keras.sum(axis=(1, 2)), rtol=1e-12)
    assert not dx_keras[~maxima].any() and not dx[~maxima].any()


# -- UpSampling2D --------------------------------------------------------------------------


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("upsampling", [(2, 2), (3, 3), (2, 3), (1, 4), (5, 1)], ids=str)
@pytest.mark.parametrize("size", [(5, 7), (1, 3), (4, 4)], ids=str)
def test_up_sampling2d(upsampling, interpolation, size, floatx):
    x = normal((2, *size, 3), floatx)
    assert_matches_keras(
        lambda: keras.layers.UpSampling2D(upsampling, interpolation=interpolation),
        lambda: UpSampling2D(upsampling, interpolation=interpolation),
        x,
        RTOL[floatx],
    )


# -- ZeroPadding2D and Cropping2D ----------------------------------------------------------

EDGES = [1, (1, 2), ((0, 2), (3, 1)), ((2, 0), (0, 0)), 0]


@pytest.mark.parametrize("padding", EDGES, ids=str)
def test_zero_padding2d(padding, floatx):
    x = normal((2, 5, 4, 3), floatx)
    assert_matches_keras(
        lambda: keras.layers.ZeroPadding2D(padding),
        lambda: ZeroPadding2D(padding),
        x,
        RTOL[floatx],
    )


@pytest.mark.parametrize("cropping", EDGES, ids=str)
def test_cropping2d(cropping, floatx):
    x = normal((2, 6, 7, 3), floatx)
    assert_matches_keras(
        lambda: keras.layers.Cropping2D(cropping),
        lambda: Cropping2D(cropping),
        x,
        RTOL[floatx],
    )


# -- Reshape and Permute -------------------------------------------------------------------


@pytest.mark.parametrize(
    "target_shape", [(-1,), (6, 10), (4, -1), (2, 3, -1), (-1, 5, 2, 2), (60,)], ids=str
)
def test_reshape(target_shape, floatx):
    x = normal((3, 4, 5, 3), floatx)
    assert_matches_keras(
        lambda: keras.layers.Reshape(target_shape),
        lambda: Reshape(target_shape),
        x,
        RTOL[floatx],
    )


@pytest.mark.parametrize("dims", [(1, 2, 3), (2, 1, 3), (3, 1, 2), (3, 2, 1), (2, 3, 1)], ids=str)
def test_permute(dims, floatx):
    x = normal((2, 3, 4, 5), floatx)
    assert_matches_keras(
        lambda: keras.layers.Permute(dims),
        lambda: Permute(dims),
        x,
        RTOL[floatx],
    )


# -- Rescaling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scale, offset",
    [(1 / 255, 0.0), (2.0, -1.0), (0.1, 0.3), ([0.5, -2.0, 3.0], [1.0, 0.0, -0.5]), (3, 1)],
    ids=str,
)
def test_rescaling(scale, offset, floatx):
    x = normal((2, 4, 5, 3), floatx) * 100
    assert_matches_keras(
        lambda: keras.layers.Rescaling(np.asarray(scale), offset=np.asarray(offset)),
        lambda: Rescaling(scale, offset=offset),
        x,
        RTOL[floatx],
    )


# -- a stack: weight gradients through all of them -----------------------------------------


def test_stack_with_a_convolution(floatx):
    x = normal((2, 9, 8, 2), floatx)
    assert_matches_keras(
        lambda: [
            keras.layers.Rescaling(0.5, offset=0.1),
            keras.layers.ZeroPadding2D(((1, 0), (2, 1))),
            keras.layers.Conv2D(4, 3, use_bias=True),
            keras.layers.AveragePooling2D(3, strides=2, padding="same"),
            keras.layers.UpSampling2D((2, 3), interpolation="bilinear"),
            keras.layers.Cropping2D((1, 2)),
            keras.layers.Permute((2, 1, 3)),
            keras.layers.Reshape((-1, 4)),
            keras.layers.Reshape((3, -1, 4)),
            keras.layers.GlobalMaxPooling2D(keepdims=True),
            keras.layers.GlobalAveragePooling2D(),
        ],
        lambda: [
            Rescaling(0.5, offset=0.1),
            ZeroPadding2D(((1, 0), (2, 1))),
            Conv2D(4, 3, use_bias=True),
            AveragePooling2D(3, strides=2, padding="same"),
            UpSampling2D((2, 3), interpolation="bilinear"),
            Cropping2D((1, 2)),
            Permute((2, 1, 3)),
            Reshape((-1, 4)),
            Reshape((3, -1, 4)),
            GlobalMaxPooling2D(keepdims=True),
            GlobalAveragePooling2D(),
        ],
        x,
        RTOL[floatx],
    )
