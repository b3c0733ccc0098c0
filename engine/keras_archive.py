"""Keras 3's own files, read and written without Keras: the .keras archive and the
.weights.h5 weights file (h5py reads and writes them: pip install 'xpcnn[keras-files]').

A .keras archive is a zip of config.json (the model, engine/keras_config.py translates
it), metadata.json and model.weights.h5, whose layout (keras/src/saving/saving_lib.py) is

    layers/<key>/vars/<i>           a layer's weights in get_weights() order; <key> is the
                                    layer's class in snake_case, numbered conv2d, conv2d_1, ...
                                    within each model (not its name)
    layers/<key>/layers/...         the layers of a nested model
    optimizer/vars/<i>              the step count, the learning rate, then the optimizer's
                                    slot variables in Keras's order
    vars                            the model's own variables (none)

A .weights.h5 file has the same layout. Everything read is checked before anything
changes; a problem is a KerasFileError (a WeightFileError) naming the file as what it is.
"""

import datetime
import io
import json
import os
import zipfile

import numpy as np

import optim
from engine import backend, keras_config, serialization, utils
from engine.io_utils import KerasFileError, atomic_write

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ARCHIVE_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
KERAS_VERSION = "3.15.1"  # the Keras these files are written for and tested against

# Our optimizer slot names in the order Keras creates its optimizer variables: each group
# is one add_optimizer_variables call, interleaved per variable (keras/src/optimizers/).
KERAS_SLOT_ORDER = {
    "Adam": [("m", "v"), ("v_hat",)],
    "AdamW": [("m", "v"), ("v_hat",)],
    "Adamax": [("momentum", "norm")],
    "SGD": [("momentum",)],
    "RMSprop": [("velocity",), ("momentum",), ("average_gradient",)],
    "Adagrad": [("accumulator",)],
}


def _h5py(path):
    try:
        import h5py
    except ImportError:
        raise KerasFileError(
            f"{path!r} is a Keras file; reading and writing Keras files needs h5py: "
            "pip install 'xpcnn[keras-files]'."
        ) from None
    return h5py


def is_keras_archive(path):
    """True for a zip holding a Keras model's config.json and model.weights.h5."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except Exception:  # noqa: BLE001 (a damaged zip raises many kinds): not an archive
        return False
    return {"config.json", "model.weights.h5"} <= names


def is_hdf5(path):
    with open(path, "rb") as f:
        return f.read(8) == HDF5_SIGNATURE


# -- the H5 layout ---------------------------------------------------------------------


def layer_groups(model, prefix="layers", visited=None):
    """(group path, layer) for every layer with weights, as Keras's saving walks the model:
    its layers in order (InputLayers too, for a functional model), keys numbered per class,
    a layer met a second time (shared) skipped."""
    visited = set() if visited is None else visited
    used = {}
    for layer in model.layers:
        key = utils.snake_case(serialization.class_name(layer))
        used[key] = used.get(key, -1) + 1
        path = f"{prefix}/{key}" if used[key] == 0 else f"{prefix}/{key}_{used[key]}"
        if id(layer) in visited:
            continue
        visited.add(id(layer))
        if hasattr(layer, "_nodes"):  # a nested model
            yield from layer_groups(layer, f"{path}/layers", visited)
        else:
            yield path, layer


def _read_weights(h5, model, what):
    """Every layer's arrays from an open H5 file, checked against the model: a list in
    model.weights order, or a KerasFileError."""
    arrays = {}
    for path, layer in layer_groups(model):
        expected = layer.weights
        group = h5.get(f"{path}/vars")
        found = [] if group is None else sorted(group.keys(), key=_index)
        if len(found) != len(expected):
            raise KerasFileError(
                f"{what} holds {len(found)} arrays for layer {layer.name!r} ({path}), which has "
                f"{len(expected)} weights: it was saved from a different architecture."
            )
        for key, w in zip(found, expected):
            value = group[key]
            if not hasattr(value, "shape") or tuple(value.shape) != w.shape:
                shape = getattr(value, "shape", "no array")
                raise KerasFileError(
                    f"{what}: {path}/vars/{key} has shape {shape}; layer {layer.name!r} needs "
                    f"{w.shape}."
                )
            array = np.asarray(value[()])
            if array.dtype.kind != "f":
                raise KerasFileError(
                    f"{what}: {path}/vars/{key} holds {array.dtype}, not floating point."
                )
            arrays[id(w)] = array
    return [arrays[id(w)] for w in model.weights]


def _index(key):
    try:
        return int(key)
    except ValueError:
        return -1


def _write_state(h5, model):
    """The weights, and the optimizer's variables when Keras has the same optimizer."""
    h5.create_group("vars").attrs["name"] = model.name
    for path, layer in layer_groups(model):
        group = h5.create_group(f"{path}/vars")
        group.attrs["name"] = layer.name
        for i, w in enumerate(layer.weights):
            group.create_dataset(str(i), data=backend.to_numpy(w))
    optimizer = _optimizer_arrays(model) if model.compiled_loss is not None else None
    if optimizer is not None:
        group = h5.create_group("optimizer/vars")
        group.attrs["name"] = utils.snake_case(type(model.optimizer).__name__)
        for i, array in enumerate(optimizer):
            group.create_dataset(str(i), data=array)


def _optimizer_arrays(model):
    """Keras's optimizer variables of our optimizer (None when Keras could not take them)."""
    optimizer = model.optimizer
    order = KERAS_SLOT_ORDER.get(type(optimizer).__name__)
    if order is None or optimizer.slots is None:
        return None
    arrays = [np.asarray(optimizer.iterations, np.int64)]
    if not _has_schedule(optimizer):  # Keras keeps a number's rate in a variable
        arrays.append(np.asarray(optimizer.learning_rate, np.float32))
    for group in order:
        names = [n for n in group if n in optimizer.slot_names]
        for slots in optimizer.slots:
            arrays.extend(backend.to_numpy(slots[n]) for n in names)
    return arrays


def _has_schedule(optimizer):
    return isinstance(optimizer._learning_rate, optim.schedules.LearningRateSchedule)


def _read_optimizer(h5, model, what):
    """(learning rate, state for optimizer.set_state) checked against the model's trainable
    weights, or None when the file holds no optimizer variables for it."""
    group = h5.get("optimizer/vars")
    order = KERAS_SLOT_ORDER.get(type(model.optimizer).__name__)
    head = 1 if _has_schedule(model.optimizer) else 2  # the step count (and the rate)
    if group is None or order is None or len(group) <= head:
        return None
    keys = sorted(group.keys(), key=_index)
    weights = model.trainable_weights
    names = [n for g in order for n in g if n in model.optimizer.slot_names]
    if len(keys) != head + len(names) * len(weights):
        raise KerasFileError(
            f"{what} holds {len(keys) - head} optimizer slot arrays; this model's "
            f"{type(model.optimizer).__name__} has {len(names) * len(weights)}."
        )
    expected = [()] * head + [
        weights[i].shape
        for g in order
        for i in range(len(weights))
        for n in g
        if n in model.optimizer.slot_names
    ]
    values = []
    for key, shape in zip(keys, expected):
        value = group[key]
        if not hasattr(value, "shape") or tuple(value.shape) != tuple(shape):
            raise KerasFileError(
                f"{what}: optimizer/vars/{key} has shape {getattr(value, 'shape', None)}, "
                f"expected {shape}."
            )
        values.append(np.asarray(value[()]))
    if not all(v.dtype.kind in "fiu" for v in values):
        raise KerasFileError(f"{what}: the optimizer variables are not all numbers.")
    rate = None if head == 1 else float(values[1])
    if not (values[0].ndim == 0 and 0 <= int(values[0]) < 2**62) or not (
        rate is None or (np.isfinite(rate) and rate > 0)
    ):
        raise KerasFileError(
            f"{what}: the optimizer's step count {values[0]!r} or learning rate {rate!r} "
            "is out of range."
        )
    state, it = {"iterations": np.asarray(int(values[0]))}, iter(values[head:])
    for group_names in order:
        present = [n for n in group_names if n in model.optimizer.slot_names]
        for i in range(len(weights)):
            for name in present:
                state[f"{i}/{name}"] = next(it)
    return rate, state


# -- files ---------------------------------------------------------------------------------


def load_archive(path, custom_objects=None):
    """A model (compiled where the file holds a compile config) from a Keras .keras archive."""
    h5py = _h5py(path)
    what = f"{path!r} (a Keras archive)"
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json").decode("utf-8"))
            weights_bytes = archive.read("model.weights.h5")
    except Exception as exc:  # noqa: BLE001 (zipfile, JSON and UTF-8 each raise their own)
        raise KerasFileError(f"{what} cannot be read (truncated or damaged?): {exc}.") from None
    try:
        classes = serialization.layer_classes(custom_objects)
        entry = keras_config.model_from_keras(_as_mapping(config, what), classes)
        model = serialization.deserialize(entry, f"{what}: ", custom_objects)
        if not model.built:
            raise KerasFileError(f"{what} holds a model without an input shape.")
        compile_config = config.get("compile_config") or None
        with h5py.File(io.BytesIO(weights_bytes), "r") as h5:
            weights = _read_weights(h5, model, what)
            if compile_config:
                keras_config.compile_from_keras(model, compile_config)
                optimizer_state = _read_optimizer(h5, model, what)
    except KerasFileError:
        raise
    except serialization.ConfigError as exc:
        raise KerasFileError(f"{what}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 (h5py and a malformed config raise anything)
        raise KerasFileError(f"{what} is malformed: {type(exc).__name__}: {exc}") from None
    model.set_weights(weights)
    if compile_config:
        _set_optimizer(model, optimizer_state)
    return model


def _set_optimizer(model, optimizer_state):
    if optimizer_state is not None:
        learning_rate, state = optimizer_state
        model.optimizer.set_state(state, model.trainable_weights)
        if learning_rate is not None:  # the rate the file's optimizer had reached
            model.optimizer.learning_rate = learning_rate


def _as_mapping(config, what):
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise KerasFileError(f"{what}: config.json does not describe a Keras model.")
    return config


def save_archive(model, path):
    """Write ``model`` as a Keras 3 .keras archive that keras.models.load_model opens."""
    h5py = _h5py(path)
    config = keras_config.model_to_keras(model)
    if model.compiled_loss is not None:
        config["compile_config"] = keras_config.compile_to_keras(model)
    metadata = {
        "keras_version": KERAS_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        _write_state(h5, model)
    with atomic_write(path) as f, zipfile.ZipFile(f, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights.getvalue())


def load_weights(model, path):
    """Load a Keras .weights.h5 file (or a .keras archive's weights) into a built model."""
    h5py = _h5py(path)
    archive = not is_hdf5(path)
    what = f"{path!r} (a Keras {'archive' if archive else 'HDF5 weights file'})"
    try:
        if archive:
            with zipfile.ZipFile(path) as z:
                source = io.BytesIO(z.read("model.weights.h5"))
        else:
            source = os.fspath(path)
        with h5py.File(source, "r") as h5:
            weights = _read_weights(h5, model, what)
            compiled = model.compiled_loss is not None
            optimizer_state = _read_optimizer(h5, model, what) if compiled else None
    except KerasFileError:
        raise
    except Exception as exc:  # noqa: BLE001 (h5py raises OSError, KeyError, ValueError, ...)
        raise KerasFileError(f"{what} cannot be read (truncated or damaged?): {exc}") from None
    model.set_weights(weights)
    _set_optimizer(model, optimizer_state)


def save_weights(model, path):
    """Write the weights as Keras 3's .weights.h5 (keras Model.load_weights opens it)."""
    h5py = _h5py(path)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        _write_state(h5, model)
    with atomic_write(path) as f:
        f.write(buffer.getvalue())
