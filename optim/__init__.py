"""Optimizers with Keras 3's defaults and update formulas."""

from optim.adagrad import Adagrad
from optim.adam import Adam
from optim.optimizer import Optimizer
from optim.rmsprop import RMSprop
from optim.sgd import SGD

OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier):
    """An Optimizer from an instance or a Keras name ('adam', 'sgd', 'rmsprop', 'adagrad')."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(
        f"Unknown optimizer {identifier!r}; expected an Optimizer instance or one of "
        f"{', '.join(OPTIMIZERS)}."
    )


__all__ = ["SGD", "Adam", "RMSprop", "Adagrad", "Optimizer", "get", "OPTIMIZERS"]
