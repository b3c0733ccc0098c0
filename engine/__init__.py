"""xpcnn's engine: the backend switch, Sequential, losses, metrics, callbacks and data sets.

import engine
from engine import Sequential, backend, losses
model = engine.load_model("model.npz")
"""

from engine import backend, callbacks, initializers, losses, metrics, utils
from engine.backend import BackendUnavailableError
from engine.model import Sequential
from engine.saving import WeightFileError, WeightFileNotFoundError, load_model
from engine.trainer import NonFiniteLossError, NotCompiledError

__all__ = [
    "BackendUnavailableError",
    "NonFiniteLossError",
    "NotCompiledError",
    "Sequential",
    "WeightFileError",
    "WeightFileNotFoundError",
    "backend",
    "callbacks",
    "initializers",
    "load_model",
    "losses",
    "metrics",
    "utils",
]
