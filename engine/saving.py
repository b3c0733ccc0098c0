"""Model and weight files: one .npz each, read with allow_pickle=False, written atomically.

A model file holds:
    __config__        the architecture, loss, metrics and optimizer as UTF-8 JSON bytes
    weight/<i>        the i-th array of get_weights()
    optimizer/<key>   the optimizer's step count and slot arrays
A weights file holds only weight/<i> and a small __config__ naming the layers,
so loading into a different architecture is refused before anything changes.

Reading never unpickles: a file holding a pickle or object arrays, random bytes,
a truncated archive, another architecture, wrong shapes or dtypes is refused with
a WeightFileError (a ValueError) naming the file and the problem, and the model
it was loaded into is left as it was (everything is checked before anything is
copied). A missing file raises WeightFileNotFoundError (also a FileNotFoundError).
"""

import json
import math
import os
import zipfile

import numpy as np

import optim
from engine import keras_archive, losses, serialization
from engine import metrics as metrics_module
from engine.io_utils import (
    WeightFileError,
    WeightFileNotFoundError,
    atomic_write,
)

FORMAT = "xpcnn-1"


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip member, or an empty zip archive
_NPY_MAGIC = b"\x93NUMPY"


def _encode(config):
    return np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)


def _writable(path):
    """``path`` as a str, once its folder exists and it is not itself a folder."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save {path!r}: the folder {folder!r} does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"Cannot save to {path!r}: it is a folder; give a file name.")
    return path


def _write(path, arrays):
    """Write an .npz atomically: a crash or Ctrl-C leaves any previous file intact."""
    with atomic_write(_writable(path)) as f:
        np.savez(f, **arrays)


def _existing(path):
    """``path`` as a str naming an existing file, or the error that says what it is."""
    path = _as_path(path)
    if os.path.isdir(path):
        raise WeightFileError(f"{path!r} is a folder, not a weights or model file.")
    if not os.path.isfile(path):
        raise WeightFileNotFoundError(f"No such weights or model file: {path!r}.")
    return path


def _sniff(path):
    """Refuse, by its first bytes, anything that is not a zip (.npz) archive."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_ZIP_MAGIC):
        return
    if not head:
        raise WeightFileError(f"{path!r} is empty (0 bytes); an interrupted copy?")
    if head.startswith(_NPY_MAGIC):
        raise WeightFileError(
            f"{path!r} is a single .npy array, not an xpcnn .npz model or weights file."
        )
    if head[:1] == b"\x80":  # the PROTO opcode that starts pickles of protocol 2 and later
        raise WeightFileError(
            f"{path!r} holds a Python pickle; refused: weight files are data, never code."
        )
    raise WeightFileError(
        f"{path!r} is not an .npz (zip) archive: it starts with bytes {head!r}; "
        "expected a file written by model.save or model.save_weights."
    )


def _as_path(path):
    """A str path (messages show it plainly), or a TypeError for anything else."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"Expected a file path, got {type(path).__name__}: {path!r}.")
    return os.fspath(path)


def _read(path):
    """All arrays of an .npz file, or a WeightFileError naming the file and the problem."""
    path = _existing(path)
    _sniff(path)
    try:
        _check_members(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        config = json.loads(bytes(arrays.pop("__config__")).decode("utf-8"))
        for key, value in arrays.items():
            if not isinstance(value, np.ndarray):
                raise WeightFileError(
                    f"{path!r} is not a valid xpcnn file: its member {key!r} is not an array."
                )
    except WeightFileError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise WeightFileError(_objects_refused(path)) from None
        raise WeightFileError(f"{path!r} is not a valid xpcnn file: {exc}.") from None
    except Exception as exc:  # zip, NumPy's header parser, UTF-8: each its own exceptions
        raise WeightFileError(
            f"{path!r} is not a valid xpcnn file (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}."
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise WeightFileError(f"{path!r} is not an xpcnn {FORMAT} file (its format is {found!r}).")
    return config, arrays


def _objects_refused(path):
    return (
        f"{path!r} holds Python objects (object arrays need pickle); refused: "
        "weight files are data, never code."
    )


def _check_members(path):
    """Read each member's .npy header first: object arrays are refused unread, and an array
    whose header claims more bytes than the member holds (which NumPy would allocate) is
    a damaged file."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                try:
                    version = np.lib.format.read_magic(member)
                except ValueError:
                    continue  # not an array: np.load reports it
                read = np.lib.format.read_array_header_1_0
                if version != (1, 0):
                    read = np.lib.format.read_array_header_2_0
                shape, _, dtype = read(member)
            if dtype.hasobject:
                raise WeightFileError(_objects_refused(path))
            if math.prod(shape) * dtype.itemsize > info.file_size:
                raise WeightFileError(
                    f"{path!r} is not a valid xpcnn file (truncated or corrupt?): its member "
                    f"{info.filename!r} claims a {shape} {dtype} array, larger than its "
                    f"{info.file_size} bytes."
                )


def _weights_from(arrays, path):
    weights, i = [], 0
    while f"weight/{i}" in arrays:
        weights.append(arrays[f"weight/{i}"])
        i += 1
    for i, w in enumerate(weights):
        if w.dtype.kind != "f":
            raise WeightFileError(
                f"{path!r}: weights must be floating point, found dtype {w.dtype} in weight/{i}."
            )
    return weights


def _config_class_names(config, path):
    """The layer class names a model file's config lists."""
    try:
        return [entry["class_name"] for entry in config["model"]["layers"]]
    except KeyError as exc:
        raise WeightFileError(
            f"{path!r} has an invalid model config: the entry {exc.args[0]!r} is missing."
        ) from None
    except TypeError as exc:
        raise WeightFileError(f"{path!r} has an invalid model config: {exc}.") from None


def _layer_signature(model):
    return [
        [serialization.class_name(layer), [list(p.shape) for p in layer.weights]]
        for layer in model.layers
    ]


def save_weights(model, path):
    """An xpcnn .npz, or Keras's HDF5 weights file for a name ending in .h5 (.weights.h5)."""
    model._require_built("save_weights")
    if os.fspath(path).endswith(".h5"):
        return keras_archive.save_weights(model, _writable(path))
    if os.fspath(path).endswith(".keras"):
        raise WeightFileError(
            f"{os.fspath(path)!r}: a .keras archive holds a whole model; use model.save for it, "
            "or name the weights file *.weights.h5 (Keras) or *.npz (xpcnn)."
        )
    arrays = {f"weight/{i}": w for i, w in enumerate(model.get_weights())}
    arrays["__config__"] = _encode(
        {"format": FORMAT, "kind": "weights", "layers": _layer_signature(model)}
    )
    _write(path, arrays)


def load_weights(model, path):
    """Weights from an xpcnn .npz, a Keras .weights.h5 file or a Keras .keras archive."""
    path = _existing(path)
    if keras_archive.is_hdf5(path) or keras_archive.is_keras_archive(path):
        model._require_built("load_weights")
        return keras_archive.load_weights(model, path)
    config, arrays = _read(path)
    if config.get("kind") not in ("weights", "model"):
        raise WeightFileError(f"{path!r} holds neither weights nor a model.")
    model._require_built("load_weights")
    if config["kind"] == "weights":
        signature, mine = config.get("layers"), _layer_signature(model)
    else:
        signature = _config_class_names(config, path)
        mine = [serialization.class_name(layer) for layer in model.layers]
    if signature is not None and signature != mine:
        raise WeightFileError(
            f"{path!r} was saved from a different architecture: {signature} "
            f"does not match this model's {mine}."
        )
    weights = _weights_from(arrays, path)
    try:
        model.set_weights(weights)
    except (ValueError, TypeError) as exc:
        raise WeightFileError(f"{path!r} does not fit this model: {exc}") from None


def save_model(model, path):
    """An xpcnn .npz, or a Keras 3 .keras archive for a name ending in .keras."""
    model._require_built("save")
    if os.fspath(path).endswith(".keras"):
        return keras_archive.save_archive(model, _writable(path))
    if os.fspath(path).endswith(".h5"):
        raise WeightFileError(
            f"{os.fspath(path)!r}: model.save writes a whole model as .keras (Keras) or .npz "
            "(xpcnn); an .h5 name is for weights (model.save_weights)."
        )
    config = {
        "format": FORMAT,
        "kind": "model",
        "model_class": serialization.class_name(model),
        "model": model.get_config(),
    }
    if not isinstance(model.input_shape, list):
        config["input_shape"] = list(model.input_shape)
    arrays = {f"weight/{i}": w for i, w in enumerate(model.get_weights())}
    if model.compiled_loss is not None:
        config["compile"] = _compile_config(model)
        arrays.update({f"optimizer/{k}": v for k, v in model.optimizer.get_state().items()})
    arrays["__config__"] = _encode(config)
    _write(path, arrays)


def _entry(obj):
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def _compile_config(model):
    compiled = model.compiled_loss
    loss = [None if item is None else _entry(item) for item in compiled.losses]
    return {
        "loss": loss[0] if compiled.single else loss,
        "loss_weights": compiled.weights,
        "optimizer": _entry(model.optimizer),
        "metrics": [[_entry(m) for m in made] for made in model.compiled_metrics.per_output],
        "weighted_metrics": [
            [_entry(m) for m in made] for made in model.compiled_metrics.weighted_per_output
        ],
    }


def _known(path, what, name, classes):
    """classes[name], or a WeightFileError listing the names a file may use."""
    try:
        return serialization.known(what, name, classes, f"{path!r} ")
    except serialization.ConfigError as exc:
        raise WeightFileError(str(exc)) from None


def load_model(path, custom_objects=None):
    """A built (and, if it was, compiled) model from a file written by model.save.

    ``custom_objects`` (name -> Layer subclass) lets the file name your own layer classes,
    as in Keras; nothing else a file names is ever imported or run.
    """
    path = _existing(path)
    if keras_archive.is_keras_archive(path):
        return keras_archive.load_archive(path, custom_objects)
    if keras_archive.is_hdf5(path):
        raise WeightFileError(
            f"{path!r} is an HDF5 weights file (Keras's .weights.h5), which holds weights, not a "
            "model: build the model and call model.load_weights on it."
        )
    config, arrays = _read(path)
    if config.get("kind") != "model":
        raise WeightFileError(
            f"{path!r} holds weights only; build the model and call load_weights."
        )
    try:
        # Files written before graphs existed hold a Sequential's config without the class.
        entry = {"class_name": config.get("model_class", "Sequential"), "config": config["model"]}
        model = serialization.deserialize(entry, f"{path!r} ", custom_objects)
        if not model.built:
            model.build(config["input_shape"])
        model.set_weights(_weights_from(arrays, path))
        if "compile" in config:
            _compile_from(model, config["compile"], arrays, path)
    except serialization.ConfigError as exc:
        raise WeightFileError(str(exc)) from None
    except KeyError as exc:
        raise WeightFileError(
            f"{path!r} has an invalid model config: the entry {exc.args[0]!r} is missing."
        ) from None
    except (TypeError, AttributeError, IndexError) as exc:
        raise WeightFileError(f"{path!r} has an invalid model config: {exc}.") from None
    except ValueError as exc:
        if isinstance(exc, WeightFileError):
            raise
        raise WeightFileError(f"{path!r} does not describe a valid model: {exc}") from None
    return model


def _compile_from(model, compiled, arrays, path):
    optimizer_classes = {cls.__name__: cls for cls in optim.OPTIMIZERS.values()}
    loss_classes = {cls.__name__: cls for cls in losses.LOSSES.values()}
    metric_classes = {cls.__name__: cls for cls in metrics_module.METRICS.values()}

    def make(entry, what, classes):
        if entry is None:
            return None
        if isinstance(entry, str):  # files of the first format name metrics as strings
            return entry
        return _known(path, what, entry["class_name"], classes)(**entry["config"])

    entry = compiled["optimizer"]
    optimizer = _known(path, "optimizer", entry["class_name"], optimizer_classes).from_config(
        entry["config"]
    )
    loss = compiled["loss"]
    loss = (
        [make(e, "loss", loss_classes) for e in loss]
        if isinstance(loss, list)
        else make(loss, "loss", loss_classes)
    )

    def metrics(key):
        made = compiled.get(key)
        if made and isinstance(made[0], list):
            made = [[make(e, "metric", metric_classes) for e in entries] for entries in made]
            made = made[0] if len(made) == 1 else made
        return made

    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=metrics("metrics"),
        loss_weights=compiled.get("loss_weights"),
        weighted_metrics=metrics("weighted_metrics"),
    )
    state = {k[len("optimizer/") :]: v for k, v in arrays.items() if k.startswith("optimizer/")}
    if any(key != "iterations" for key in state):
        model.optimizer.set_state(state, model.trainable_weights)
    elif "iterations" in state:  # no slot arrays (plain SGD, or never trained)
        model.optimizer.iterations = int(state["iterations"])
