"""Model and weight files: one .npz each, read with allow_pickle=False, written atomically.

A model file holds:
    __config__        the architecture, loss, metrics and optimizer as UTF-8 JSON bytes
    weight/<i>        the i-th array of get_weights()
    optimizer/<key>   the optimizer's step count and slot arrays
A weights file holds only weight/<i> and a small __config__ naming the layers,
so loading into a different architecture is refused before anything changes.
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


def _encode(config):
    return np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)


def _write(path, arrays):
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def _read(path):
    """All arrays of an .npz file, or a WeightFileError naming the file and the problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such weights or model file: {path!r}.")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        config = json.loads(bytes(arrays.pop("__config__")).decode("utf-8"))
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise WeightFileError(
                f"{path!r} holds Python objects (pickle); refused: files are data, never code."
            ) from None
        raise WeightFileError(f"{path!r} is not a valid xpcnn file: {exc}.") from None
    except (KeyError, OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise WeightFileError(
            f"{path!r} is not a valid xpcnn file (truncated or corrupt?): {exc}."
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise WeightFileError(f"{path!r} is not an xpcnn {FORMAT} file.")
    return config, arrays


def _weights_from(arrays, path):
    weights, i = [], 0
    while f"weight/{i}" in arrays:
        weights.append(arrays[f"weight/{i}"])
        i += 1
    for w in weights:
        if w.dtype.kind != "f":
            raise WeightFileError(
                f"{path!r}: weights must be floating point, found dtype {w.dtype}."
            )
    return weights


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
    config, arrays = _read(path)
    if config.get("kind") not in ("weights", "model"):
        raise WeightFileError(f"{path!r} holds neither weights nor a model.")
    model._require_built("load_weights")
    signature = config.get("layers") if config["kind"] == "weights" else None
    if signature is not None and signature != _layer_signature(model):
        raise WeightFileError(
            f"{path!r} was saved from a different architecture: {signature} "
            f"does not match this model's {_layer_signature(model)}."
        )
    try:
        model.set_weights(_weights_from(arrays, path))
    except ValueError as exc:
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


def load_model(path):
    """A built (and, if it was, compiled) Sequential model from a file written by model.save."""
    import layers
    import optim
    from engine.model import Sequential

    config, arrays = _read(path)
    if config.get("kind") != "model":
        raise WeightFileError(
            f"{path!r} holds weights only; build the model and call load_weights."
        )
    try:
        stack = []
        for entry in config["model"]["layers"]:
            cls = getattr(layers, entry["class_name"], None)
            if not (isinstance(cls, type) and issubclass(cls, layers.Layer)):
                raise WeightFileError(f"{path!r} names an unknown layer {entry['class_name']!r}.")
            layer_config = dict(entry["config"])
            layer_config.pop("name", None)  # fresh names avoid clashes with layers already made
            stack.append(cls(**layer_config))
        model = Sequential(stack)
        model.build(config["input_shape"])
        model.set_weights(_weights_from(arrays, path))
        if "compile" in config:
            compiled = config["compile"]
            optimizer_cls = optim.OPTIMIZERS[compiled["optimizer"]["class_name"].lower()]
            loss_cls = losses.LOSSES[getattr(losses, compiled["loss"]["class_name"]).name]
            model.compile(
                optimizer=optimizer_cls(**compiled["optimizer"]["config"]),
                loss=loss_cls(**compiled["loss"]["config"]),
                metrics=compiled["metrics"],
            )
            state = {
                k[len("optimizer/") :]: v for k, v in arrays.items() if k.startswith("optimizer/")
            }
            if len(state) > 1:
                model.optimizer.set_state(state, model.params)
    except (KeyError, TypeError, AttributeError) as exc:
        raise WeightFileError(f"{path!r} has an invalid model config: {exc!r}.") from None
    except ValueError as exc:
        if isinstance(exc, WeightFileError):
            raise
        raise WeightFileError(f"{path!r} does not describe a valid model: {exc}") from None
    return model
