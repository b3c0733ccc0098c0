"""ReduceLROnPlateau, as keras.callbacks.ReduceLROnPlateau
(keras/src/callbacks/reduce_lr_on_plateau.py)."""

import numpy as np

from engine import utils
from engine.callbacks.monitor_callback import MonitorCallback, non_negative_int
from engine.distribute import print_on_chief


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the optimizer's learning rate by ``factor`` when ``monitor`` has not improved
    (by more than ``min_delta``) for ``patience`` epochs, never below ``min_lr``; then wait
    ``cooldown`` epochs before counting again. Adds 'learning_rate' to every epoch's logs
    (the rate the epoch ended with), as Keras does."""

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.factor = utils.check_number("ReduceLROnPlateau factor", factor, 0, 1, True, True)
        self.min_lr = utils.check_number("ReduceLROnPlateau min_lr", min_lr, low=0)
        self.patience = non_negative_int(patience, "ReduceLROnPlateau patience")
        self.cooldown = non_negative_int(cooldown, "ReduceLROnPlateau cooldown")
        self.verbose = verbose
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, optimizer, epoch):
        old = float(optimizer.learning_rate)
        if not old > np.float32(self.min_lr):  # Keras compares with float32(min_lr)
            return False
        new = max(old * self.factor, self.min_lr)
        optimizer.learning_rate = new
        if self.verbose > 0:
            print_on_chief(
                f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}."
            )
        return True
