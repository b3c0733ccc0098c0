"""The convolution family against Keras, float32 and float64: forward, d/dinput and
d/dweights of dilated and grouped Conv2D, DepthwiseConv2D, SeparableConv2D and
Conv2DTranspose over a grid of their options, Keras's weights loaded with set_weights."""

import keras
import numpy as np
import pytest
from keras_helpers import assert_matches_keras, random_weights
from test_keras_layers import RTOL, keras_activation, normal

from layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D

pytestmark = pytest.mark.keras

# Inputs are 7x8 with 4 channels, as in test_keras_layers.py: an odd height and an even width,
# so 'same' padding puts its odd extra row or column at the bottom/right on one axis or the
# other, and 'valid' with stride 2 leaves a last column unused.
SHAPE = (2, 7, 8, 4)


def both(name, *args, activation=None, **kwargs):
    """(build_keras, build_ours) for the layer class ``name`` with the same arguments."""
    keras_kwargs = {**kwargs, "activation": keras_activation(activation) if activation else None}
    ours = {"Conv2D": Conv2D, "DepthwiseConv2D": DepthwiseConv2D}
    ours |= {"SeparableConv2D": SeparableConv2D, "Conv2DTranspose": Conv2DTranspose}
    return (
        lambda: getattr(keras.layers, name)(*args, **keras_kwargs),
        lambda: ours[name](*args, activation=activation, **kwargs),
    )


def check(name, *args, floatx, shape=SHAPE, **kwargs):
    assert_matches_keras(*both(name, *args, **kwargs), normal(shape, floatx), RTOL[floatx])


# -- Conv2D: dilation_rate and groups -------------------------------------------------------


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("dilation", [2, (2, 1), (1, 3)], ids=str)
@pytest.mark.parametrize("kernel", [3, (3, 2)], ids=str)
def test_conv2d_dilation(kernel, dilation, padding, floatx):
    check("Conv2D", 5, kernel, padding=padding, dilation_rate=dilation, floatx=floatx)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("groups, filters", [(2, 6), (4, 4), (4, 8)], ids=str)
def test_conv2d_groups(groups, filters, strides, padding, floatx):
    check("Conv2D", filters, 3, strides, padding, groups=groups, floatx=floatx)


@pytest.mark.parametrize("activation", [None, "relu", "tanh"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_conv2d_dilated_and_grouped(use_bias, activation, floatx):
    check(
        "Conv2D",
        6,
        (2, 3),
        padding="same",
        dilation_rate=(2, 2),
        groups=2,
        use_bias=use_bias,
        activation=activation,
        floatx=floatx,
    )


# -- DepthwiseConv2D ------------------------------------------------------------------------


@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2, (1, 2)], ids=str)
@pytest.mark.parametrize("kernel", [3, (2, 3)], ids=str)
def test_depthwise_conv2d(kernel, strides, padding, multiplier, floatx):
    check("DepthwiseConv2D", kernel, strides, padding, depth_multiplier=multiplier, floatx=floatx)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides, dilation", [(1, 2), (1, (2, 1)), (2, 2)], ids=str)
def test_depthwise_conv2d_dilation(strides, dilation, padding, floatx):
    # Keras's JAX backend takes strides > 1 with dilation > 1 for depthwise convolutions.
    check(
        "DepthwiseConv2D",
        3,
        strides,
        padding,
        depth_multiplier=3,
        dilation_rate=dilation,
        floatx=floatx,
    )


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "softmax"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_depthwise_conv2d_bias_and_activation(use_bias, activation, floatx):
    check(
        "DepthwiseConv2D",
        3,
        padding="same",
        depth_multiplier=2,
        use_bias=use_bias,
        activation=activation,
        floatx=floatx,
    )


# -- SeparableConv2D ------------------------------------------------------------------------


@pytest.mark.parametrize("multiplier", [1, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
def test_separable_conv2d(strides, padding, multiplier, floatx):
    check("SeparableConv2D", 5, 3, strides, padding, depth_multiplier=multiplier, floatx=floatx)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("dilation", [2, (1, 2)], ids=str)
def test_separable_conv2d_dilation(dilation, padding, floatx):
    check(
        "SeparableConv2D",
        3,
        (3, 2),
        padding=padding,
        dilation_rate=dilation,
        depth_multiplier=2,
        floatx=floatx,
    )


@pytest.mark.parametrize("activation", [None, "relu", "tanh"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_separable_conv2d_bias_and_activation(use_bias, activation, floatx):
    check(
        "SeparableConv2D",
        4,
        3,
        padding="same",
        use_bias=use_bias,
        activation=activation,
        floatx=floatx,
    )


# -- Conv2DTranspose ------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2, 3, (2, 3)], ids=str)
@pytest.mark.parametrize("kernel", [3, 2, (3, 4)], ids=str)
def test_conv2d_transpose(kernel, strides, padding, floatx):
    # kernel 2 with stride 3: output rows no input reaches (they hold the bias only)
    check("Conv2DTranspose", 3, kernel, strides, padding, floatx=floatx, shape=(2, 4, 5, 3))


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(
    "kernel, strides, output_padding",
    [(3, 2, 1), (3, 2, 0), (3, (2, 3), (1, 2)), (4, 3, (2, 0)), (2, 3, 2), ((1, 2), 2, (1, 0))],
    ids=str,
)
def test_conv2d_transpose_output_padding(kernel, strides, output_padding, padding, floatx):
    check(
        "Conv2DTranspose",
        3,
        kernel,
        strides,
        padding,
        output_padding=output_padding,
        floatx=floatx,
        shape=(2, 4, 5, 3),
    )


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kernel, dilation", [(3, 2), ((2, 3), (3, 2))], ids=str)
def test_conv2d_transpose_dilation(kernel, dilation, padding, floatx):
    check(
        "Conv2DTranspose",
        3,
        kernel,
        padding=padding,
        dilation_rate=dilation,
        floatx=floatx,
        shape=(2, 4, 5, 3),
    )


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_conv2d_transpose_bias_and_activation(use_bias, activation, floatx):
    check(
        "Conv2DTranspose",
        4,
        3,
        2,
        "same",
        use_bias=use_bias,
        activation=activation,
        floatx=floatx,
        shape=(2, 4, 5, 3),
    )


def test_weights_go_both_ways_with_set_weights_in_keras_layouts(keras_float32):
    """Weight shapes and order are Keras's: each side loads the other's get_weights() and
    then computes the same outputs (inference)."""
    x = normal(SHAPE, "float32")
    rng = np.random.default_rng(4)
    for name, args, kwargs in [
        ("Conv2D", (6, 3), {"groups": 2, "dilation_rate": 2}),
        ("DepthwiseConv2D", (3,), {"depth_multiplier": 2}),
        ("SeparableConv2D", (5, 3), {"depth_multiplier": 3}),
        ("Conv2DTranspose", (5, 3), {"strides": 2, "output_padding": 1}),
    ]:
        build_keras, build_ours = both(name, *args, **kwargs)
        k_layer, layer = build_keras(), build_ours()
        k_layer.build(x.shape)
        layer.build(x.shape[1:])
        assert [w.shape for w in layer.get_weights()] == [w.shape for w in k_layer.get_weights()]
        k_layer.set_weights(random_weights(k_layer.get_weights(), rng))
        layer.set_weights(k_layer.get_weights())
        np.testing.assert_allclose(layer(x), np.asarray(k_layer(x)), rtol=1e-5, atol=1e-5)
        layer.set_weights(random_weights(layer.get_weights(), rng))
        k_layer.set_weights(layer.get_weights())
        np.testing.assert_allclose(layer(x), np.asarray(k_layer(x)), rtol=1e-5, atol=1e-5)
