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
import os
import zipfile

import numpy as np

from engine import losses
from engine.io_utils import atomic_write

FORMAT = "xpcnn-1"


class WeightFileError(ValueError):
    """A weights or model file is unreadable or does not match the model."""


class WeightFileNotFoundError(WeightFileError, FileNotFoundError):
    """The weights or model file does not exist."""


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip member, or an empty zip archive
_NPY_MAGIC = b"\x93NUMPY"


def _encode(config):
    return np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)


def _write(path, arrays):
    """Write an .npz atomically: a crash or Ctrl-C leaves any previous file intact."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save {path!r}: the folder {folder!r} does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"Cannot save to {path!r}: it is a folder; give a file name.")
    with atomic_write(path) as f:
        np.savez(f, **arrays)


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
    path = _as_path(path)
    if os.path.isdir(path):
        raise WeightFileError(f"{path!r} is a folder, not a weights or model file.")
    if not os.path.isfile(path):
        raise WeightFileNotFoundError(f"No such weights or model file: {path!r}.")
    _sniff(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        config = json.loads(bytes(arrays.pop("__config__")).decode("utf-8"))
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise WeightFileError(
                f"{path!r} holds Python objects (object arrays need pickle); refused: "
                "weight files are data, never code."
            ) from None
        raise WeightFileError(f"{path!r} is not a valid xpcnn file: {exc}.") from None
    except (KeyError, OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise WeightFileError(
            f"{path!r} is not a valid xpcnn file (truncated or corrupt?): {exc}."
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise WeightFileError(f"{path!r} is not an xpcnn {FORMAT} file (its format is {found!r}).")
    return config, arrays


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
        [type(layer).__name__, [list(p.shape) for p in layer.params.values()]]
        for layer in model.layers
    ]


def save_weights(model, path):
    model._require_built("save_weights")
    arrays = {f"weight/{i}": w for i, w in enumerate(model.get_weights())}
    arrays["__config__"] = _encode(
        {"format": FORMAT, "kind": "weights", "layers": _layer_signature(model)}
    )
    _write(path, arrays)


def load_weights(model, path):
    path = _as_path(path)
    config, arrays = _read(path)
    if config.get("kind") not in ("weights", "model"):
        raise WeightFileError(f"{path!r} holds neither weights nor a model.")
    model._require_built("load_weights")
    if config["kind"] == "weights":
        signature, mine = config.get("layers"), _layer_signature(model)
    else:
        signature = _config_class_names(config, path)
        mine = [type(layer).__name__ for layer in model.layers]
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
    model._require_built("save")
    config = {
        "format": FORMAT,
        "kind": "model",
        "model": model.get_config(),
        "input_shape": list(model.input_shape),
    }
    arrays = {f"weight/{i}": w for i, w in enumerate(model.get_weights())}
    if model.loss is not None:
        config["compile"] = {
            "loss": {
                "class_name": type(model.loss).__name__,
                "config": model.loss.get_config(),
            },
            "optimizer": {
                "class_name": type(model.optimizer).__name__,
                "config": model.optimizer.get_config(),
            },
            "metrics": [name for name, _ in model.metrics],
        }
        arrays.update({f"optimizer/{k}": v for k, v in model.optimizer.get_state().items()})
    arrays["__config__"] = _encode(config)
    _write(path, arrays)


def _known(path, what, name, classes):
    """classes[name], or a WeightFileError listing the names a file may use."""
    if not isinstance(name, str) or name not in classes:
        raise WeightFileError(
            f"{path!r} names an unknown {what} {name!r}; expected one of {', '.join(classes)}."
        )
    return classes[name]


def load_model(path):
    """A built (and, if it was, compiled) Sequential model from a file written by model.save."""
    import layers
    import optim
    from engine.model import Sequential

    # The layers a model file may name: the public layer classes, never the abstract base.
    layer_classes = {name: getattr(layers, name) for name in layers.__all__ if name != "Layer"}
    path = _as_path(path)
    config, arrays = _read(path)
    if config.get("kind") != "model":
        raise WeightFileError(
            f"{path!r} holds weights only; build the model and call load_weights."
        )
    try:
        stack = []
        for entry in config["model"]["layers"]:
            cls = _known(path, "layer", entry["class_name"], layer_classes)
            if not isinstance(entry["config"], dict):
                raise TypeError(f"the config of layer {cls.__name__!r} is not a mapping")
            layer_config = dict(entry["config"])
            layer_config.pop("name", None)  # fresh names avoid clashes with layers already made
            stack.append(cls(**layer_config))
        model = Sequential(stack)
        model.build(config["input_shape"])
        model.set_weights(_weights_from(arrays, path))
        if "compile" in config:
            compiled = config["compile"]
            optimizer_cls = _known(
                path,
                "optimizer",
                compiled["optimizer"]["class_name"],
                {cls.__name__: cls for cls in optim.OPTIMIZERS.values()},
            )
            loss_cls = _known(
                path,
                "loss",
                compiled["loss"]["class_name"],
                {cls.__name__: cls for cls in losses.LOSSES.values()},
            )
            model.compile(
                optimizer=optimizer_cls(**compiled["optimizer"]["config"]),
                loss=loss_cls(**compiled["loss"]["config"]),
                metrics=compiled["metrics"],
            )
            state = {
                k[len("optimizer/") :]: v for k, v in arrays.items() if k.startswith("optimizer/")
            }
            if any(key != "iterations" for key in state):
                model.optimizer.set_state(state, model.params)
            elif "iterations" in state:  # no slot arrays (plain SGD, or never trained)
                model.optimizer.iterations = int(state["iterations"])
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
