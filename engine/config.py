"""``engine.config``, as ``keras.config``: the float type and the backend."""

from engine.backend import backend_name as backend
from engine.backend import floatx, set_backend, set_floatx

__all__ = ["backend", "floatx", "set_backend", "set_floatx"]
