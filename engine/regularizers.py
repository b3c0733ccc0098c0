"""Weight regularizers with Keras's names and formulas: a penalty added to the loss.

    Dense(64, kernel_regularizer=regularizers.L2(1e-4))    # or "l2", as Keras

L1(l1)      l1 * sum(|w|)          gradient l1 * sign(w)
L2(l2)      l2 * sum(w^2)          gradient 2 * l2 * w
L1L2(l1, l2) both

As in Keras, the penalties are part of the loss fit minimises and shows; evaluate's loss
includes them too.
"""

import math

from engine import backend


class Regularizer:
    def __call__(self, w):
        """The penalty of weight ``w`` (a 0-d device array)."""
        raise NotImplementedError

    def gradient(self, w):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _factor(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    if value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _factor(l1, "l1"), _factor(l2, "l2")

    def __call__(self, w):
        xp = backend.get_array_module(w)
        penalty = xp.zeros((), dtype=w.dtype)
        if self.l1:
            penalty = penalty + self.l1 * xp.abs(w).sum()
        if self.l2:
            penalty = penalty + self.l2 * (w * w).sum()
        return penalty

    def gradient(self, w):
        xp = backend.get_array_module(w)
        grad = xp.zeros_like(w)
        if self.l1:
            grad += self.l1 * xp.sign(w)
        if self.l2:
            grad += (2 * self.l2) * w
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    """A Regularizer from an instance, a Keras name ('l1', 'l2', 'l1_l2'), a config entry
    {"class_name", "config"} (as saved), or None."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in REGULARIZERS:
        return REGULARIZERS[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in REGULARIZERS:
        return REGULARIZERS[identifier["class_name"]](**identifier.get("config", {}))
    raise ValueError(
        f"Unknown regularizer {identifier!r}; expected None, a Regularizer, or one of "
        "'l1', 'l2', 'l1_l2'."
    )


def serialize(regularizer):
    """A regularizer as config data (None stays None)."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
