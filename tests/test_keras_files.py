"""Keras's own files without Keras: the .keras archives and .weights.h5 files in
tests/fixtures (written by Keras 3, see make_keras_fixtures.py) load and predict what
Keras predicted; ours round-trip; what xpcnn cannot run is refused by name."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import engine
from engine import KerasFileError, WeightFileError, layers, losses

FIXTURES = Path(__file__).resolve().parent / "fixtures"
pytest.importorskip("h5py", reason="Keras files need h5py (pip install 'xpcnn[keras-files]')")


@pytest.fixture(scope="module")
def keras_predictions():
    with np.load(FIXTURES / "keras_predictions.npz") as data:
        return {key: data[key] for key in data.files}


def small_cnn():
    """The architecture of small_cnn.keras, built with xpcnn (names differ: they need not)."""
    return engine.Sequential(
        [
            layers.Input((12, 12, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(6, 3, padding="same", activation="tanh"),
            layers.Flatten(),
            layers.Dense(8, activation="relu"),
            layers.Dense(3, activation="softmax"),
        ]
    )


@pytest.mark.parametrize("name", ["small_cnn", "residual"])
def test_keras_archives_load_compiled_and_predict_what_keras_predicted(name, keras_predictions):
    model = engine.load_model(FIXTURES / f"{name}.keras")
    x = keras_predictions["x"]
    np.testing.assert_allclose(model.predict(x), keras_predictions[name], rtol=1e-5, atol=1e-6)
    assert type(model.optimizer).__name__ == "Adam" and model.optimizer.iterations == 2
    assert model.optimizer.slots is not None  # Keras's optimizer state came with it


def test_the_archive_holds_the_compile_config_and_regularizers():
    model = engine.load_model(FIXTURES / "small_cnn.keras")
    assert isinstance(model.loss, losses.SparseCategoricalCrossentropy)
    assert not model.loss.from_logits
    assert [m.name for m in model.metrics] == ["accuracy"]
    assert [type(r).__name__ for _, r in model.regularized_weights] == ["L2"]
    residual = engine.load_model(FIXTURES / "residual.keras")
    assert isinstance(residual.get_layer("head"), engine.Sequential)
    assert residual.input_names == ["image"]


def test_keras_weights_files_load_into_the_same_architecture(keras_predictions):
    model = small_cnn()
    model.load_weights(FIXTURES / "small_cnn.weights.h5")
    np.testing.assert_allclose(
        model.predict(keras_predictions["x"]), keras_predictions["small_cnn"], rtol=1e-5, atol=1e-6
    )


def test_weights_of_another_architecture_are_refused_and_nothing_changes():
    model = small_cnn()
    before = model.get_weights()
    with pytest.raises(KerasFileError, match="HDF5 weights file.*conv2d.*has shape"):
        model.load_weights(FIXTURES / "residual.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_our_archive_round_trips_and_resumes_identically(tmp_path, rng):
    model = engine.load_model(FIXTURES / "residual.keras")
    x, y = rng.random((8, 12, 12, 1)).astype("float32"), rng.random((8, 3)).astype("float32")
    model.fit(x, y, epochs=1, verbose=0, seed=0)
    model.save(tmp_path / "ours.keras")
    model.save_weights(tmp_path / "ours.weights.h5")
    loaded = engine.load_model(tmp_path / "ours.keras")
    saved = model.predict(x)
    np.testing.assert_array_equal(loaded.predict(x), saved)
    assert loaded.optimizer.iterations == model.optimizer.iterations
    model.fit(x, y, epochs=2, initial_epoch=1, verbose=0, seed=0)
    loaded.fit(x, y, epochs=2, initial_epoch=1, verbose=0, seed=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    again = engine.load_model(FIXTURES / "residual.keras")
    again.load_weights(tmp_path / "ours.weights.h5")
    assert again.optimizer.iterations == 3  # weights and optimizer state, as Keras's file holds
    np.testing.assert_array_equal(again.predict(x), saved)


def _edited_archive(tmp_path, edit, name="small_cnn"):
    """A copy of a fixture archive whose config.json went through ``edit``."""
    source = FIXTURES / f"{name}.keras"
    target = tmp_path / f"edited_{name}.keras"
    with zipfile.ZipFile(source) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return target


def _layer(config, index):
    return config["config"]["layers"][index]


def _lambda(config):
    _layer(config, 1).update({"class_name": "Lambda"})
    _layer(config, 1)["config"]["function"] = {"class_name": "__lambda__", "config": {}}


def _custom(config):
    _layer(config, 1)["registered_name"] = "MyPackage>MyConv"


def _constraint(config):
    _layer(config, 1)["config"]["kernel_constraint"] = {
        "module": "keras.constraints",
        "class_name": "MaxNorm",
        "config": {"max_value": 2},
    }


def _unknown_option(config):
    _layer(config, 5)["config"]["frobnicate"] = True


def _ema(config):
    config["compile_config"]["optimizer"]["config"]["use_ema"] = True


REFUSED = {
    "lambda_layer": (_lambda, ["'Lambda'", "Conv2D"]),
    "custom_object": (_custom, ["MyPackage>MyConv", "never custom code"]),
    "constraint": (_constraint, ["kernel_constraint", "MaxNorm"]),
    "unknown_option": (_unknown_option, ["frobnicate"]),
    "optimizer_ema": (_ema, ["use_ema"]),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_xpcnn_cannot_run_is_refused_by_name(case, tmp_path):
    edit, words = REFUSED[case]
    path = _edited_archive(tmp_path, edit)
    with pytest.raises(WeightFileError) as excinfo:
        engine.load_model(path)
    message = str(excinfo.value)
    assert "Keras archive" in message
    for word in words:
        assert word in message, message


def test_damaged_and_foreign_files_are_named_for_what_they_are(tmp_path):
    data = (FIXTURES / "small_cnn.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match="not a valid xpcnn file|Keras archive"):
        engine.load_model(tmp_path / "cut.keras")
    with pytest.raises(WeightFileError, match="HDF5 weights file.*load_weights"):
        engine.load_model(FIXTURES / "small_cnn.weights.h5")
    model = small_cnn()
    with pytest.raises(WeightFileError, match="model.save_weights"):
        model.save(tmp_path / "model.h5")
    with pytest.raises(WeightFileError, match="holds a whole model"):
        model.save_weights(tmp_path / "w.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.keras"]
