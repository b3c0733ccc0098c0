"""Issue 6: model and weight files: one npz, exact round trips, atomic saves, and files
from strangers treated as data, never code (refused with a clear error, model unchanged).
"""

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import engine
import optim
from engine import Sequential, backend, utils
from layers import Conv2D, Dense, Flatten, MaxPooling2D


def small_model(units=3, optimizer=None, seed=0, compiled=True):
    utils.set_random_seed(seed)
    model = Sequential(
        [
            Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1)),
            MaxPooling2D(2),
            Flatten(),
            Dense(units, activation="softmax"),
        ]
    )
    if compiled:
        model.compile(
            optimizer=optimizer or optim.Adam(0.01),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model


def data(n=24, seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 1)).astype("float32"), rng.integers(0, 3, n)


def trained(optimizer=None, epochs=1):
    model = small_model(optimizer=optimizer)
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=epochs, seed=0, verbose=0)
    return model


def same_arrays(a, b):
    return len(a) == len(b) and all(
        np.asarray(p).dtype == np.asarray(q).dtype and np.array_equal(p, q) for p, q in zip(a, b)
    )


def listing(folder):
    return sorted(os.listdir(folder))


# -- what model.save writes ----------------------------------------------------------------


def test_save_writes_one_npz_with_config_weights_and_optimizer_state(tmp_path):
    model = trained(epochs=2)
    model.save(tmp_path / "model.npz")
    assert listing(tmp_path) == ["model.npz"]
    assert zipfile.is_zipfile(tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz", allow_pickle=False) as f:  # no pickle anywhere
        arrays = {k: f[k] for k in f.files}
    assert all(a.dtype != object for a in arrays.values())
    config = json.loads(bytes(arrays["__config__"]).decode("utf-8"))
    assert config["kind"] == "model"
    assert [entry["class_name"] for entry in config["model"]["layers"]] == [
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]
    assert config["input_shape"] == [6, 6, 1]
    assert config["compile"]["optimizer"]["class_name"] == "Adam"
    assert config["compile"]["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    weights = [arrays[f"weight/{i}"] for i in range(4)]
    assert same_arrays(weights, model.get_weights())
    assert int(arrays["optimizer/iterations"]) == model.optimizer.iterations == 6
    for i, slots in enumerate(model.optimizer.slots):
        for name, value in slots.items():
            assert np.array_equal(arrays[f"optimizer/{i}/{name}"], backend.to_numpy(value))


@pytest.mark.parametrize(
    "optimizer",
    [
        optim.SGD(0.1),
        optim.SGD(0.1, momentum=0.9, nesterov=True),
        optim.Adam(0.01, amsgrad=True),
        optim.RMSprop(0.01, momentum=0.5, centered=True),
        optim.Adagrad(0.1),
    ],
    ids=["sgd", "sgd_nesterov", "adam_amsgrad", "rmsprop", "adagrad"],
)
def test_load_model_is_compiled_predicts_and_trains_on_identically(tmp_path, optimizer):
    model = trained(optimizer)
    model.save(tmp_path / "m.npz")
    loaded = engine.load_model(tmp_path / "m.npz")
    x, y = data(seed=2)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 3
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y) == model.evaluate(x, y)
    h1 = model.fit(x, y, batch_size=8, epochs=2, seed=4, verbose=0)
    h2 = loaded.fit(x, y, batch_size=8, epochs=2, seed=4, verbose=0)
    assert same_arrays(loaded.get_weights(), model.get_weights())
    assert h1.history == h2.history


def test_model_saved_before_training_loads_and_trains_identically(tmp_path):
    model = small_model()
    model.save(tmp_path / "fresh.npz")
    loaded = engine.load_model(tmp_path / "fresh.npz")
    assert loaded.optimizer.iterations == 0
    x, y = data()
    model.fit(x, y, batch_size=8, seed=1, verbose=0)
    loaded.fit(x, y, batch_size=8, seed=1, verbose=0)
    assert same_arrays(loaded.get_weights(), model.get_weights())


def test_uncompiled_model_round_trip(tmp_path):
    model = small_model(compiled=False)
    model.save(tmp_path / "u.npz")
    loaded = engine.load_model(tmp_path / "u.npz")
    assert loaded.loss is None and loaded.optimizer is None
    x, _ = data()
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_weights_round_trip_and_model_file_as_weights(tmp_path):
    model = trained()
    model.save_weights(tmp_path / "w.npz")
    model.save(tmp_path / "m.npz")
    for name in ("w.npz", "m.npz"):
        other = small_model(seed=42)
        assert not same_arrays(other.get_weights(), model.get_weights())
        other.load_weights(tmp_path / name)
        assert same_arrays(other.get_weights(), model.get_weights())


# -- atomic saves ------------------------------------------------------------------------


class DiskFull(OSError):
    pass


def _savez_that_dies(error):
    """An np.savez that writes part of an archive, then fails as a crash or Ctrl-C would."""

    def savez(file, *args, **kwds):
        file.write(b"PK\x03\x04 partial archive bytes" * 100)
        file.flush()
        raise error

    return savez


@pytest.mark.parametrize(
    "error",
    [DiskFull(28, "No space left on device"), KeyboardInterrupt()],
    ids=["oserror", "ctrl_c"],
)
@pytest.mark.parametrize("what", ["save", "save_weights"])
def test_crash_during_save_leaves_the_previous_file_intact(tmp_path, monkeypatch, error, what):
    old = trained()
    path = tmp_path / "model.npz"
    getattr(old, what)(path)
    before = path.read_bytes()

    newer = trained(epochs=2)
    monkeypatch.setattr(np, "savez", _savez_that_dies(error))
    with pytest.raises(type(error)):
        getattr(newer, what)(path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert listing(tmp_path) == ["model.npz"]  # no temporary file left behind
    target = small_model(seed=9)
    target.load_weights(path)
    assert same_arrays(target.get_weights(), old.get_weights())
    if what == "save":
        assert np.array_equal(engine.load_model(path).predict(data()[0]), old.predict(data()[0]))


@pytest.mark.parametrize("error", [DiskFull(28, "No space left"), KeyboardInterrupt()])
def test_crash_during_the_first_save_leaves_nothing(tmp_path, monkeypatch, error):
    model = trained()
    monkeypatch.setattr(np, "savez", _savez_that_dies(error))
    with pytest.raises(type(error)):
        model.save(tmp_path / "new.npz")
    assert listing(tmp_path) == []


def test_crash_at_fsync_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    old = trained()
    path = tmp_path / "m.npz"
    old.save(path)
    before = path.read_bytes()

    def failing_fsync(fd):
        raise DiskFull(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(DiskFull):
        trained(epochs=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and listing(tmp_path) == ["m.npz"]


def test_save_into_a_missing_folder_is_a_clear_error(tmp_path):
    model = trained()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "nope" / "m.npz")
    with pytest.raises(IsADirectoryError, match="folder"):
        model.save(tmp_path)
    assert listing(tmp_path) == []


# -- files from strangers ---------------------------------------------------------------


class Evil:
    """Unpickling this creates a marker file: proof that code ran."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _arrays_of(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _config_bytes(config):
    return np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)


def _edited(good, path, change):
    arrays = _arrays_of(good)
    change(arrays)
    np.savez(path, **arrays)


def _edit_config(good, path, change):
    def apply(arrays):
        config = json.loads(bytes(arrays["__config__"]).decode())
        change(config)
        arrays["__config__"] = _config_bytes(config)

    _edited(good, path, apply)


def _pickled_object_array(good, path):
    arrays = _arrays_of(good)
    arrays["weight/0"] = np.array([Evil()], dtype=object)
    np.savez(path, **arrays)  # np.savez pickles object arrays by default


def _plain_pickle(good, path):
    with open(path, "wb") as f:
        pickle.dump({"weight/0": Evil()}, f)


def _npy_of_objects(good, path):
    with open(path, "wb") as f:
        np.save(f, np.array([Evil(), 1], dtype=object), allow_pickle=True)


def _object_config(good, path):
    arrays = _arrays_of(good)
    arrays["__config__"] = np.array([{"format": "xpcnn-1", "evil": Evil()}], dtype=object)
    np.savez(path, **arrays)


def _truncated(fraction):
    def make(good, path):
        data = open(good, "rb").read()
        cut = int(len(data) * fraction) if fraction < 1 else len(data) - 10
        open(path, "wb").write(data[:cut])

    return make


def _garbage(good, path):
    open(path, "wb").write(np.random.default_rng(0).bytes(2000))


def _garbage_with_zip_magic(good, path):
    open(path, "wb").write(b"PK\x03\x04" + np.random.default_rng(0).bytes(2000))


def _empty(good, path):
    open(path, "wb").close()


def _other_npz(good, path):
    np.savez(path, x_train=np.zeros((2, 28, 28), np.uint8))


def _zip_with_text(good, path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__config__.npy", "not an array")


def _other_architecture(good, path):
    model = small_model(units=5)
    model.save(path)


def _other_architecture_weights(good, path):
    small_model(units=5).save_weights(path)


def _different_layer_types(good, path):
    utils.set_random_seed(0)
    model = Sequential([Flatten(input_shape=(6, 6, 1)), Dense(2), Dense(2), Dense(3)])
    model.compile("adam", "mse")
    model.save(path)


def _set_weight(index, make):
    def change(arrays):
        arrays[f"weight/{index}"] = make(arrays[f"weight/{index}"])

    return lambda good, path: _edited(good, path, change)


def _drop_weight(good, path):
    _edited(good, path, lambda a: a.pop("weight/3"))


def _extra_weight(good, path):
    _edited(good, path, lambda a: a.update({"weight/4": np.zeros(3, np.float32)}))


def _drop_config(good, path):
    _edited(good, path, lambda a: a.pop("__config__"))


def _bad_json(good, path):
    _edited(good, path, lambda a: a.update({"__config__": np.frombuffer(b"{not json", np.uint8)}))


def _bad_utf8(good, path):
    _edited(good, path, lambda a: a.update({"__config__": np.frombuffer(b"\xff\xfe", np.uint8)}))


def _unknown_layer(name):
    def change(config):
        config["model"]["layers"][0]["class_name"] = name

    return lambda good, path: _edit_config(good, path, change)


def _layer_kwarg(good, path):
    _edit_config(good, path, lambda c: c["model"]["layers"][0]["config"].update({"exec": "x"}))


def _bad_layer_value(good, path):
    _edit_config(good, path, lambda c: c["model"]["layers"][3]["config"].update({"units": -1}))


def _drop_layers(good, path):
    _edit_config(good, path, lambda c: c["model"].pop("layers"))


def _unknown_optimizer(good, path):
    _edit_config(good, path, lambda c: c["compile"]["optimizer"].update({"class_name": "Evil"}))


def _unknown_loss(good, path):
    _edit_config(good, path, lambda c: c["compile"]["loss"].update({"class_name": "Loss"}))


def _bad_optimizer_slot(good, path):
    _edited(good, path, lambda a: a.update({"optimizer/0/m": np.zeros((1, 2), np.float32)}))


def _string_optimizer_slot(good, path):
    _edited(good, path, lambda a: a.update({"optimizer/0/m": np.full((3, 3, 1, 2), "x")}))


def _wrong_format(good, path):
    _edit_config(good, path, lambda c: c.update({"format": "keras-3"}))


def _config_is_a_list(good, path):
    _edited(good, path, lambda a: a.update({"__config__": _config_bytes([1, 2])}))


# (builder, error type, words in the message, refused by load_model, refused by load_weights)
BAD_FILES = {
    "object_array_weights": (_pickled_object_array, ["object", "never code"], True, True),
    "object_array_config": (_object_config, ["object", "never code"], True, True),
    "malicious_pickle": (_plain_pickle, ["pickle", "never code"], True, True),
    "npy_of_objects": (_npy_of_objects, [".npy"], True, True),
    "truncated_10pct": (_truncated(0.1), ["truncated or corrupt"], True, True),
    "truncated_half": (_truncated(0.5), ["truncated or corrupt"], True, True),
    "truncated_last_10_bytes": (_truncated(1), ["truncated or corrupt"], True, True),
    "random_garbage": (_garbage, ["not an .npz", "model.save"], True, True),
    "garbage_after_zip_magic": (_garbage_with_zip_magic, ["not a valid xpcnn file"], True, True),
    "empty_file": (_empty, ["empty"], True, True),
    "some_other_npz": (_other_npz, ["not a valid xpcnn file"], True, True),
    "zip_with_text": (_zip_with_text, ["not a valid xpcnn file"], True, True),
    "missing_config": (_drop_config, ["not a valid xpcnn file"], True, True),
    "config_not_json": (_bad_json, ["not a valid xpcnn file"], True, True),
    "config_not_utf8": (_bad_utf8, ["not a valid xpcnn file"], True, True),
    "config_is_a_list": (_config_is_a_list, ["xpcnn-1"], True, True),
    "wrong_format": (_wrong_format, ["xpcnn-1", "keras-3"], True, True),
    "other_architecture_model": (_other_architecture, ["(8, 3)", "(8, 5)"], False, True),
    "other_architecture_weights": (
        _other_architecture_weights,
        {"model": ["weights only", "load_weights"], "weights": ["different architecture"]},
        True,
        True,
    ),
    "different_layer_types": (_different_layer_types, ["different architecture"], False, True),
    "kernel_wrong_shape": (
        _set_weight(0, lambda w: w[:2]),
        ["(3, 3, 1, 2)", "(2, 3, 1, 2)"],
        True,
        True,
    ),
    "bias_wrong_shape": (_set_weight(3, lambda w: w[:2]), ["(3,)", "(2,)"], True, True),
    "int_weights": (_set_weight(0, lambda w: w.astype(np.int32)), ["int32"], True, True),
    "string_weights": (_set_weight(1, lambda w: w.astype("U8")), ["<U8"], True, True),
    "complex_weights": (_set_weight(2, lambda w: w.astype(np.complex64)), ["complex"], True, True),
    "bool_weights": (_set_weight(3, lambda w: w > 0), ["bool"], True, True),
    "missing_weight": (_drop_weight, ["4 arrays", "got 3"], True, True),
    "extra_weight": (_extra_weight, ["4 arrays", "got 5"], True, True),
    "unknown_layer": (_unknown_layer("Evil"), ["'Evil'", "Conv2D"], True, True),
    "abstract_layer": (_unknown_layer("Layer"), ["'Layer'"], True, True),
    "dunder_layer": (_unknown_layer("__class__"), ["'__class__'"], True, True),
    "unexpected_layer_argument": (_layer_kwarg, ["invalid model config", "'exec'"], True, False),
    "missing_layers_entry": (_drop_layers, ["invalid model config", "'layers'"], True, True),
    "bad_layer_value": (_bad_layer_value, ["units", "-1"], True, False),
    "unknown_optimizer": (_unknown_optimizer, ["unknown optimizer 'Evil'", "Adam"], True, False),
    "unknown_loss": (
        _unknown_loss,
        ["unknown loss 'Loss'", "SparseCategoricalCrossentropy"],
        True,
        False,
    ),
    "optimizer_slot_wrong_shape": (_bad_optimizer_slot, ["0/m", "(3, 3, 1, 2)"], True, False),
    "optimizer_slot_strings": (_string_optimizer_slot, ["valid model"], True, False),
}


@pytest.fixture
def good_file(tmp_path):
    model = trained()
    path = tmp_path / "good.npz"
    model.save(path)
    return path


def _check(err, path, words, mode):
    if isinstance(words, dict):
        words = words[mode]
    assert isinstance(err, engine.WeightFileError) and isinstance(err, ValueError), repr(err)
    message = str(err)
    assert repr(os.fspath(path)) in message  # the path as the user would type it
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    for leak in ("Traceback", "KeyError(", "IndexError("):
        assert leak not in message


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_refused_and_the_model_is_unchanged(case, good_file, tmp_path):
    make, words, bad_model, bad_weights = BAD_FILES[case]
    marker = tmp_path / "code-ran"
    Evil.marker = marker
    path = tmp_path / f"{case}.npz"
    make(good_file, path)
    content = path.read_bytes()

    if bad_model:
        with pytest.raises(Exception) as excinfo:
            engine.load_model(path)
        _check(excinfo.value, path, words, "model")

    target = small_model(seed=7)
    x, y = data()
    target.fit(x, y, batch_size=8, verbose=0)
    before = target.get_weights()
    slots = [{k: backend.to_numpy(v).copy() for k, v in s.items()} for s in target.optimizer.slots]
    if bad_weights:
        with pytest.raises(Exception) as excinfo:
            target.load_weights(path)
        _check(excinfo.value, path, words, "weights")
    else:  # weights that fit are still loadable from a model file with a bad compile section
        target.load_weights(path)
        before = _arrays_of(good_file)
        before = [before[f"weight/{i}"] for i in range(4)]
    assert same_arrays(target.get_weights(), before)
    for now, then in zip(target.optimizer.slots, slots):
        assert all(np.array_equal(backend.to_numpy(now[k]), then[k]) for k in then)
    assert not marker.exists(), "unpickling ran code"
    assert path.read_bytes() == content  # reading never writes


def test_missing_file_and_folder(tmp_path):
    target = small_model()
    before = target.get_weights()
    for load in (engine.load_model, target.load_weights):
        with pytest.raises(FileNotFoundError) as excinfo:
            load(tmp_path / "missing.npz")
        assert isinstance(excinfo.value, engine.WeightFileError)
        assert "missing.npz" in str(excinfo.value)
        with pytest.raises(engine.WeightFileError, match="folder"):
            load(tmp_path)
        with pytest.raises(TypeError, match="path"):
            load(None)
    assert same_arrays(target.get_weights(), before)


def test_weights_file_into_an_unbuilt_model_is_refused(tmp_path):
    trained().save_weights(tmp_path / "w.npz")
    model = Sequential([Conv2D(2, 3), MaxPooling2D(2), Flatten(), Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        model.load_weights(tmp_path / "w.npz")
    assert not model.built


def test_np_load_is_never_asked_to_unpickle(tmp_path, monkeypatch):
    """Every read goes through np.load(..., allow_pickle=False)."""
    model = trained()
    model.save(tmp_path / "m.npz")
    model.save_weights(tmp_path / "w.npz")
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    engine.load_model(tmp_path / "m.npz")
    model.load_weights(tmp_path / "w.npz")
    model.load_weights(tmp_path / "m.npz")
    assert calls and all(flag is False for flag in calls)
