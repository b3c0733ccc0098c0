"""xpcnn's engine, and the Keras namespace: a Keras program runs with its imports changed
to ``import engine as keras`` or ``from engine import datasets, layers, models``.

    import engine
    from engine import Input, Model, Sequential, layers
    model = engine.load_model("model.npz")

The names that need the layers (Model, Sequential, Input, layers, models, load_model,
...) are imported on first use: the layers import the engine's core modules, so the
engine cannot import them while it starts.
"""

import importlib

from engine import backend, callbacks, config, initializers, losses, metrics, regularizers, utils
from engine.backend import BackendUnavailableError
from engine.utils import to_categorical

_LAZY = {
    "NonFiniteLossError": ("engine.trainer", "NonFiniteLossError"),
    "NotCompiledError": ("engine.trainer", "NotCompiledError"),
    "Model": ("engine.model", "Model"),
    "Sequential": ("engine.sequential", "Sequential"),
    "Input": ("layers.input_layer", "Input"),
    "InputLayer": ("layers.input_layer", "InputLayer"),
    "load_model": ("engine.models", "load_model"),
    "WeightFileError": ("engine.io_utils", "WeightFileError"),
    "WeightFileNotFoundError": ("engine.io_utils", "WeightFileNotFoundError"),
    "KerasFileError": ("engine.io_utils", "KerasFileError"),
    "layers": ("engine.layers", None),
    "models": ("engine.models", None),
    "optimizers": ("engine.optimizers", None),
    "datasets": ("engine.datasets", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])


__all__ = [
    "BackendUnavailableError",
    "backend",
    "callbacks",
    "config",
    "initializers",
    "losses",
    "metrics",
    "regularizers",
    "to_categorical",
    "utils",
    *_LAZY,
]
