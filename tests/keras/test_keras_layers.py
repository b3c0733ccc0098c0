"""Every layer and option against Keras: forward, d/dinput and d/dweights, float32 and float64."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras_helpers import assert_matches_keras

import layers
from layers import (
    Activation,
    Conv2D,
    Dense,
    Flatten,
    MaxPooling2D,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from layers.activations import FUNCTIONS
from tests.gradient_check import forward_backward

pytestmark = pytest.mark.keras

RTOL = {"float64": 1e-10, "float32": 1e-5}
ACTIVATIONS = sorted(FUNCTIONS)  # every activation string, Keras's aliases swish and hard_swish too


def test_every_layer_is_covered():
    # A new public layer needs its parity test here before this list grows.
    tested = {"Activation", "Conv2D", "Dense", "Flatten", "MaxPooling2D"}
    # The convolution family: test_keras_convolutions.py.
    tested |= {"Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"}
    tested |= {"ReLU", "Sigmoid", "Softmax", "Tanh"}
    # test_keras_activations.py.
    tested |= {"LeakyReLU", "ELU", "PReLU"}
    # test_keras_augmentation.py, with the same draws on both sides.
    tested |= {"RandomFlip", "RandomContrast", "RandomTranslation", "RandomRotation", "RandomZoom"}
    # Merge and input layers: test_keras_graphs.py, in whole graphs.
    tested |= {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}
    tested |= {"Input", "InputLayer"}
    # Pooling variants, upsampling, padding, cropping, reshaping: test_keras_pooling_reshape.py.
    tested |= {"AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D"}
    tested |= {"UpSampling2D", "ZeroPadding2D", "Cropping2D", "Reshape", "Permute", "Rescaling"}
    # Normalisation and dropout layers: test_keras_normalization.py.
    tested |= {"BatchNormalization", "LayerNormalization", "Dropout", "SpatialDropout2D"}
    assert set(layers.__all__) - {"Layer"} == tested


def keras_activation(name):
    """Keras's activation for ``name``, except tanh in float64: keras.activations.tanh
    returns float32 for float64 inputs on the JAX backend (keras-team/keras issue 23223),
    so the Keras side uses the exact function, jax.numpy.tanh, instead."""
    if name == "tanh" and keras.config.floatx() == "float64":
        return jnp.tanh
    return name


def normal(shape, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def tie_free(shape, dtype, seed=2):
    """Distinct values (a shuffled linspace over [-1, 1]): max pooling has no ties.

    With ties Keras (XLA's select-and-scatter) and we may send a window's gradient to
    different, equally valid, maxima; without them both must pick the same element.
    """
    values = np.linspace(-1, 1, int(np.prod(shape)))
    return np.random.default_rng(seed).permutation(values).reshape(shape).astype(dtype)


# -- Conv2D geometry ------------------------------------------------------------------------
# Inputs are 7x8: an odd height and an even width in every case. With 'same' padding the
# total pad is k - 1 (stride 1) or, at stride 2, k - 1 on odd sizes and k - 2 on even ones,
# so the odd extra row or column (at the bottom/right, as Keras) is exercised on one axis or
# the other; with 'valid' at stride 2 the even width leaves a last column unused (floor).

KERNELS = [(1, 1), (3, 3), (5, 5), (3, 2), (2, 5)]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: f"k{k[0]}x{k[1]}")
def test_conv2d_geometry(kernel, strides, padding, floatx):
    x = normal((2, 7, 8, 3), floatx)
    assert_matches_keras(
        lambda: keras.layers.Conv2D(4, kernel, strides=strides, padding=padding),
        lambda: Conv2D(4, kernel, strides=strides, padding=padding),
        x,
        RTOL[floatx],
    )


@pytest.mark.parametrize("size", [(7, 7), (8, 8)], ids=["odd", "even"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_square_odd_and_even_inputs(size, padding, floatx):
    x = normal((2, *size, 3), floatx)
    assert_matches_keras(
        lambda: keras.layers.Conv2D(4, 3, strides=2, padding=padding),
        lambda: Conv2D(4, 3, strides=2, padding=padding),
        x,
        RTOL[floatx],
    )


@pytest.mark.parametrize("activation", [None, *ACTIVATIONS])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_conv2d_bias_and_activation(use_bias, activation, floatx):
    x = normal((2, 6, 7, 3), floatx)
    assert_matches_keras(
        lambda: keras.layers.Conv2D(
            5,
            3,
            strides=(1, 2),
            padding="same",
            use_bias=use_bias,
            activation=keras_activation(activation) if activation else None,
        ),
        lambda: Conv2D(
            5, 3, strides=(1, 2), padding="same", use_bias=use_bias, activation=activation
        ),
        x,
        RTOL[floatx],
    )


# -- MaxPooling2D ---------------------------------------------------------------------------

POOLS = [
    (2, None),  # strides equal to the pool (the default)
    (2, 1),  # strides smaller than the pool: overlapping windows
    (3, None),
    (3, 2),
    (3, 1),
    ((2, 3), (1, 2)),  # non-square pool and strides
]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool,strides", POOLS, ids=lambda v: str(v).replace(" ", ""))
def test_max_pooling2d(pool, strides, padding, floatx):
    # 7x8 inputs again: 'same' pads (with -inf) at the bottom/right where the pool needs it.
    x = tie_free((2, 7, 8, 3), floatx)
    assert_matches_keras(
        lambda: keras.layers.MaxPooling2D(pool, strides=strides, padding=padding),
        lambda: MaxPooling2D(pool, strides=strides, padding=padding),
        x,
        RTOL[floatx],
    )


def first_maximum_gradient(x, dy, pool, strides, padding):
    """Our documented rule as a NumPy oracle: each window's gradient goes to its first
    maximum in row-major order ('same' pads with -inf, the extra row/column bottom/right).

    Returns dx and a mask of the elements that are a maximum of some window.
    """
    (ph, pw), (sh, sw) = (pool, pool), strides
    n, h, w, c = x.shape
    oh, ow = dy.shape[1:3]
    pad_h = max((oh - 1) * sh + ph - h, 0) if padding == "same" else 0
    pad_w = max((ow - 1) * sw + pw - w, 0) if padding == "same" else 0
    top, left = pad_h // 2, pad_w // 2
    padded = np.full((n, h + pad_h, w + pad_w, c), -np.inf)
    padded[:, top : top + h, left : left + w] = x
    dx = np.zeros_like(padded)
    is_max = np.zeros(padded.shape, dtype=bool)
    for i in range(oh):
        for j in range(ow):
            rows, cols = slice(i * sh, i * sh + ph), slice(j * sw, j * sw + pw)
            window = padded[:, rows, cols]
            is_max[:, rows, cols] |= window == window.max(axis=(1, 2), keepdims=True)
            first = window.reshape(n, -1, c).argmax(axis=1)  # the first of equal maxima
            for b in range(n):
                for ch in range(c):
                    r, s = divmod(int(first[b, ch]), pw)
                    dx[b, i * sh + r, j * sw + s, ch] += dy[b, i, j, ch]
    inside = (slice(None), slice(top, top + h), slice(left, left + w))
    return dx[inside], is_max[inside]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool,strides", [(2, (2, 2)), (2, (1, 1)), (3, (2, 2))], ids=str)
def test_max_pooling2d_with_ties(pool, strides, padding, keras_float64):
    """Ties (values from {0, 1, 2}): which of several equal maxima receives a window's gradient
    is a convention, not part of Keras's contract. Ours is the first maximum in row-major
    order, checked against a NumPy oracle; against Keras, whatever its rule, the forward pass,
    the total gradient and where gradient may land (only on window maxima) must agree.
    (XLA on the CPU, Keras's JAX backend here, happens to pick the first maximum too; the
    test does not rely on it.)"""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (2, 7, 8, 3)).astype("float64")
    layer = MaxPooling2D(pool, strides=strides, padding=padding)
    y = layer(x, training=True)
    dy = rng.standard_normal(y.shape)
    _, dx, _ = forward_backward(layer, x, dy)
    expected, is_max = first_maximum_gradient(x, dy, pool, strides, padding)

    keras_layer = keras.layers.MaxPooling2D(pool, strides=strides, padding=padding)
    dx_keras = np.asarray(jax.grad(lambda v: jnp.sum(keras_layer(v) * dy))(jnp.asarray(x)))
    np.testing.assert_array_equal(y, np.asarray(keras_layer(x)))
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx.sum(), dx_keras.sum(), rtol=1e-12)
    assert not (dx_keras[~is_max]).any() and not (dx[~is_max]).any()


# -- Dense, Flatten, activations -----------------------------------------------------------


@pytest.mark.parametrize("activation", [None, *ACTIVATIONS])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_dense(use_bias, activation, floatx):
    x = normal((5, 7), floatx)
    assert_matches_keras(
        lambda: keras.layers.Dense(
            6, use_bias=use_bias, activation=keras_activation(activation) if activation else None
        ),
        lambda: Dense(6, use_bias=use_bias, activation=activation),
        x,
        RTOL[floatx],
    )


def test_flatten_into_dense(floatx):
    # Flatten is channels-last (C order) on both sides, so the Dense kernel rows line up.
    x = normal((3, 4, 5, 2), floatx)
    assert_matches_keras(
        lambda: [keras.layers.Flatten(), keras.layers.Dense(6, activation="relu")],
        lambda: [Flatten(), Dense(6, activation="relu")],
        x,
        RTOL[floatx],
    )


ACTIVATION_LAYERS = {
    "ReLU": (lambda: keras.layers.ReLU(), ReLU),
    "Sigmoid": (lambda: keras.layers.Activation("sigmoid"), Sigmoid),
    "Tanh": (lambda: keras.layers.Activation(keras_activation("tanh")), Tanh),
    "Softmax": (lambda: keras.layers.Softmax(), Softmax),
    **{
        f"Activation-{name}": (
            lambda name=name: keras.layers.Activation(keras_activation(name)),
            lambda name=name: Activation(name),
        )
        for name in ACTIVATIONS
    },
}


@pytest.mark.parametrize("layer", sorted(ACTIVATION_LAYERS))
def test_activation_layer(layer, floatx):
    # (N, H, W, C) inputs: softmax is over the last axis on both sides.
    x = 2 * normal((2, 3, 4, 5), floatx)
    build_keras, build_ours = ACTIVATION_LAYERS[layer]
    assert_matches_keras(build_keras, build_ours, x, RTOL[floatx])
