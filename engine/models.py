"""The model classes and model files, as ``keras.models``."""

from engine.model import Model
from engine.saving import load_model, save_model
from engine.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model", "save_model"]
