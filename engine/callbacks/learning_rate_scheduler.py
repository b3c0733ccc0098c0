"""LearningRateScheduler, as keras.callbacks.LearningRateScheduler."""

import inspect
import numbers

from engine.callbacks.callback import Callback
from engine.distribute import print_on_chief


class LearningRateScheduler(Callback):
    """At the start of every epoch, set the optimizer's learning rate to
    ``schedule(epoch, lr)`` (or ``schedule(epoch)`` for a one-argument function), epoch
    0-based and lr the current rate. Adds 'learning_rate' to every epoch's logs."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(
                f"LearningRateScheduler needs a function schedule(epoch, lr), got {schedule!r}."
            )
        self.schedule = schedule
        self.verbose = verbose

    def _takes_rate(self):
        try:
            inspect.signature(self.schedule).bind(0, 0.0)
        except TypeError:
            return False
        except ValueError:  # no signature to read: both arguments, Keras's first try
            return True
        return True

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if self._takes_rate():
            rate = self.schedule(epoch, float(optimizer.learning_rate))
        else:
            rate = self.schedule(epoch)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise ValueError(
                f"LearningRateScheduler: the schedule must return a number, got {rate!r} "
                f"for epoch {epoch}."
            )
        optimizer.learning_rate = rate
        if self.verbose > 0:
            print_on_chief(
                f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {rate}."
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
