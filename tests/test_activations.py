"""The activation functions and their layers (LeakyReLU, ELU, PReLU, Activation(name)):
float64 gradient checks, the values against scalar math oracles far into the tails, erfc's
accuracy, the input-keeping path fused in Dense and Conv2D, dtypes, arguments and configs.
(Keras parity: tests/keras/test_keras_activations.py.)"""

import math

import numpy as np
import pytest

from engine import backend, special
from layers import ELU, Activation, Conv2D, Dense, LeakyReLU, PReLU
from layers import activations as activations_module
from layers.activations import FUNCTIONS
from tests.gradient_check import check_layer_gradients, forward_backward

NAMES = sorted(FUNCTIONS)


def device_input(shape, rng, scale=2.0):
    return backend.to_device(scale * rng.standard_normal(shape))


# -- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_activation_gradients(backend_name, float64, rng, name):
    layer = Activation(name)
    layer.build((3, 4))
    check_layer_gradients(layer, device_input((2, 3, 4), rng), rng)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Activation({"name": "gelu", "approximate": True}),
        lambda: Activation({"name": "elu", "alpha": 0.3}),
        lambda: LeakyReLU(),
        lambda: LeakyReLU(negative_slope=0.05),
        lambda: LeakyReLU(negative_slope=0),
        lambda: ELU(),
        lambda: ELU(alpha=2.5),
    ],
    ids=[
        "gelu-approximate",
        "elu-0.3",
        "LeakyReLU",
        "LeakyReLU-0.05",
        "LeakyReLU-0",
        "ELU",
        "ELU-2.5",
    ],
)
def test_parameterised_activation_gradients(backend_name, float64, rng, make):
    layer = make()
    layer.build((3, 4))
    check_layer_gradients(layer, device_input((2, 3, 4), rng), rng)


@pytest.mark.parametrize("shared_axes", [None, 1, [1, 2], [1, 2, 3]])
def test_prelu_gradients(backend_name, float64, rng, shared_axes):
    layer = PReLU(shared_axes=shared_axes)
    layer.build((3, 4, 2))
    layer.params["alpha"][...] = backend.to_device(rng.uniform(-0.5, 0.5, layer.alpha.shape))
    check_layer_gradients(layer, device_input((2, 3, 4, 2), rng), rng)


def test_prelu_alpha_shapes_follow_shared_axes():
    for shared_axes, shape in [(None, (3, 4, 2)), (1, (1, 4, 2)), ([1, 2], (1, 1, 2))]:
        layer = PReLU(shared_axes=shared_axes)
        layer.build((3, 4, 2))
        assert layer.alpha.shape == shape


def test_prelu_at_zero_has_zero_gradients_as_keras(float64):
    """Keras's relu(x) - alpha * relu(-x) has derivative 0 at x = 0 for x and for alpha."""
    layer = PReLU(alpha_initializer="ones")
    layer.build((3,))
    x = np.array([[-1.0, 0.0, 2.0]])
    _, dx, grads = forward_backward(layer, x, np.ones((1, 3)))
    np.testing.assert_array_equal(dx, [[1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(grads["alpha"], [-1.0, 0.0, 0.0])


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "leaky_relu", "softplus", "mish"])
def test_dense_and_conv2d_keep_the_input_of_input_based_activations(
    backend_name, float64, rng, name
):
    """These functions' derivatives need x: the layers keep their pre-activation (and do not
    overwrite it in place) where relu and tanh keep only the output."""
    dense = Dense(4, activation=name)
    dense.build((5,))
    dense.params["bias"][...] = backend.to_device(rng.standard_normal(4))
    check_layer_gradients(dense, device_input((3, 5), rng), rng)
    conv = Conv2D(3, 3, padding="same", strides=(1, 2), activation=name)
    conv.build((5, 6, 2))
    conv.params["bias"][...] = backend.to_device(rng.standard_normal(3))
    check_layer_gradients(conv, device_input((2, 5, 6, 2), rng), rng)


# -- values, far into the tails -------------------------------------------------------------


def _sigmoid(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def _softplus(v):
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


_SELU = activations_module._SELU
ORACLES = {
    "linear": lambda v: v,
    "relu": lambda v: max(v, 0.0),
    "relu6": lambda v: min(max(v, 0.0), 6.0),
    "leaky_relu": lambda v: v if v >= 0 else 0.2 * v,
    "elu": lambda v: v if v > 0 else math.expm1(v),
    "selu": lambda v: _SELU.SCALE * (v if v > 0 else _SELU.ALPHA * math.expm1(v)),
    "gelu": lambda v: 0.5 * v * math.erfc(-v * math.sqrt(0.5)),  # the argument as JAX rounds it
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda v: min(max(v + 3, 0.0), 6.0) / 6,
    "silu": lambda v: v * _sigmoid(v),
    "swish": lambda v: v * _sigmoid(v),
    "hard_silu": lambda v: v * min(max(v + 3, 0.0), 6.0) / 6,
    "hard_swish": lambda v: v * min(max(v + 3, 0.0), 6.0) / 6,
    "softplus": _softplus,
    "mish": lambda v: v * math.tanh(_softplus(v)),
    "tanh": math.tanh,
}
TAILS = np.array([-1e4, -800.0, -90.0, -30.0, -7.5, -1e-9, 0.0, 1e-9, 7.5, 30.0, 90.0, 800.0, 1e4])


def test_every_elementwise_function_has_an_oracle():
    assert set(ORACLES) == set(FUNCTIONS) - {"softmax"}


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-13), ("float32", 5e-6)])
@pytest.mark.parametrize("name", sorted(ORACLES))
def test_values_and_gradients_stay_finite_and_exact_in_the_tails(backend_name, name, dtype, rtol):
    """No overflow, no NaN, and values as the float64 scalar formula gives them, from
    -1e4 to 1e4 (softplus and silu for large |x|, elu and gelu near and far from 0)."""
    x = np.concatenate([TAILS, np.linspace(-6, 6, 241)]).astype(dtype)
    expected = np.array([ORACLES[name](float(v)) for v in x])
    function = FUNCTIONS[name]
    with np.errstate(all="raise", under="ignore"):
        y = function.forward(backend.to_device(x))
        dx = function.backward(
            backend.to_device(np.ones_like(x)), function.saved_for_backward(backend.to_device(x), y)
        )
    y, dx = backend.to_numpy(y), backend.to_numpy(dx)
    assert y.dtype == dtype and dx.dtype == dtype
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    floor = 1e-300 if dtype == "float64" else 1e-37  # below: subnormal, relative error moot
    np.testing.assert_allclose(y, expected, rtol=rtol, atol=floor)
    # Far out every function is flat or of slope 1, 0.2 (leaky_relu) or SELU's scale.
    far = np.abs(x) >= 90
    assert set(np.round(dx[far].astype(np.float64), 6)) <= {0.0, 1.0, 0.2, round(_SELU.SCALE, 6)}


def test_elu_keeps_its_digits_near_zero():
    x = np.array([-1e-12, -1e-8])
    np.testing.assert_allclose(FUNCTIONS["elu"].forward(x), [math.expm1(v) for v in x], rtol=1e-15)


def test_gelu_approximate_is_the_tanh_formula():
    x = np.linspace(-5, 5, 101)
    c = math.sqrt(2 / math.pi)
    expected = 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**3)))
    gelu = activations_module.get({"name": "gelu", "approximate": True})
    np.testing.assert_allclose(gelu.forward(x), expected, rtol=1e-15)
    assert np.abs(gelu.forward(x) - FUNCTIONS["gelu"].forward(x)).max() > 1e-4  # not exact


def test_erfc_matches_the_c_library(backend_name):
    """Relative error (documented in engine/special.py) within 1e-14 in float64 and 1e-6 in
    float32 down to the smallest normal numbers; 0 and 2 at the infinities, NaN kept."""
    x = np.concatenate([np.linspace(-30, 30, 60001), [np.inf, -np.inf, np.nan]])
    for dtype, rtol, tiny in [("float64", 1e-14, 1e-300), ("float32", 1e-6, 1e-37)]:
        y = backend.to_numpy(special.erfc(backend.to_device(x.astype(dtype))))
        assert y.dtype == dtype
        reference = np.array([math.erfc(float(v)) for v in x.astype(dtype)])
        np.testing.assert_allclose(y, reference, rtol=rtol, atol=tiny)


# -- dtypes, arguments, configs -------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(backend_name, rng, name):
    layer = Activation(name)
    x = backend.to_device(rng.standard_normal((2, 5)).astype(np.float32))
    y, dx, _ = forward_backward(layer, x, backend.to_device(np.ones((2, 5), np.float32)))
    assert y.dtype == np.float32 and dx.dtype == np.float32


def test_prelu_float32_gradients_stay_float32(backend_name, rng):
    layer = PReLU(shared_axes=[1])
    layer.build((3, 2))
    x = backend.to_device(rng.standard_normal((4, 3, 2)).astype(np.float32))
    _, dx, grads = forward_backward(layer, x, x)
    assert dx.dtype == np.float32 and grads["alpha"].dtype == np.float32


BAD_ARGUMENTS = {
    "negative slope": (lambda: LeakyReLU(negative_slope=-0.1), ["negative_slope", "-0.1"]),
    "slope not a number": (lambda: LeakyReLU(negative_slope="0.1"), ["negative_slope", "'0.1'"]),
    "slope None": (lambda: LeakyReLU(negative_slope=None), ["negative_slope", "None"]),
    "alpha nan": (lambda: ELU(alpha=float("nan")), ["alpha", "nan"]),
    "alpha bool": (lambda: ELU(alpha=True), ["alpha", "True"]),
    "approximate not a bool": (
        lambda: Activation({"name": "gelu", "approximate": "yes"}),
        ["approximate", "'yes'"],
    ),
    "unknown argument": (
        lambda: Dense(3, activation={"name": "gelu", "approx": True}),
        ["'gelu'", "approximate", "approx"],
    ),
    "argument of a function without any": (
        lambda: Activation({"name": "relu", "alpha": 1.0}),
        ["'relu'", "no arguments"],
    ),
    "unknown name in a config": (
        lambda: Activation({"name": "gleu"}),
        ["'gleu'", "gelu", "silu", "leaky_relu"],
    ),
    "prelu batch axis": (lambda: PReLU(shared_axes=0), ["shared_axes", "0", "batch"]),
    "prelu axis not an int": (lambda: PReLU(shared_axes=[1.5]), ["shared_axes", "1.5"]),
    "prelu constraint": (lambda: PReLU(alpha_constraint="non_neg"), ["alpha_constraint"]),
    "prelu initializer": (lambda: PReLU(alpha_initializer="zero"), ["'zero'", "zeros"]),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments_are_refused_by_name(case):
    make, words = BAD_ARGUMENTS[case]
    with pytest.raises(ValueError) as info:
        make()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_prelu_shared_axis_beyond_the_input_is_refused_at_build():
    layer = PReLU(shared_axes=[1, 3])
    with pytest.raises(ValueError, match=r"shared_axes \[1, 3\].*\(None, 4, 5\)"):
        layer.build((4, 5))
    assert not layer.built and not layer.params


def test_configs_name_defaults_and_spell_out_the_rest():
    assert Dense(2, activation="gelu").get_config()["activation"] == "gelu"
    assert Dense(2, activation="swish").get_config()["activation"] == "silu"  # as Keras
    approximate = {"name": "gelu", "approximate": True}
    assert Activation(approximate).get_config()["activation"] == approximate
    assert (
        Conv2D(2, 3, activation={"name": "elu", "alpha": 1.0}).get_config()["activation"] == "elu"
    )
    assert LeakyReLU().get_config()["negative_slope"] == 0.3  # the layer's default is Keras's
    assert FUNCTIONS["leaky_relu"].negative_slope == 0.2  # and so is the string's
    config = PReLU(shared_axes=2).get_config()
    assert config["shared_axes"] == [2] and config["alpha_initializer"] == "zeros"


def test_save_and_load_keep_every_activation(tmp_path, rng):
    import engine
    from engine import Sequential
    from layers import Flatten

    model = Sequential(
        [
            Conv2D(3, 3, activation="gelu", input_shape=(6, 6, 2)),
            PReLU(shared_axes=[1, 2], alpha_initializer="ones"),
            Conv2D(3, 3, activation={"name": "elu", "alpha": 0.5}),
            Flatten(),
            Dense(6, activation={"name": "gelu", "approximate": True}),
            LeakyReLU(negative_slope=0.1),
            ELU(alpha=0.7),
            Activation("hard_swish"),
            PReLU(),
            Dense(3, activation="softplus"),
        ]
    )
    model.layers[1].set_weights([rng.uniform(-1, 1, (1, 1, 3))])
    model.layers[-2].set_weights([rng.uniform(-1, 1, (6,))])
    x = rng.standard_normal((4, 6, 6, 2)).astype(np.float32)
    model.save(tmp_path / "m.npz")
    loaded = engine.load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers
    ]
