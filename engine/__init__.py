"""xpcnn's engine: the backend switch, Sequential, losses, metrics, callbacks and data sets.

import engine
from engine import Sequential, backend, losses
model = engine.load_model("model.npz")
"""

from engine import backend, callbacks, initializers, losses, metrics, utils
from engine.model import NonFiniteLossError, Sequential
from engine.saving import WeightFileError, load_model

__all__ = [
    "NonFiniteLossError",
    "Sequential",
    "WeightFileError",
    "backend",
    "callbacks",
    "initializers",
    "load_model",
    "losses",
    "metrics",
    "utils",
]
