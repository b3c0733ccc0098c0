"""The optimizer base: slot variables per parameter, a step counter, in-place updates.

Subclasses name their ``slot_names`` and implement ``update(param, grad, slots, lr)``
with Keras 3's update formulas (keras/src/optimizers/), written in place so the
parameters the layers hold stay the same arrays.
"""

import numbers

import numpy as np

from engine import backend


def check_number(name, value, low=None, high=None, high_open=False, low_open=False):
    """``value`` as a float after checking it is a finite real number in [low, high].

    Python and NumPy numbers are accepted (not bools); ``low_open``/``high_open``
    exclude the bound. The ValueError names the argument, the value and the range.
    """
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or (low is not None and (value <= low if low_open else value < low))
        or (high is not None and (value >= high if high_open else value > high))
    ):
        if low is not None and high is not None:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            expected = f"a number in {left}{low}, {high}{right}"
        elif low == 0 and low_open:
            expected = "a positive finite number"
        elif low is not None:
            expected = f"a finite number {'>' if low_open else '>='} {low}"
        else:
            expected = "a finite number"
        raise ValueError(f"{name} must be {expected}, got {value!r}.")
    return float(value)


class Optimizer:
    slot_names = ()

    def __init__(self, learning_rate):
        self.learning_rate = check_number("learning_rate", learning_rate, low=0, low_open=True)
        self.iterations = 0  # completed steps, as Keras's optimizer.iterations
        self.slots = None  # one dict name -> array per parameter, built on the first step

    def build(self, params):
        """Create the slot arrays (momentums, ...) for a list of parameters."""
        self.slots = [
            {name: self.initial_slot(name, p) for name in self.slot_names} for p in params
        ]

    def initial_slot(self, name, param):
        xp = backend.get_array_module(param)
        return xp.zeros_like(param)

    def apply(self, grads, params):
        """One step: update every parameter in place from its gradient (Keras's argument
        order: gradients first, then the variables)."""
        if self.slots is None:
            self.build(params)
        if len(self.slots) != len(params):
            raise ValueError(
                f"{type(self).__name__} was built for {len(self.slots)} parameters, "
                f"got {len(params)}; after changing which layers are trainable, compile "
                "the model again with a new optimizer."
            )
        for param, grad, slots in zip(params, grads, self.slots):
            self.update(param, grad, slots, self.learning_rate)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars):
        """apply() from (gradient, variable) pairs, as Keras's apply_gradients."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def update(self, param, grad, slots, lr):
        raise NotImplementedError

    def slot_arrays(self):
        """Arrays that together hold every slot, for snapshots (one per slot here)."""
        return [a for s in self.slots or [] for a in s.values()]

    def get_config(self):
        return {"learning_rate": self.learning_rate}

    def get_state(self):
        """Step count and slot arrays as host arrays, for checkpoints."""
        state = {"iterations": np.asarray(self.iterations, dtype=np.int64)}
        for i, slots in enumerate(self.slots or []):
            for name, value in slots.items():
                state[f"{i}/{name}"] = backend.to_numpy(value)
        return state

    def set_state(self, state, params):
        """Restore get_state()'s output for these parameters (shapes are checked first)."""
        self.build(params)
        for i, slots in enumerate(self.slots):
            for name, value in slots.items():
                key = f"{i}/{name}"
                if key not in state or tuple(state[key].shape) != tuple(value.shape):
                    got = tuple(state[key].shape) if key in state else "nothing"
                    raise ValueError(
                        f"Optimizer state {key!r} should have shape {tuple(value.shape)}, "
                        f"got {got}."
                    )
        for i, slots in enumerate(self.slots):
            for name in slots:
                slots[name][...] = backend.to_device(state[f"{i}/{name}"], dtype=slots[name].dtype)
        self.iterations = int(state["iterations"])

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
