"""Sequential's Keras-like API: summary, compile by name, fit/evaluate/predict, weights."""

import numpy as np
import pytest

import engine
from engine import Sequential, backend, losses
from layers import Conv2D, Dense, Flatten, MaxPooling2D


def tutorial_model():
    return Sequential(
        [
            Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D((2, 2)),
            Conv2D(64, (3, 3), activation="relu"),
            MaxPooling2D((2, 2)),
            Flatten(),
            Dense(64, activation="relu"),
            Dense(10),
        ]
    )


def test_summary_matches_keras(capsys):
    model = tutorial_model()
    assert model.count_params() == 121_930
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 121,930" in out
    for shape, params in [
        ("(None, 26, 26, 32)", "320"),
        ("(None, 13, 13, 32)", "0"),
        ("(None, 11, 11, 64)", "18,496"),
        ("(None, 5, 5, 64)", "0"),
        ("(None, 1600)", "0"),
        ("(None, 64)", "102,464"),
        ("(None, 10)", "650"),
    ]:
        assert any(shape in line and line.rstrip().endswith(params) for line in out.splitlines()), (
            shape
        )


def test_build_accepts_keras_none_batch_axis():
    model = Sequential([Flatten(), Dense(3)])
    model.build((None, 4, 2))
    assert model.output_shape == (3,)
    assert [w.shape for w in model.get_weights()] == [(8, 3), (3,)]


def test_compile_by_keras_names():
    model = tutorial_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert type(model.optimizer).__name__ == "Adam"
    assert isinstance(model.loss, losses.SparseCategoricalCrossentropy)
    assert [m.name for m in model.metrics] == ["accuracy"]


def test_fit_history_evaluate_predict(backend_name, rng):
    x = rng.uniform(0, 1, (64, 6, 6, 1))
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(int)
    model = Sequential(
        [Conv2D(4, 3, activation="relu", input_shape=(6, 6, 1)), Flatten(), Dense(2)]
    )
    model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x, y), seed=1)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.history.values())
    loss, accuracy = model.evaluate(x, y)
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert accuracy == pytest.approx(history.history["val_accuracy"][-1])
    scores = model.predict(x)
    assert isinstance(scores, np.ndarray) and scores.shape == (64, 2)
    assert accuracy == pytest.approx(np.mean(scores.argmax(1) == y))


def test_fit_loss_is_the_epoch_mean_of_batch_losses(rng):
    """Keras logs the mean over the epoch's batches (weighted by batch size), not the last."""
    x, y = rng.standard_normal((10, 3)), rng.integers(0, 2, 10)
    model = Sequential([Dense(2, input_shape=(3,))])
    model.compile(optim_sgd(), "sparse_categorical_crossentropy")
    before = model.get_weights()
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    replay = Sequential([Dense(2, input_shape=(3,))])
    replay.set_weights(before)
    replay.compile(optim_sgd(), "sparse_categorical_crossentropy")
    losses_seen = [
        replay.train_on_batch(x[i : i + 4], y[i : i + 4]) * len(x[i : i + 4]) for i in (0, 4, 8)
    ]
    assert history.history["loss"][0] == pytest.approx(sum(losses_seen) / 10, rel=1e-6)


def optim_sgd():
    from optim import SGD

    return SGD(0.1)


def test_weights_round_trip(tmp_path, rng):
    model = tutorial_model()
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    for ours, given in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(ours, given)
    model.save_weights(tmp_path / "w.weights.npz")
    other = tutorial_model()
    other.load_weights(tmp_path / "w.weights.npz")
    for ours, given in zip(other.get_weights(), weights):
        np.testing.assert_array_equal(ours, given)


def test_save_and_load_model(tmp_path, rng):
    model = tutorial_model()
    model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    x, y = rng.uniform(0, 1, (8, 28, 28, 1)), rng.integers(0, 10, 8)
    model.fit(x, y, epochs=1, verbose=0, seed=0)
    model.save(tmp_path / "model.npz")
    loaded = engine.load_model(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.iterations == model.optimizer.iterations == 1
    assert isinstance(loaded.loss, losses.SparseCategoricalCrossentropy) and loaded.loss.from_logits


def test_layer_names_follow_keras():
    model = Sequential([Conv2D(2, 3, input_shape=(5, 5, 1)), MaxPooling2D(), Flatten(), Dense(2)])
    names = [
        layer.name.rsplit("_", 1)[0] if layer.name[-1].isdigit() else layer.name
        for layer in model.layers
    ]
    assert names == ["conv2d", "max_pooling2d", "flatten", "dense"]


def test_backend_switch_names_and_errors():
    assert backend.backend_name() in ("numpy", "cupy")
    with pytest.raises(ValueError, match="numpy, cupy, auto"):
        backend.set_backend("tpu")
    with pytest.raises(ValueError, match="float32, float64"):
        backend.set_floatx("float16")
    if not backend.gpu_available():
        with pytest.raises(RuntimeError, match="CuPy"):
            backend.set_backend("cupy")
        assert backend.set_backend("auto") == "numpy"
