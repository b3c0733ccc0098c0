"""MonitorCallback: the monitored value, its direction and min_delta, shared by
EarlyStopping and ReduceLROnPlateau (keras/src/callbacks/monitor_callback.py)."""

import numpy as np

from engine import utils
from engine.callbacks.callback import Callback


class MonitorCallback(Callback):
    """Watches ``monitor`` in the epoch logs; a value improves on the best one when it is
    better by more than ``min_delta``. ``mode`` 'min', 'max' or 'auto': from the name, as
    Keras (a loss goes down; a metric goes its own way, e.g. accuracy up)."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        name = type(self).__name__
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{name}: unknown mode {mode!r}; expected 'auto', 'min' or 'max'.")
        if not isinstance(monitor, str):
            raise TypeError(
                f"{name} monitor must be a log name such as 'val_loss', got {monitor!r}."
            )
        self.monitor = monitor
        self.mode = mode
        self.baseline = None if baseline is None else utils.check_number("baseline", baseline)
        self.best = self.baseline
        self.min_delta = abs(utils.check_number("min_delta", min_delta))
        self.monitor_op = None

    def on_train_begin(self, logs=None):
        # A typo in monitor fails before the first epoch, not silently after every one.
        names = (self.params or {}).get("metrics")
        if names is not None and self.monitor not in names:
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, which fit does not log; "
                f"available: {', '.join(names)}."
            )

    def _set_monitor_op(self):
        if self.mode != "auto":
            op = np.less if self.mode == "min" else np.greater
        else:
            op = self._auto_op()
        self.monitor_op = op
        if op is np.less:
            self.min_delta = -abs(self.min_delta)

    def _auto_op(self):
        name = self.monitor.removeprefix("val_")
        if name == "loss" or name.endswith("_loss"):
            return np.less
        compiled = getattr(self.model, "compiled_metrics", None)
        metric = compiled.metric_named(name) if compiled is not None else None
        direction = getattr(metric, "direction", None)
        if direction is None:
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r} with mode='auto', but "
                "whether it should go up or down is not known; pass mode='max' to keep the "
                "highest value or mode='min' for the lowest."
            )
        return np.greater if direction == "up" else np.less

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))


def non_negative_int(value, what):
    if not utils.is_int(value) or value < 0:
        raise ValueError(f"{what} must be an int >= 0, got {value!r}.")
    return int(value)
