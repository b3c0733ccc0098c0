"""``engine.optimizers``: the top-level ``optim`` package seen from the engine, as Keras's
``keras.optimizers`` (the same classes, not copies)."""

from optim import *  # noqa: F403
from optim import __all__  # noqa: F401
