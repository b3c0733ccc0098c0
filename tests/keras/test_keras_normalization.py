"""BatchNormalization, LayerNormalization, Dropout and SpatialDropout2D against Keras:
forward in both modes, d/dinput and d/dweights (float32 and float64), BatchNormalization's
moving statistics after fitting both frameworks, the statistics of Dropout's masks, and a
small network with BatchNormalization and Dropout fitted on MNIST by both."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras_helpers import (
    assert_close,
    assert_matches_keras,
    assert_models_match,
    record,
    relative_difference,
)

import optim
from engine import Sequential, backend, losses
from layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LayerNormalization,
    MaxPooling2D,
    SpatialDropout2D,
)
from tests.gradient_check import forward_backward

pytestmark = pytest.mark.keras

RTOL = {"float64": 1e-10, "float32": 1e-5}
CENTER_SCALE = [(True, True), (False, True), (True, False), (False, False)]


def normal(shape, dtype, seed=1, loc=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    return (loc + scale * rng.standard_normal(shape)).astype(dtype)


def statistics_weights(k_model, seed=3):
    """Random weights with positive moving variances (the random weights of keras_helpers
    draw some negative, which only training mode, which never reads them, can take)."""
    rng = np.random.default_rng(seed)
    dtype = keras.config.floatx()
    return [
        (
            rng.uniform(0.5, 2.0, v.shape)
            if v.name == "moving_variance"
            else 0.5 * rng.standard_normal(v.shape)
        ).astype(dtype)
        for v in k_model.weights
    ]


def keras_stack(layers, input_shape):
    return keras.Sequential([keras.Input(input_shape), *layers])


def our_stack(layers, input_shape):
    model = Sequential(layers)
    model.build(input_shape)
    return model


# -- BatchNormalization -------------------------------------------------------------------

BN_AXES = [((6, 5), -1), ((6, 5), 1), ((3, 4, 5, 6), -1), ((3, 4, 5, 6), 3)]
BN_AXES += [((3, 4, 5, 6), 1), ((3, 4, 5, 6), -2)]


@pytest.mark.parametrize("center,scale", CENTER_SCALE, ids=lambda v: str(v))
@pytest.mark.parametrize("shape,axis", BN_AXES, ids=str)
def test_batch_normalization_training(shape, axis, center, scale, floatx):
    # A mean far from 0 next to a unit spread: the variance must not lose it.
    x = normal(shape, floatx, loc=3.0, scale=2.0)
    assert_matches_keras(
        lambda: keras.layers.BatchNormalization(axis=axis, center=center, scale=scale),
        lambda: BatchNormalization(axis=axis, center=center, scale=scale),
        x,
        RTOL[floatx],
    )


@pytest.mark.parametrize("center,scale", CENTER_SCALE, ids=lambda v: str(v))
@pytest.mark.parametrize("shape,axis", BN_AXES[:3], ids=str)
def test_batch_normalization_inference(shape, axis, center, scale, floatx):
    """Inference: the moving statistics, and gradients through them as constants."""
    x = normal(shape, floatx, loc=1.0)
    k_model = keras_stack(
        [keras.layers.BatchNormalization(axis=axis, center=center, scale=scale, epsilon=1e-2)],
        shape[1:],
    )
    ours = our_stack(
        [BatchNormalization(axis=axis, center=center, scale=scale, epsilon=1e-2)], shape[1:]
    )
    assert_models_match_in(k_model, ours, x, floatx, training=False)


def assert_models_match_in(k_model, ours, x, floatx, training):
    weights = statistics_weights(k_model)
    assert_models_match(
        k_model, ours, [x], RTOL[floatx], training=training, initial_weights=weights
    )
    # The eager call (Layer.__call__, inference unless training=True) gives the same output.
    expected = np.asarray(k_model(x, training=training))
    assert_close(ours(x, training=training), expected, RTOL[floatx], RTOL[floatx], "call")


def conv_bn_dense(framework, momentum=0.99, trainable=True, input_shape=(6, 7, 2)):
    """Conv2D(relu) - BatchNormalization - Flatten - Dense in Keras or in xpcnn (the ReLU
    before the normalisation keeps the conv bias's gradient away from 0: BatchNormalization
    removes a constant added to its inputs, so that gradient is rounding noise without it)."""
    if framework == "keras":
        return keras_stack(
            [
                keras.layers.Conv2D(3, 3, padding="same", activation="relu"),
                keras.layers.BatchNormalization(momentum=momentum, trainable=trainable),
                keras.layers.Flatten(),
                keras.layers.Dense(4),
            ],
            input_shape,
        )
    return our_stack(
        [
            Conv2D(3, 3, padding="same", activation="relu"),
            BatchNormalization(momentum=momentum, trainable=trainable),
            Flatten(),
            Dense(4),
        ],
        input_shape,
    )


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_batch_normalization_between_layers(training, floatx):
    x = normal((5, 6, 7, 2), floatx)
    assert_models_match_in(conv_bn_dense("keras"), conv_bn_dense("ours"), x, floatx, training)


def test_frozen_batch_normalization_runs_in_inference_mode_in_training(floatx):
    """Keras 3: trainable=False makes BatchNormalization use its moving statistics even
    with training=True; its gamma and beta get no gradient."""
    x = normal((5, 6, 7, 2), floatx)
    k_model = conv_bn_dense("keras", trainable=False)
    ours = conv_bn_dense("ours", trainable=False)
    assert len(ours.trainable_weights) == len(k_model.trainable_variables) == 4
    assert_models_match_in(k_model, ours, x, floatx, training=True)


def fit_both(k_model, ours, x, y, batch_size, lr=0.1):
    k_model.compile(
        optimizer=keras.optimizers.SGD(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ours.compile(
        optimizer=optim.SGD(lr), loss=losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    k_model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)


@pytest.mark.parametrize("momentum", [0.99, 0.6])
@pytest.mark.parametrize("trainable", [True, False], ids=["trainable", "frozen"])
def test_moving_statistics_after_fit(momentum, trainable, floatx):
    """Six SGD steps of both fits from the same weights: every weight, the moving
    statistics among them, then the inference outputs (which read those statistics)."""
    rng = np.random.default_rng(4)
    x = normal((48, 6, 7, 2), floatx, loc=0.5, seed=5)
    y = rng.integers(0, 4, 48)
    k_model = conv_bn_dense("keras", momentum, trainable)
    ours = conv_bn_dense("ours", momentum, trainable)
    initial = statistics_weights(k_model)
    k_model.set_weights(initial)
    ours.set_weights(initial)
    fit_both(k_model, ours, x, y, batch_size=8)

    names = [f"{layer.name}/{k}" for layer in ours.layers for k in layer.params]
    for name, w0, w_ours, w_keras in zip(
        names, initial, ours.get_weights(), k_model.get_weights(), strict=True
    ):
        assert w_ours.dtype == w_keras.dtype == floatx
        if not trainable and "batch_normalization" in name:  # frozen: nothing changes
            np.testing.assert_array_equal(w_ours, w0)
            np.testing.assert_array_equal(w_keras, w0)
            continue
        moved = w_keras - w0
        assert np.abs(moved).max() > 1e-3, f"{name} barely moved"
        difference = relative_difference(w_ours - w0, moved)
        record(f"moving statistics {floatx}", difference, f"{name} (moved)")
        # float32: the rounding of six steps, each through batch statistics (7e-5 measured)
        assert difference < (1e-9 if floatx == "float64" else 3e-4), f"{name}: {difference:.3g}"
    expected = k_model.predict(x, verbose=0)
    assert_close(ours.predict(x), expected, 100 * RTOL[floatx], 100 * RTOL[floatx], "predict")


# -- LayerNormalization -------------------------------------------------------------------

LN_AXES = [((6, 5), -1), ((3, 4, 5, 6), -1), ((3, 4, 5, 6), [1, 2, 3]), ((3, 4, 5, 6), [1, 3])]
LN_AXES += [((3, 4, 5, 6), 2)]


@pytest.mark.parametrize("center,scale", CENTER_SCALE, ids=lambda v: str(v))
@pytest.mark.parametrize("shape,axis", LN_AXES, ids=str)
def test_layer_normalization(shape, axis, center, scale, floatx):
    x = normal(shape, floatx, loc=2.0)
    assert_matches_keras(
        lambda: keras.layers.LayerNormalization(axis=axis, center=center, scale=scale),
        lambda: LayerNormalization(axis=axis, center=center, scale=scale),
        x,
        RTOL[floatx],
    )


# -- Dropout ------------------------------------------------------------------------------


DROPOUT_ZERO = {
    "Dropout": (
        lambda: [keras.layers.Dense(5), keras.layers.Dropout(0.0), keras.layers.Dense(3)],
        lambda: [Dense(5), Dropout(0.0), Dense(3)],
        (6,),
    ),
    "Dropout-noise_shape": (
        lambda: [keras.layers.Dense(5), keras.layers.Dropout(0), keras.layers.Dense(3)],
        lambda: [Dense(5), Dropout(0, noise_shape=(None, 1)), Dense(3)],
        (6,),
    ),
    "SpatialDropout2D": (
        lambda: [
            keras.layers.Conv2D(4, 3),
            keras.layers.SpatialDropout2D(0.0),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ],
        lambda: [Conv2D(4, 3), SpatialDropout2D(0.0), Flatten(), Dense(3)],
        (5, 6, 2),
    ),
}


@pytest.mark.parametrize("case", list(DROPOUT_ZERO))
def test_dropout_rate_zero_is_keras_identity(case, floatx):
    build_keras, build_ours, shape = DROPOUT_ZERO[case]
    assert_matches_keras(build_keras, build_ours, normal((4, *shape), floatx), RTOL[floatx])


def keras_dropout_output(layer, x, dy, seed):
    """Keras's training output and its gradient (jax.vjp) for one draw."""

    def call(v):
        return layer(v, training=True)

    keras.utils.set_random_seed(seed)
    y, pullback = jax.vjp(call, jnp.asarray(x))
    return np.asarray(y), np.asarray(pullback(jnp.asarray(dy))[0])


def assert_kept_fraction(kept, rate, what):
    """The fraction kept within 5 standard deviations of 1 - rate."""
    n = kept.size
    sigma = np.sqrt(rate * (1 - rate) / n)
    fraction = kept.mean()
    assert abs(fraction - (1 - rate)) < 5 * sigma, f"{what}: kept {fraction:.4f} of {n}"


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics_as_keras(rate, floatx):
    """Both frameworks keep about 1 - rate of the units, scale them by exactly
    1 / (1 - rate) (to float rounding), are the identity at inference, and send dy back
    through the kept units with the same scaling (ours: through the mask it drew)."""
    x = normal((400, 60), floatx, loc=2.0)  # no zeros: the mask is y / x
    dy = normal(x.shape, floatx, seed=7)
    ours = Dropout(rate)
    y, dx, _ = forward_backward(ours, x, dy)
    y_keras, dx_keras = keras_dropout_output(keras.layers.Dropout(rate), x, dy, seed=0)
    scale = 1 / (1 - rate)
    for name, out, grad in [("ours", y, dx), ("Keras", y_keras, dx_keras)]:
        assert out.dtype == grad.dtype == floatx
        kept = out != 0
        assert_kept_fraction(kept, rate, name)
        np.testing.assert_allclose(out[kept], x[kept] * scale, rtol=RTOL[floatx])
        np.testing.assert_allclose(grad, np.where(kept, dy * scale, 0), rtol=RTOL[floatx])
    for layer_out in (ours(x), keras.layers.Dropout(rate)(x, training=False)):
        np.testing.assert_array_equal(np.asarray(layer_out), x)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_spatial_dropout_drops_whole_channels_as_keras(data_format, floatx):
    rate = 0.4
    x = normal((50, 5, 6, 40), floatx, loc=3.0)
    dy = normal(x.shape, floatx, seed=8)
    ours = SpatialDropout2D(rate, data_format=data_format)
    y, dx, _ = forward_backward(ours, x, dy)
    k_layer = keras.layers.SpatialDropout2D(rate, data_format=data_format)
    y_keras, dx_keras = keras_dropout_output(k_layer, x, dy, seed=0)
    maps = (1, 2) if data_format == "channels_last" else (2, 3)
    for name, out, grad in [("ours", y, dx), ("Keras", y_keras, dx_keras)]:
        kept = out != 0
        per_map = kept.all(axis=maps)
        assert (per_map == kept.any(axis=maps)).all(), f"{name}: a map is partly dropped"
        assert_kept_fraction(per_map, rate, name)
        np.testing.assert_allclose(out[kept], x[kept] / (1 - rate), rtol=RTOL[floatx])
        np.testing.assert_allclose(grad, np.where(kept, dy / (1 - rate), 0), rtol=RTOL[floatx])


# -- a small network fitted by both -------------------------------------------------------


def small_network(framework):
    """Conv2D - BN - MaxPool - Conv2D - BN - MaxPool - Flatten - Dropout(0) - Dense(10)."""
    if framework == "keras":
        k = keras.layers
        return keras_stack(
            [
                k.Conv2D(8, 3, activation="relu"),
                k.BatchNormalization(),
                k.MaxPooling2D(2),
                k.Conv2D(16, 3, activation="relu"),
                k.BatchNormalization(momentum=0.9),
                k.MaxPooling2D(2),
                k.Flatten(),
                k.Dropout(0.0),
                k.Dense(10),
            ],
            (28, 28, 1),
        )
    return our_stack(
        [
            Conv2D(8, 3, activation="relu"),
            BatchNormalization(),
            MaxPooling2D(2),
            Conv2D(16, 3, activation="relu"),
            BatchNormalization(momentum=0.9),
            MaxPooling2D(2),
            Flatten(),
            Dropout(0.0),
            Dense(10),
        ],
        (28, 28, 1),
    )


@pytest.mark.parametrize("name", ["Adam", "SGD"], ids=lambda n: n)
def test_small_network_with_batch_normalization_fits_as_keras(name, mnist_data, keras_float64):
    """20 steps of both fits (float64, the same batches, shuffle=False) from Keras's initial
    weights end at the same weights, moving statistics included, relative to how far each
    weight travelled."""
    steps, batch = 20, 32
    (x_train, y_train), _ = mnist_data
    x = (x_train[: steps * batch, ..., None] / 255).astype("float64")
    y = y_train[: steps * batch].astype(np.int64)
    keras.utils.set_random_seed(0)
    k_model, ours = small_network("keras"), small_network("ours")
    initial = k_model.get_weights()
    ours.set_weights(initial)
    make_keras, make_ours = {
        "Adam": (lambda: keras.optimizers.Adam(1e-3), lambda: optim.Adam(1e-3)),
        "SGD": (lambda: keras.optimizers.SGD(0.05), lambda: optim.SGD(0.05)),
    }[name]
    k_model.compile(
        optimizer=make_keras(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ours.compile(optimizer=make_ours(), loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    k_model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)

    assert ours.optimizer.iterations == steps
    names = [f"{layer.name}/{k}" for layer in ours.layers for k in layer.params]
    for w_name, w0, w_ours, w_keras in zip(
        names, initial, ours.get_weights(), k_model.get_weights(), strict=True
    ):
        moved = w_keras - w0
        assert np.abs(moved).max() > 1e-4, f"{w_name} barely moved"
        difference = relative_difference(w_ours - w0, moved)
        record("end to end float64", difference, f"{w_name} (moved, BN network, {name})")
        assert difference < 1e-8, f"{w_name}: {difference:.3g} of how far it moved"
    x_test = x[:200]
    expected = k_model.predict(x_test, verbose=0)
    np.testing.assert_allclose(ours.predict(x_test), expected, rtol=1e-6, atol=1e-6)
    assert backend.floatx() == "float64"
