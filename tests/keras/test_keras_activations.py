"""The activation layers and functions with arguments against Keras: forward, d/dinput and
(PReLU) d/dalpha, float32 and float64. Every activation string, alone and fused in Dense and
Conv2D, is compared in test_keras_layers.py (its ACTIVATIONS are all of FUNCTIONS)."""

import keras
import numpy as np
import pytest
from keras_helpers import assert_matches_keras
from test_keras_layers import RTOL, keras_activation, normal

from layers import ELU, Activation, Conv2D, Dense, LeakyReLU, PReLU
from layers.activations import FUNCTIONS

pytestmark = pytest.mark.keras


@pytest.mark.parametrize("negative_slope", [None, 0.0, 0.05, 1.5])
def test_leaky_relu_layer(negative_slope, floatx):
    kwargs = {} if negative_slope is None else {"negative_slope": negative_slope}
    assert_matches_keras(
        lambda: keras.layers.LeakyReLU(**kwargs),
        lambda: LeakyReLU(**kwargs),
        2 * normal((2, 3, 4, 5), floatx),
        RTOL[floatx],
    )


@pytest.mark.parametrize("alpha", [None, 0.3, 2.0, -0.5])
def test_elu_layer(alpha, floatx):
    kwargs = {} if alpha is None else {"alpha": alpha}
    assert_matches_keras(
        lambda: keras.layers.ELU(**kwargs),
        lambda: ELU(**kwargs),
        2 * normal((2, 3, 4, 5), floatx),
        RTOL[floatx],
    )


@pytest.mark.parametrize("shared_axes", [None, 1, [1, 2], [2, 3], [1, 2, 3]], ids=str)
def test_prelu_layer_and_its_alpha_gradient(shared_axes, floatx):
    # assert_matches_keras gives alpha random values (Keras's initial zeros would hide it).
    assert_matches_keras(
        lambda: keras.layers.PReLU(shared_axes=shared_axes),
        lambda: PReLU(shared_axes=shared_axes),
        2 * normal((3, 4, 5, 2), floatx),
        RTOL[floatx],
    )


def test_prelu_after_dense_in_a_stack(floatx):
    assert_matches_keras(
        lambda: [keras.layers.Dense(6), keras.layers.PReLU(), keras.layers.Dense(3)],
        lambda: [Dense(6), PReLU(), Dense(3)],
        normal((4, 5), floatx),
        RTOL[floatx],
    )


CONFIGS = {
    "gelu-approximate": (
        {"name": "gelu", "approximate": True},
        lambda x: keras.activations.gelu(x, approximate=True),
    ),
    "gelu-exact": ({"name": "gelu", "approximate": False}, keras.activations.gelu),
    "elu-0.4": ({"name": "elu", "alpha": 0.4}, lambda x: keras.activations.elu(x, alpha=0.4)),
    "leaky_relu-0.01": (
        {"name": "leaky_relu", "negative_slope": 0.01},
        lambda x: keras.activations.leaky_relu(x, negative_slope=0.01),
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_functions_with_arguments(case, floatx):
    ours, theirs = CONFIGS[case]
    x = 2 * normal((2, 3, 4, 5), floatx)
    assert_matches_keras(
        lambda: keras.layers.Activation(theirs), lambda: Activation(ours), x, RTOL[floatx]
    )


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_functions_with_arguments_fused_in_conv2d(case, floatx):
    ours, theirs = CONFIGS[case]
    assert_matches_keras(
        lambda: keras.layers.Conv2D(4, 3, padding="same", activation=theirs),
        lambda: Conv2D(4, 3, padding="same", activation=ours),
        normal((2, 6, 5, 3), floatx),
        RTOL[floatx],
    )


@pytest.mark.parametrize("name", sorted(set(FUNCTIONS) - {"softmax"}))
def test_every_function_far_into_the_tails(name, floatx):
    """Inputs from -60 to 60 (every element its own scale: atol 0 and a 1% floor, as the
    table reports): softplus, silu, gelu and mish stay finite and agree with Keras where
    exp(|x|) overflows float32."""
    x = np.linspace(-60, 60, 2 * 3 * 40).reshape(2, 3, 40).astype(floatx)
    assert_matches_keras(
        lambda: keras.layers.Activation(keras_activation(name)),
        lambda: Activation(name),
        x,
        RTOL[floatx],
        atol=RTOL[floatx] * 1e-2 * 60,
    )
