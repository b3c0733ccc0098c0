"""``engine.layers``: the top-level ``layers`` package seen from the engine, as Keras's
``keras.layers`` (the same classes, not copies)."""

from layers import *  # noqa: F403
from layers import __all__  # noqa: F401
