"""Learning-rate schedules, as keras.optimizers.schedules: any optimizer takes one as its
``learning_rate``.

    schedule = ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96)
    optimizer = SGD(learning_rate=schedule)
    optimizer.learning_rate      # schedule(optimizer.iterations): the next step's rate

A schedule maps the number of optimizer steps done (0 before the first) to a Python
float, with Keras's formulas (keras/src/optimizers/schedules/learning_rate_schedule.py).
It keeps no state: an optimizer saved and loaded resumes it from its step count.
"""

import math

from engine.utils import check_number, is_int


class LearningRateSchedule:
    """Base class: ``__call__(step) -> float`` and ``get_config()``."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _steps(name, value, low_open=True):
    """A step count: a number > 0 (>= 0 when not low_open), kept an int when given one."""
    checked = check_number(name, value, low=0, low_open=low_open)
    return int(value) if is_int(value) else checked


class ExponentialDecay(LearningRateSchedule):
    """initial_learning_rate * decay_rate ** (step / decay_steps); with staircase, the
    exponent is floored (the rate drops every decay_steps steps)."""

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase=False,
        name="ExponentialDecay",
    ):
        self.initial_learning_rate = check_number(
            "initial_learning_rate", initial_learning_rate, low=0
        )
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.decay_rate = check_number("decay_rate", decay_rate, low=0)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <=
    boundaries[i], values[-1] after the last boundary."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise TypeError(
                "PiecewiseConstantDecay takes lists: boundaries (steps) and values (rates), "
                f"got boundaries={boundaries!r}, values={values!r}."
            )
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                "PiecewiseConstantDecay needs one more value than boundaries, got "
                f"{len(boundaries)} boundaries and {len(values)} values."
            )
        boundaries = [_steps(f"boundaries[{i}]", b, False) for i, b in enumerate(boundaries)]
        if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(
                f"PiecewiseConstantDecay boundaries must increase, got {boundaries!r}."
            )
        self.boundaries = boundaries
        self.values = [check_number(f"values[{i}]", v, low=0) for i, v in enumerate(values)]
        self.name = name

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay from the initial rate (or, with warm-up, from warmup_target) to alpha
    times it over decay_steps; with warmup_target, first a linear warm-up from
    initial_learning_rate to warmup_target over warmup_steps."""

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        alpha=0.0,
        name="CosineDecay",
        warmup_target=None,
        warmup_steps=0,
    ):
        self.initial_learning_rate = check_number(
            "initial_learning_rate", initial_learning_rate, low=0
        )
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.alpha = check_number("alpha", alpha, 0, 1)
        self.name = name
        self.warmup_target = (
            None if warmup_target is None else check_number("warmup_target", warmup_target, low=0)
        )
        self.warmup_steps = _steps("warmup_steps", warmup_steps, False)

    def _decay(self, step, decay_from):
        cosine = 0.5 * (1.0 + math.cos(math.pi * (step / self.decay_steps)))
        return decay_from * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * (step / self.warmup_steps) + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class InverseTimeDecay(LearningRateSchedule):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps); with staircase,
    step / decay_steps is floored."""

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase=False,
        name="InverseTimeDecay",
    ):
        self.initial_learning_rate = check_number(
            "initial_learning_rate", initial_learning_rate, low=0
        )
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.decay_rate = check_number("decay_rate", decay_rate, low=0)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1 + self.decay_rate * p)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


SCHEDULES = {
    cls.__name__: cls
    for cls in (ExponentialDecay, PiecewiseConstantDecay, CosineDecay, InverseTimeDecay)
}


def serialize(schedule):
    """A schedule as config data: {"class_name": ..., "config": ...}."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(entry):
    """The schedule serialize() described; an unknown class name is a ValueError listing
    the known ones."""
    name = entry.get("class_name") if isinstance(entry, dict) else None
    if name not in SCHEDULES:
        raise ValueError(
            f"Unknown learning-rate schedule {name!r}; expected one of {', '.join(SCHEDULES)}."
        )
    return SCHEDULES[name].from_config(entry["config"])


__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "CosineDecay",
    "InverseTimeDecay",
    "serialize",
    "deserialize",
]
