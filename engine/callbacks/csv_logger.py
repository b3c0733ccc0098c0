"""CSVLogger, as keras.callbacks.CSVLogger (keras/src/callbacks/csv_logger.py)."""

import collections
import csv
import os

from engine import distribute
from engine.callbacks.callback import Callback


class CSVLogger(Callback):
    """Write one row per epoch to the CSV file ``filename``: the epoch (0-based) and every
    logged value, columns in sorted order (val_ columns too, 'NA' when an epoch has none),
    the file Keras writes. ``append`` adds to an existing file (its header kept).
    In a distributed run (engine.distribute) rank 0 alone writes it."""

    def __init__(self, filename, separator=",", append=False):
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"CSVLogger filename must be a path, got {filename!r}.")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger separator must be one character, got {separator!r}.")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self.writer = None
        self.csv_file = None

    def on_train_begin(self, logs=None):
        distribute.on_chief(self._open)

    def _open(self):
        folder = os.path.dirname(os.path.abspath(self.filename))
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"CSVLogger cannot write {self.filename!r}: the folder {folder!r} does not exist."
            )
        header = True
        if self.append and os.path.isfile(self.filename):
            with open(self.filename) as f:
                header = not f.readline()
        self._close()
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")
        self.append_header, self.keys, self.writer = header, None, None

    def on_epoch_end(self, epoch, logs=None):
        distribute.on_chief(lambda: self._write(epoch, logs or {}))

    def _write(self, epoch, logs):
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        if self.writer is None:

            class Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(
                self.csv_file, fieldnames=["epoch", *self.keys], dialect=Dialect
            )
            if self.append_header:
                self.writer.writeheader()
        row = collections.OrderedDict({"epoch": epoch})
        row.update((key, _cell(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _cell(value):
    """A value as Keras writes it: lists as '"[a, b]"', everything else as it is."""
    if isinstance(value, (list, tuple)):
        return f'"[{", ".join(map(str, value))}]"'
    return value
