"""ModelCheckpoint, as keras.callbacks.ModelCheckpoint."""

import math
import os

import numpy as np

from engine import distribute
from engine.callbacks.callback import Callback
from engine.distribute import print_on_chief


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) after every epoch, or only when ``monitor`` improves.

    ``filepath`` may hold ``{epoch}`` and log names, e.g. 'ckpt-{epoch:02d}-{val_loss:.3f}.npz'.
    Every save is atomic: an interrupted save leaves the previous file intact. In a
    distributed run (engine.distribute) rank 0 alone writes, and every rank goes on once
    the file is there, so any rank can load it.
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        verbose=0,
    ):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"Unknown mode {mode!r}; expected 'auto', 'min' or 'max'.")
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint filepath must be a path, got {filepath!r}.")
        if not isinstance(monitor, str):
            raise TypeError(f"ModelCheckpoint monitor must be a log name, got {monitor!r}.")
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.better = np.greater if mode == "max" else np.less
        self.best = -math.inf if mode == "max" else math.inf
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        # Catch a typo in monitor or filepath before the first epoch, not after it.
        names = (self.params or {}).get("metrics")
        if names is None:
            return
        if self.save_best_only and self.monitor not in names:
            raise ValueError(
                f"ModelCheckpoint monitors {self.monitor!r}, which fit does not log; "
                f"available: {', '.join(names)}."
            )
        self._path(0, dict.fromkeys(names, 0.0))

    def _path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as exc:
            problem = f"it uses {{{exc.args[0]}}}, which fit does not log"
        except IndexError:
            problem = "it has a positional field such as {} or {0}"
        except (ValueError, AttributeError, TypeError) as exc:
            problem = f"its format is invalid: {exc}"
        raise ValueError(
            f"ModelCheckpoint filepath {self.filepath!r} cannot be filled in: {problem}; "
            f"it may use {{epoch}} and the logged values: {', '.join(logs)}."
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                raise ValueError(
                    f"ModelCheckpoint monitors {self.monitor!r}, which fit does not log; "
                    f"available: {', '.join(logs)}."
                )
            if not self.better(current, self.best):
                return
            self.best = current
        path = self._path(epoch, logs)
        save = self.model.save_weights if self.save_weights_only else self.model.save
        distribute.on_chief(lambda: save(path))  # distributed: rank 0 writes, all wait for it
        if self.verbose:
            print_on_chief(f"Epoch {epoch + 1}: saved model to {path}")
