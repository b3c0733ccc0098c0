"""BatchNormalization and LayerNormalization: gradients (float64 central differences, every
backend), Keras's moving-average rule, dtypes, and how BatchNormalization lives in a model:
never cut into training pieces, rolled back with the weights, saved and loaded."""

import numpy as np
import pytest

import engine
import optim
from engine import Sequential, backend, losses, utils
from engine.callbacks import Callback
from engine.context import Context
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
from tests.gradient_check import check_layer_gradients, numerical_gradient, relative_error

CENTER_SCALE = [(True, True), (False, True), (True, False), (False, False)]
BN_CASES = [((4, 5), -1), ((3, 4, 5, 3), -1), ((3, 4, 5, 3), 1), ((3, 4, 5, 3), -2)]


def device_input(shape, rng, loc=1.0, scale=2.0):
    return backend.to_device(loc + scale * rng.standard_normal(shape))


def randomize(layer, rng, names=("gamma", "beta")):
    """Random gamma and beta (the initial ones and zeros would hide a misplaced weight)."""
    for name in names:
        if name in layer.params:
            shape = layer.params[name].shape
            layer.params[name][...] = backend.to_device(rng.standard_normal(shape))


def positive_statistics(layer, rng):
    c = layer.moving_mean.shape
    layer.moving_mean[...] = backend.to_device(rng.standard_normal(c))
    layer.moving_variance[...] = backend.to_device(rng.uniform(0.5, 2.0, c))


# -- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("center,scale", CENTER_SCALE)
@pytest.mark.parametrize("shape,axis", BN_CASES)
def test_batch_normalization_gradients(backend_name, float64, rng, shape, axis, center, scale):
    """Training mode: through the batch statistics."""
    layer = BatchNormalization(axis=axis, center=center, scale=scale)
    layer.build(shape[1:])
    randomize(layer, rng)
    check_layer_gradients(layer, device_input(shape, rng), rng)


@pytest.mark.parametrize("shape,axis", BN_CASES[:3])
def test_batch_normalization_inference_gradients(backend_name, float64, rng, shape, axis):
    """Inference mode (training=False with a backward, as forward_with_tape(training=False)):
    the moving statistics are constants; gamma and beta still get their gradients."""
    layer = BatchNormalization(axis=axis)
    layer.build(shape[1:])
    randomize(layer, rng)
    positive_statistics(layer, rng)
    x = device_input(shape, rng)
    dy = backend.to_device(rng.standard_normal(shape))

    def context():
        return Context(training=False, for_backward=True)

    ctx = context()
    layer.forward(x, ctx)
    analytic = {"input": layer.backward(ctx, dy), **ctx.grads}
    assert set(analytic) == {"input", "gamma", "beta"}

    def scalar():
        return float(backend.to_numpy((layer.forward(x, context()) * dy).sum()))

    arrays = {"input": x, "gamma": layer.gamma, "beta": layer.beta}
    for name, array in arrays.items():
        assert relative_error(analytic[name], numerical_gradient(scalar, array)) < 1e-7, name


def test_frozen_batch_normalization_gradients(backend_name, float64, rng):
    """trainable=False: inference mode in training too (the moving statistics are constants;
    a model asks a frozen layer for no weight gradient, a bare context does)."""
    layer = BatchNormalization(trainable=False)
    layer.build((4, 3))
    randomize(layer, rng)
    positive_statistics(layer, rng)
    check_layer_gradients(layer, device_input((5, 4, 3), rng), rng)
    assert not layer.trainable_weights


@pytest.mark.parametrize("center,scale", CENTER_SCALE)
@pytest.mark.parametrize(
    "shape,axis", [((4, 5), -1), ((3, 4, 5, 3), -1), ((3, 4, 5, 3), [1, 2, 3]), ((3, 4, 5, 3), 2)]
)
def test_layer_normalization_gradients(backend_name, float64, rng, shape, axis, center, scale):
    layer = LayerNormalization(axis=axis, center=center, scale=scale)
    layer.build(shape[1:])
    randomize(layer, rng)
    check_layer_gradients(layer, device_input(shape, rng), rng)


# -- what the layers compute ----------------------------------------------------------------


def test_batch_normalization_follows_keras_moving_average(backend_name, float64, rng):
    layer = BatchNormalization(momentum=0.8)
    layer.build((3, 4))
    positive_statistics(layer, rng)
    before_mean, before_var = layer.get_weights()[2:]
    x = device_input((6, 3, 4), rng)
    y = backend.to_numpy(layer(x, training=True))
    host = backend.to_numpy(x)
    mean, var = host.mean(axis=(0, 1)), host.var(axis=(0, 1))  # the biased variance
    np.testing.assert_allclose(y, (host - mean) / np.sqrt(var + 1e-3), rtol=1e-12, atol=1e-12)
    moving_mean, moving_var = layer.get_weights()[2:]
    np.testing.assert_allclose(moving_mean, 0.8 * before_mean + 0.2 * mean, rtol=1e-14)
    np.testing.assert_allclose(moving_var, 0.8 * before_var + 0.2 * var, rtol=1e-14)
    # Inference reads the moving statistics and changes nothing.
    y = backend.to_numpy(layer(x))
    expected = (host - moving_mean) / np.sqrt(moving_var + 1e-3)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(layer.get_weights()[2], moving_mean)


def test_large_mean_keeps_the_variance_in_float32(rng):
    """Two passes (mean, then squared deviations): a mean 1000 times the spread does not
    cost the variance its digits, as E[x^2] - E[x]^2 would in float32."""
    x = (1000 + rng.standard_normal((64, 8))).astype(np.float32)
    layer = BatchNormalization(momentum=0.0)
    layer.build((8,))
    y = layer(x, training=True)
    np.testing.assert_allclose(layer.get_weights()[3], x.astype(np.float64).var(0), rtol=1e-4)
    np.testing.assert_allclose(y.std(axis=0), 1, rtol=1e-3)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: BatchNormalization(), (5, 6, 4)),
        (lambda: BatchNormalization(axis=1, center=False), (5, 6, 4)),
        (lambda: BatchNormalization(trainable=False), (7,)),
        (lambda: LayerNormalization(axis=[1, 2]), (5, 6, 4)),
    ],
)
@pytest.mark.parametrize("training", [True, False])
def test_float32_stays_float32(backend_name, rng, make, shape, training):
    layer = make()
    layer.build(shape)
    x = backend.to_device(rng.standard_normal((3, *shape)).astype(np.float32))
    ctx = Context(training=training, for_backward=True)
    y = layer.forward(x, ctx)
    dx = layer.backward(ctx, backend.to_device(np.ones(y.shape, np.float32)))
    assert y.dtype == dx.dtype == np.float32
    for name, g in ctx.grads.items():
        assert g.dtype == np.float32, name
    for w in layer.weights:
        assert w.dtype == np.float32


def test_mixes_samples_while_trainable():
    layer = BatchNormalization()
    assert layer.mixes_samples and not LayerNormalization().mixes_samples
    layer.trainable = False  # inference mode: each sample on its own
    assert not layer.mixes_samples


# -- in a model -----------------------------------------------------------------------------


def bn_model(seed=0, normalization=BatchNormalization, **options):
    utils.set_random_seed(seed)
    model = Sequential(
        [
            Conv2D(3, 3, activation="relu", input_shape=(8, 8, 1)),
            normalization(**options),
            MaxPooling2D(2),
            Flatten(),
            Dropout(0.3),
            Dense(3),
        ]
    )
    model.compile(optim.SGD(0.1), losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def data(n=64, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1)).astype(np.float32)
    return x, (x[:, :4].mean(axis=(1, 2, 3)) * 6).astype(int) % 3


@pytest.mark.parametrize(
    "normalization, options, whole",
    [
        (BatchNormalization, {}, True),
        (BatchNormalization, {"trainable": False}, False),  # frozen: samples independent
        (LayerNormalization, {}, False),
    ],
)
def test_fit_never_cuts_batch_normalization_batches(monkeypatch, normalization, options, whole):
    """The CPU trains a batch in cache-sized pieces, but not through a layer whose outputs
    depend on the whole batch: the pieces would each get their own statistics."""
    monkeypatch.setattr(backend, "_name", "numpy")
    monkeypatch.setattr(backend, "_CPU_CHUNK_BYTES", 4096)  # a few samples per piece
    monkeypatch.setattr(backend, "MIN_PIECE_SAMPLES", 1)
    model = bn_model(normalization=normalization, **options)
    assert model._plan().mixes_samples == whole
    pieces = []
    original = type(model)._loss_and_gradients

    def counting(self, x, y, *rest):
        pieces.append(len(x[0]))
        return original(self, x, y, *rest)

    monkeypatch.setattr(type(model), "_loss_and_gradients", counting)
    x, y = data()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, seed=0)
    if whole:
        assert pieces == [32, 32]
    else:
        assert len(pieces) > 2 and sum(pieces) == 64


class WeightsAfterEachStep(Callback):
    def __init__(self):
        self.weights = []

    def on_train_batch_end(self, step, logs=None):
        self.weights.append(self.model.get_weights())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN on purpose
def test_non_finite_rollback_restores_the_moving_statistics(monkeypatch):
    """A NaN in the data reaches the moving statistics in the forward of that step; the
    rollback puts them back with the other weights (they are model.weights)."""
    monkeypatch.setattr(backend, "_name", "numpy")
    x, y = data()
    x[40, 3, 3, 0] = np.nan  # the third step of batch_size 16
    model = bn_model()
    layer = model.layers[1]
    initial = layer.get_weights()
    recorder = WeightsAfterEachStep()
    with pytest.raises(engine.NonFiniteLossError, match="step 3"):
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    assert len(recorder.weights) == 2
    restored = model.get_weights()
    for now, kept in zip(restored, recorder.weights[-1], strict=True):
        np.testing.assert_array_equal(now, kept)
    moving_mean, moving_variance = layer.get_weights()[2:]
    assert np.isfinite(moving_mean).all() and np.isfinite(moving_variance).all()
    assert not np.array_equal(moving_mean, initial[2])  # they had moved: a real check

    before = model.get_weights()
    bad = x[:16].copy()
    bad[0] = np.inf
    with pytest.raises(engine.NonFiniteLossError):
        model.train_on_batch(bad, y[:16])
    for now, kept in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(now, kept)


def test_frozen_batch_normalization_keeps_its_weights_in_fit():
    model = bn_model(trainable=False)
    layer = model.layers[1]
    frozen = layer.get_weights()
    model.fit(*data(), batch_size=16, epochs=1, verbose=0)
    for now, before in zip(layer.get_weights(), frozen, strict=True):
        np.testing.assert_array_equal(now, before)
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4


def test_summary_counts_the_moving_statistics_as_non_trainable(capsys):
    model = bn_model()
    model.summary()
    out = capsys.readouterr().out
    assert "(BatchNormalization)" in out and "(Dropout)" in out
    assert "Non-trainable params: 6 " in out  # moving mean and variance of 3 channels


@pytest.mark.parametrize(
    "layer, shape",
    [
        (BatchNormalization(momentum=0.5, epsilon=1e-2, axis=2, center=False), (5, 6, 3)),
        (LayerNormalization(axis=[1, 3], epsilon=1e-4, scale=False), (5, 6, 3)),
        (Dropout(0.4, noise_shape=(None, 1, 6, None), seed=3), (5, 6, 3)),
        (SpatialDropout2D(0.25, data_format="channels_first", seed=1), (5, 6, 3)),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else "",
)
def test_save_and_load_round_trip(tmp_path, rng, layer, shape):
    """Config, weights (the moving statistics after training among them) and predictions."""
    model = Sequential([layer, Flatten(), Dense(2)])
    model.build(shape)
    model.compile("adam", "mse")
    x = rng.standard_normal((16, *shape)).astype(np.float32)
    model.fit(x, rng.standard_normal((16, 2)), batch_size=8, epochs=2, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = engine.load_model(tmp_path / "m.npz")
    assert loaded.layers[0].get_config() == {**layer.get_config()}
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    if isinstance(layer, BatchNormalization):
        assert not np.array_equal(layer.get_weights()[1], np.zeros(shape[1]))  # trained
    loaded.fit(x, rng.standard_normal((16, 2)), batch_size=8, epochs=1, verbose=0)


def test_training_with_normalization_and_dropout_agrees_across_backends(backend_name, float64):
    """The masks come from the host generator, BatchNormalization's arithmetic from xp: one
    fit gives the same weights on NumPy as on CuPy (or its emulation). On NumPy the
    reference runs unfused: BatchNormalization + pooling is then two steps, as on the GPU."""

    def train():
        utils.set_random_seed(0)
        model = Sequential(
            [
                Conv2D(3, 3, activation="relu", input_shape=(8, 8, 2)),
                BatchNormalization(momentum=0.7),
                MaxPooling2D(2),  # fused with the normalisation on the CPU
                SpatialDropout2D(0.3),
                LayerNormalization(),
                Flatten(),
                Dropout(0.5),
                Dense(3),
            ]
        )
        model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(2)
        x = rng.random((24, 8, 8, 2))
        model.fit(x, np.arange(24) % 3, batch_size=8, epochs=2, seed=1, verbose=0)
        return [backend.to_numpy(w) for w in model.get_weights()], model.predict(x)

    weights, predictions = train()
    with pytest.MonkeyPatch.context() as patch:
        if backend_name == "numpy":
            patch.setattr(backend, "_fusion", False)
        else:
            patch.setattr(backend, "_name", "numpy")
        reference, reference_predictions = train()
    for w, r in zip(weights, reference, strict=True):
        np.testing.assert_allclose(w, r, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(predictions, reference_predictions, rtol=1e-10, atol=1e-12)


def test_an_inference_call_between_forward_and_backward_changes_nothing(rng, float64):
    """A training forward, then predictions (which read the moving statistics), then the
    backward: it is the training forward's."""
    model = Sequential([BatchNormalization(), Dense(2)])
    model.build((4,))
    x = device_input((6, 4), rng)
    dy = device_input((6, 2), rng)
    ys, tape = model.forward_with_tape(x, input_gradients=True)
    expected = tape.backward([dy], model.trainable_weights)
    _, tape = model.forward_with_tape(x, input_gradients=True)
    model.predict(backend.to_numpy(device_input((9, 4), rng)))
    got = tape.backward([dy], model.trainable_weights)
    for a, b in zip(expected[0] + expected[1], got[0] + got[1], strict=True):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
