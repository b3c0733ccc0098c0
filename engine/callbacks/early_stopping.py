"""EarlyStopping, as keras.callbacks.EarlyStopping (keras/src/callbacks/early_stopping.py)."""

from engine.callbacks.monitor_callback import MonitorCallback, non_negative_int
from engine.distribute import print_on_chief


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    An epoch improves when its value beats the best by more than ``min_delta`` (and, with
    ``baseline``, the wait only restarts once the baseline is beaten too). Epochs before
    ``start_from_epoch`` are ignored. With ``restore_best_weights`` the model gets the
    weights of the best epoch back when training ends. ``stopped_epoch`` and
    ``best_epoch`` are 0-based, as Keras's.
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        super().__init__(monitor, mode, baseline=baseline, min_delta=min_delta)
        self.patience = non_negative_int(patience, "EarlyStopping patience")
        self.start_from_epoch = non_negative_int(start_from_epoch, "EarlyStopping start_from_epoch")
        self.verbose = verbose
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # The same instance may serve several fit calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None  # as Keras: the baseline only decides when the wait restarts
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = (logs or {}).get(self.monitor)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # until one is better: these
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # The wait restarts only when the baseline is beaten too.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_on_chief(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_on_chief(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)
