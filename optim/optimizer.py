"""The optimizer base: slot variables per parameter, a step counter, in-place updates.

Subclasses name their ``slot_names`` and implement ``update(param, grad, slots, lr)``
with Keras 3's update formulas (keras/src/optimizers/), written in place so the
parameters the layers hold stay the same arrays.

Every optimizer takes Keras 3's common arguments, applied in Keras's order
(keras/src/optimizers/base_optimizer.py, _backend_apply_gradients): the gradients are
clipped (``clipnorm``: each to that L2 norm; ``global_clipnorm``: all together;
``clipvalue``: elementwise), then each parameter decays (``weight_decay``:
w -= w * weight_decay * lr), then the update runs. ``learning_rate`` is a number or a
schedule (optim/schedules.py) of the step count; it can be read and set at any time.
"""

import numpy as np

from engine import backend
from engine.utils import check_number
from optim import schedules

_CLIPS = ("clipnorm", "clipvalue", "global_clipnorm")


def _learning_rate(value):
    """A checked learning rate: a positive number, or a schedule as it is."""
    if isinstance(value, schedules.LearningRateSchedule):
        return value
    return check_number("learning_rate", value, low=0, low_open=True)


class Optimizer:
    slot_names = ()

    def __init__(
        self,
        learning_rate,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
    ):
        self._learning_rate = _learning_rate(learning_rate)
        self.weight_decay = (
            None if weight_decay is None else check_number("weight_decay", weight_decay, low=0)
        )
        given = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        set_clips = [name for name, value in given.items() if value is not None]
        if len(set_clips) > 1:
            raise ValueError(
                f"Only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                f"{', '.join(f'{name}={given[name]!r}' for name in set_clips)}."
            )
        for name, value in given.items():
            checked = None if value is None else check_number(name, value, low=0, low_open=True)
            setattr(self, name, checked)
        self.iterations = 0  # completed steps, as Keras's optimizer.iterations
        self.slots = None  # one dict name -> array per parameter, built on the first step

    # -- the learning rate ------------------------------------------------------------

    @property
    def learning_rate(self):
        """The rate the next step uses: the number, or the schedule at ``iterations``."""
        rate = self._learning_rate
        if isinstance(rate, schedules.LearningRateSchedule):
            return rate(self.iterations)
        return rate

    @learning_rate.setter
    def learning_rate(self, value):
        """A new rate (ReduceLROnPlateau, LearningRateScheduler) or a new schedule; as in
        Keras, a schedule given to the constructor cannot be replaced by a number."""
        value = _learning_rate(value)
        if not isinstance(value, schedules.LearningRateSchedule) and isinstance(
            self._learning_rate, schedules.LearningRateSchedule
        ):
            raise TypeError(
                f"{type(self).__name__} was created with a LearningRateSchedule as its "
                "learning_rate, so the rate cannot be set to a number; create the optimizer "
                "with a number as learning_rate to change it during training."
            )
        self._learning_rate = value

    # -- a step -----------------------------------------------------------------------

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
        if not (self.clipnorm is None and self.clipvalue is None and self.global_clipnorm is None):
            grads = self._clipped(grads)
        rate = self._learning_rate  # as the learning_rate property, without its call
        lr = rate(self.iterations) if isinstance(rate, schedules.LearningRateSchedule) else rate
        if self.weight_decay:
            for param in params:
                param -= param * self.weight_decay * lr
        self._update_params(grads, params, lr)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars):
        """apply() from (gradient, variable) pairs, as Keras's apply_gradients."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def _update_params(self, grads, params, lr):
        """The update of every parameter, after clipping and weight decay."""
        for param, grad, slots in zip(params, grads, self.slots):
            self.update(param, grad, slots, lr)

    def update(self, param, grad, slots, lr):
        raise NotImplementedError

    def _clipped(self, grads):
        """The gradients clipped as Keras's _clip_gradients (new arrays)."""
        if self.clipnorm is not None:
            return [_clip_by_norm(g, self.clipnorm) for g in grads]
        if self.global_clipnorm is not None:
            return _clip_by_global_norm(grads, self.global_clipnorm)
        v = self.clipvalue
        return [backend.get_array_module(g).clip(g, -v, v) for g in grads]

    # -- state --------------------------------------------------------------------------

    def slot_arrays(self):
        """Arrays that together hold every slot, for snapshots (one per slot here)."""
        return [a for s in self.slots or [] for a in s.values()]

    def get_config(self):
        """The constructor's arguments: a schedule as its config, unset clipping and weight
        decay left out."""
        rate = self._learning_rate
        config = {
            "learning_rate": schedules.serialize(rate)
            if isinstance(rate, schedules.LearningRateSchedule)
            else rate
        }
        for name in ("weight_decay", *_CLIPS):
            if getattr(self, name) is not None:
                config[name] = getattr(self, name)
        return config

    @classmethod
    def from_config(cls, config):
        """The optimizer get_config() described (a schedule rebuilt from its config)."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

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
        config = {**self.get_config(), "learning_rate": self._learning_rate}
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{type(self).__name__}({args})"


def _clip_by_norm(g, clipnorm):
    """g * clipnorm / max(||g||, clipnorm): Keras's _clip_by_norm (a zero g stays zero)."""
    xp = backend.get_array_module(g)
    norm = xp.sqrt((g * g).sum())
    return g * clipnorm / xp.maximum(norm, clipnorm)


def _clip_by_global_norm(grads, clipnorm):
    """Every gradient scaled by clipnorm / max(global norm, clipnorm), Keras's formula
    (a non-finite norm gives NaN gradients, so fit's safety net sees the step fail)."""
    xp = backend.get_array_module(grads[0])
    norm = xp.sqrt(xp.stack([(g * g).sum() for g in grads]).sum())
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero norm: 1 / 0 = inf, on purpose
        scale = clipnorm * xp.minimum(1.0 / norm, 1.0 / clipnorm)
    scale = scale + (norm - norm)
    return [g * scale for g in grads]
