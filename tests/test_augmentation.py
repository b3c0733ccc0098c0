"""The augmentation layers (RandomFlip, RandomContrast, RandomTranslation, RandomRotation,
RandomZoom) and their affine core engine/affine.py: float64 gradient checks with fixed draws,
the adjoint, fill modes and rounding on known cases, the identity at inference, draws that
follow from the random key alone, arguments, dtypes, training and save/load.
(Keras parity: tests/keras/test_keras_augmentation.py.)"""

import numpy as np
import pytest

import engine
from engine import Sequential, affine, backend
from engine.context import Context
from layers import (
    Conv2D,
    Dense,
    Flatten,
    RandomContrast,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from tests.gradient_check import check_layer_gradients, check_model_gradients, forward_backward

GEOMETRIC = [
    (fill_mode, interpolation)
    for fill_mode in affine.FILL_MODES
    for interpolation in affine.INTERPOLATIONS
]

LAYERS = {
    "flip": lambda: RandomFlip(),
    "flip-horizontal": lambda: RandomFlip("horizontal"),
    "flip-vertical": lambda: RandomFlip("vertical"),
    "contrast": lambda: RandomContrast((0.3, 0.6)),
    "translation": lambda: RandomTranslation(0.3, (-0.5, 0.2)),
    "rotation": lambda: RandomRotation(0.2),
    "zoom": lambda: RandomZoom((-0.4, 0.3)),
    "zoom-two-factors": lambda: RandomZoom(0.3, width_factor=(-0.2, 0.5)),
}


def images(shape, rng, low=10, high=200):
    return backend.to_device(rng.uniform(low, high, shape))


def train_call(key=(0,)):
    return Context(training=True, for_backward=True, key=key)


# -- gradients with fixed draws (a fixed key) -----------------------------------------------


@pytest.mark.parametrize("name", LAYERS)
def test_layer_gradients(backend_name, float64, rng, name):
    layer = LAYERS[name]()
    layer.build((5, 6, 2))
    check_layer_gradients(layer, images((6, 5, 6, 2), rng), rng)


@pytest.mark.parametrize("fill_mode, interpolation", GEOMETRIC)
@pytest.mark.parametrize("make", [RandomTranslation, RandomRotation, RandomZoom])
def test_every_fill_mode_and_interpolation_has_gradients(
    backend_name, float64, rng, make, fill_mode, interpolation
):
    factors = {RandomTranslation: (0.6, 0.6), RandomRotation: (0.3,), RandomZoom: (0.5,)}[make]
    layer = make(*factors, fill_mode=fill_mode, interpolation=interpolation, fill_value=3.0)
    layer.build((5, 7, 1))
    check_layer_gradients(layer, images((3, 5, 7, 1), rng), rng)


def test_contrast_gradients_where_the_value_range_clips(backend_name, float64, rng):
    layer = RandomContrast(0.8, value_range=(0, 1))
    layer.build((4, 5, 3))
    check_layer_gradients(layer, images((4, 4, 5, 3), rng, -0.3, 1.3), rng)


def test_augmentation_in_the_middle_of_a_model(backend_name, float64, rng):
    """The layers have a backward, so they may follow other layers (not only the input)."""
    model = Sequential(
        [
            Conv2D(2, 3, padding="same", input_shape=(6, 6, 1)),
            RandomRotation(0.25, fill_mode="wrap"),
            RandomFlip("horizontal"),
            RandomContrast(0.5, value_range=(-100, 100)),
            Flatten(),
            Dense(3),
        ]
    )
    check_model_gradients(model, [images((3, 6, 6, 1), rng, -1, 1)], rng)


# -- the affine core ----------------------------------------------------------------------


def random_transforms(n, rng, shift=6.0):
    theta = rng.uniform(-np.pi, np.pi, n)
    scale = rng.uniform(0.5, 1.6, (2, n))
    return np.stack(
        [
            scale[0] * np.cos(theta),
            -np.sin(theta),
            rng.uniform(-shift, shift, n),
            np.sin(theta),
            scale[1] * np.cos(theta),
            rng.uniform(-shift, shift, n),
        ],
        axis=1,
    )


@pytest.mark.parametrize("fill_mode, interpolation", GEOMETRIC)
def test_backward_is_the_adjoint_of_the_sampling(backend_name, rng, fill_mode, interpolation):
    """<sample(x), dy> = <x, sample_adjoint(dy)> for any x and dy: the transpose, exactly."""
    x = rng.standard_normal((3, 5, 7, 2))
    dy = rng.standard_normal(x.shape)
    t = backend.to_device(random_transforms(3, rng))
    y, plan = affine.affine_transform(backend.to_device(x), t, interpolation, fill_mode)
    dx = affine.sample_adjoint(backend.to_device(dy), plan)
    np.testing.assert_allclose(
        (backend.to_numpy(y) * dy).sum(), (x * backend.to_numpy(dx)).sum(), rtol=1e-12
    )


def test_fill_modes_outside_the_image():
    """A 1-pixel-high image [a b c d] = [1 2 3 4] shifted 6 columns right: output column c
    reads input column c - 6, as the modes extend it."""
    x = np.array([1.0, 2, 3, 4]).reshape(1, 1, 4, 1)
    shift = np.array([[1.0, 0, -6, 0, 1, 0]])
    expected = {
        "reflect": [3, 4, 4, 3],  # (d c b a | a b c d | d c b a) at columns -6..-3
        "wrap": [3, 4, 1, 2],
        "nearest": [1, 1, 1, 1],
        "constant": [9, 9, 9, 9],
    }
    for mode, values in expected.items():
        y, _ = affine.affine_transform(x, shift, "nearest", mode, fill_value=9.0)
        np.testing.assert_array_equal(y.reshape(-1), values, err_msg=mode)


def test_nearest_rounds_halves_away_from_zero_and_bilinear_blends_the_fill():
    x = np.array([10.0, 20, 30, 40]).reshape(1, 1, 4, 1)
    half = np.array([[1.0, 0, -0.5, 0, 1, 0]])  # column c reads c - 0.5
    y, _ = affine.affine_transform(x, half, "nearest", "constant", fill_value=-1.0)
    np.testing.assert_array_equal(y.reshape(-1), [-1, 20, 30, 40])  # -0.5 -> -1 (outside)
    y, _ = affine.affine_transform(x, half, "bilinear", "constant", fill_value=-1.0)
    np.testing.assert_array_equal(y.reshape(-1), [4.5, 15, 25, 35])  # (-1 + 10) / 2 first


def test_unknown_fill_mode_or_interpolation_in_the_core():
    x, t = np.zeros((1, 2, 2, 1)), np.array([[1.0, 0, 0, 0, 1, 0]])
    with pytest.raises(ValueError, match="fill_mode 'mirror'.*reflect, wrap, nearest, constant"):
        affine.affine_transform(x, t, fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation 'bicubic'.*nearest, bilinear"):
        affine.affine_transform(x, t, interpolation="bicubic")


# -- what the layers draw and do ------------------------------------------------------------


def test_flip_modes_flip_the_drawn_images_only():
    x = np.arange(6 * 2 * 3, dtype=np.float64).reshape(6, 2, 3, 1)
    flips = np.array([True, False, True, False, False, True])
    for mode, axes in [
        ("horizontal", (2,)),
        ("vertical", (1,)),
        ("horizontal_and_vertical", (1, 2)),
    ]:
        y, _ = RandomFlip(mode).augment(x, {"flips": flips})
        np.testing.assert_array_equal(y[flips], np.flip(x[flips], axis=axes))
        np.testing.assert_array_equal(y[~flips], x[~flips])


def test_draws_follow_keras_conventions():
    rng, shape = np.random.default_rng(0), (2000, 10, 20, 1)
    angles = RandomRotation(0.1).draw(rng, shape)["angle"]
    assert -36 <= angles.min() < -30 and 30 < angles.max() <= 36  # a fraction of 360 degrees
    assert RandomRotation((0.2, 0.3)).draw(rng, shape)["angle"].min() >= 72
    shifts = RandomTranslation(0.2, (0.1, 0.5)).draw(rng, shape)["translations"]
    assert -2 <= shifts[:, 1].min() < -1.9 and 1.9 < shifts[:, 1].max() <= 2  # 0.2 * height
    assert 2 <= shifts[:, 0].min() < 2.1 and 9.9 < shifts[:, 0].max() <= 10  # width 20
    zoom = RandomZoom(0.25).draw(rng, shape)
    assert zoom["width_zoom"] is zoom["height_zoom"]  # width_factor None keeps the aspect
    assert 0.75 <= zoom["height_zoom"].min() < 0.76 and 1.24 < zoom["height_zoom"].max() <= 1.25
    contrast = RandomContrast(0.5).draw(rng, shape)["contrast_factor"]
    assert 1 <= contrast.min() < 1.01 and 1.49 < contrast.max() <= 1.5  # Keras 3.15's (0, f)
    contrast = RandomContrast((0.2, 0.4)).draw(rng, shape)["contrast_factor"]
    assert 0.8 <= contrast.min() < 0.81 and 1.39 < contrast.max() <= 1.4
    flips = RandomFlip().draw(rng, shape)["flips"]
    assert flips.dtype == bool and 0.45 < flips.mean() < 0.55


def test_translation_moves_down_and_right_for_positive_shifts():
    x = np.zeros((1, 5, 5, 1))
    x[0, 1, 1, 0] = 1
    y, _ = RandomTranslation(0.5, 0.5, fill_mode="constant").augment(
        x, {"translations": np.array([[2.0, 1.0]])}
    )
    assert y[0, 2, 3, 0] == 1 and y.sum() == 1


@pytest.mark.parametrize("name", LAYERS)
def test_identity_at_inference(backend_name, rng, name):
    layer = LAYERS[name]()
    x = images((3, 5, 6, 2), rng).astype(np.float32)
    np.testing.assert_array_equal(layer(x), x)
    ctx = Context(training=False, for_backward=True, key=(0,))
    np.testing.assert_array_equal(layer.forward(x, ctx), x)
    np.testing.assert_array_equal(layer.backward(ctx, 2 * x), 2 * x)


@pytest.mark.parametrize("name", LAYERS)
def test_draws_depend_on_the_key_only(backend_name, rng, name):
    """Same key, same output (another instance, another backend); another key, another."""
    x = images((8, 5, 6, 2), rng).astype(np.float32)
    first = backend.to_numpy(LAYERS[name]().forward(x, train_call((7, 1, 3))))
    again = backend.to_numpy(LAYERS[name]().forward(x, train_call((7, 1, 3))))
    other = backend.to_numpy(LAYERS[name]().forward(x, train_call((7, 1, 4))))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    on_numpy = backend.backend_name()
    backend.set_backend("numpy")
    try:
        reference = LAYERS[name]().forward(backend.to_numpy(x), train_call((7, 1, 3)))
    finally:
        backend.set_backend(on_numpy)
    np.testing.assert_allclose(first, reference, rtol=1e-6, atol=1e-4)


def test_a_seed_changes_the_draws_and_keeps_them_reproducible(rng):
    x = images((8, 5, 6, 1), rng)
    outputs = {
        seed: RandomRotation(0.3, seed=seed).forward(x, train_call((1, 2))) for seed in (1, 2)
    }
    assert not np.array_equal(outputs[1], outputs[2])
    np.testing.assert_array_equal(
        outputs[1], RandomRotation(0.3, seed=1).forward(x, train_call((1, 2)))
    )


@pytest.mark.parametrize("name", LAYERS)
def test_float32_stays_float32(backend_name, rng, name):
    x = images((4, 5, 6, 2), rng).astype(np.float32)
    y, dx, _ = forward_backward(LAYERS[name](), x, x)
    assert y.dtype == np.float32 and dx.dtype == np.float32


# -- arguments ------------------------------------------------------------------------------

BAD_ARGUMENTS = {
    "rotation factor above 1": (lambda: RandomRotation(1.5), ["factor", "1.5", "[-1, 1]"]),
    "rotation pair below -1": (lambda: RandomRotation((-2, 0.5)), ["factor", "(-2, 0.5)"]),
    "rotation factor a string": (lambda: RandomRotation("0.1"), ["factor", "'0.1'"]),
    "rotation factor a bool": (lambda: RandomRotation(True), ["factor", "True"]),
    "translation three numbers": (
        lambda: RandomTranslation((0.1, 0.2, 0.3), 0.1),
        ["height_factor", "(0.1, 0.2, 0.3)"],
    ),
    "translation width nan": (
        lambda: RandomTranslation(0.1, float("nan")),
        ["width_factor", "nan"],
    ),
    "zoom -1 (open bound)": (lambda: RandomZoom(-1), ["height_factor", "-1", "(-1, 1]"]),
    "zoom width 1.5": (lambda: RandomZoom(0.1, (0.2, 1.5)), ["width_factor", "1.5"]),
    "contrast negative": (lambda: RandomContrast(-0.1), ["factor", "-0.1", "[0, 1]"]),
    "contrast above 1": (lambda: RandomContrast((0.5, 1.2)), ["factor", "1.2"]),
    "contrast value range": (
        lambda: RandomContrast(0.1, value_range=(1, 0)),
        ["value_range", "(1, 0)"],
    ),
    "fill mode": (
        lambda: RandomRotation(0.1, fill_mode="mirror"),
        ["fill_mode", "'mirror'", "reflect", "wrap", "nearest", "constant"],
    ),
    "interpolation": (
        lambda: RandomZoom(0.1, interpolation="bicubic"),
        ["interpolation", "'bicubic'", "nearest", "bilinear"],
    ),
    "fill value": (
        lambda: RandomTranslation(0.1, 0.1, fill_value="black"),
        ["fill_value", "'black'"],
    ),
    "flip mode": (
        lambda: RandomFlip("diagonal"),
        ["mode", "'diagonal'", "horizontal", "vertical", "horizontal_and_vertical"],
    ),
    "seed": (lambda: RandomFlip(seed=-1), ["seed", "-1"]),
    "seed not an int": (lambda: RandomContrast(0.1, seed=1.5), ["seed", "1.5"]),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments_are_refused_by_name(case):
    make, words = BAD_ARGUMENTS[case]
    with pytest.raises(ValueError) as info:
        make()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("name", LAYERS)
def test_inputs_must_be_images(name):
    layer = LAYERS[name]()
    with pytest.raises(ValueError, match=r"\(height, width, channels\).*\(28, 28\)"):
        layer.build((28, 28))
    assert not layer.built


# -- in a model ---------------------------------------------------------------------------


def augmented_model():
    return Sequential(
        [
            RandomFlip("horizontal", input_shape=(8, 8, 1)),
            RandomTranslation(0.1, 0.1, fill_mode="nearest"),
            RandomRotation(0.05, interpolation="nearest", fill_mode="constant", fill_value=0.5),
            RandomZoom(0.1, width_factor=(-0.1, 0.2), fill_mode="wrap"),
            RandomContrast((0.1, 0.3), value_range=(0, 1), seed=3),
            Conv2D(2, 3, activation="relu"),
            Flatten(),
            Dense(3),
        ]
    )


def test_training_runs_and_repeats_from_the_seed(rng):
    x, y = rng.uniform(0, 1, (32, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, 32)
    weights = []
    for _ in range(2):
        engine.utils.set_random_seed(0)
        model = augmented_model()
        model.compile(
            optimizer="adam", loss=engine.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        model.fit(x, y, batch_size=8, epochs=2, seed=5, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_and_load_round_trip(tmp_path, rng):
    model = augmented_model()
    x = rng.uniform(0, 1, (5, 8, 8, 1)).astype(np.float32)
    model.save(tmp_path / "augmented.npz")
    loaded = engine.load_model(tmp_path / "augmented.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers
    ]
    key = train_call((4, 4))
    np.testing.assert_array_equal(
        loaded.layers[2].forward(x, key), model.layers[2].forward(x, train_call((4, 4)))
    )
