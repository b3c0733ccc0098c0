"""Optimizers with Keras 3's defaults and update formulas, and learning-rate schedules
(``optim.schedules``, also ``engine.optimizers.schedules``)."""

from optim import schedules
from optim.adagrad import Adagrad
from optim.adam import Adam
from optim.adamax import Adamax
from optim.adamw import AdamW
from optim.nadam import Nadam
from optim.optimizer import Optimizer
from optim.rmsprop import RMSprop
from optim.sgd import SGD

OPTIMIZERS = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "nadam": Nadam,
    "adamax": Adamax,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def get(identifier):
    """An Optimizer from an instance or a Keras name ('adam', 'sgd', 'adamw', ...)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(
        f"Unknown optimizer {identifier!r}; expected an Optimizer instance or one of "
        f"{', '.join(OPTIMIZERS)}."
    )


__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Nadam",
    "Adamax",
    "RMSprop",
    "Adagrad",
    "Optimizer",
    "get",
    "OPTIMIZERS",
    "schedules",
]
