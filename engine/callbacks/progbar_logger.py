"""ProgbarLogger: what fit, evaluate and predict print, as Keras 3's progress bar
(keras/src/callbacks/progbar_logger.py, keras/src/utils/progbar.py).

verbose=1: in a terminal a live tqdm bar while the epoch runs; when it ends the bar
gives way to the line Keras leaves, e.g.

    Epoch 3/15
    422/422 ━━━━━━━━━━━━━━━━━━━━ 5s 10ms/step - accuracy: 0.9801 - loss: 0.0652 - val_accuracy: ...

the epoch's time (validation included), the time per step (the first, which pays for
warming up, left out, as Keras) and the values in Keras's order (sorted by name; a
learning_rate last). When the output is not a terminal (a log file) there is no live
bar, only these lines. verbose=2: the same without the bar, '422/422 - 5s - 10ms/step -
...'. The "Epoch k/n" line is printed when fit runs more than one epoch, as Keras does.
"""

import sys
import time

from tqdm.auto import tqdm

from engine.callbacks.callback import Callback

WIDTH = 20  # the bar's width in characters, Keras's


class ProgbarLogger(Callback):
    def __init__(self):
        self.verbose, self.epochs, self.target = 1, 1, None
        self._in_fit = False
        self._bar = None

    def set_params(self, params):
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    # -- hooks ----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._in_fit = True  # validation inside fit prints nothing of its own

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self._start()

    def on_train_batch_end(self, batch, logs=None):
        self._step(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finish(logs)

    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._start()

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit:
            self._step(batch, logs)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self._finish(logs)

    def on_predict_begin(self, logs=None):
        self._start()

    def on_predict_batch_end(self, batch, logs=None):
        self._step(batch, None)

    def on_predict_end(self, logs=None):
        self._finish(None)

    # -- the bar and the closing line -------------------------------------------------

    def _start(self):
        self._started = time.perf_counter()
        self._after_first = None
        self._seen = 0
        if self.verbose == 1 and interactive():
            self._bar = tqdm(
                total=self.target,
                unit="step",
                leave=False,
                dynamic_ncols=True,
                file=sys.stdout,
            )

    def _step(self, batch, logs):
        self._seen = batch + 1
        if self._after_first is None:
            self._after_first = time.perf_counter()
        if self._bar is not None and self._bar.update(1) and _read_back(logs):
            # Formatting costs, so only when tqdm has just redrawn; it shows next time.
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)

    def _finish(self, logs):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if not self.verbose:
            return
        now = time.perf_counter()
        target = self.target if self.target is not None else self._seen
        seen = self._seen
        if seen > 1 and self._after_first is not None:
            per_step = (now - self._after_first) / (seen - 1)
        else:
            per_step = (now - self._started) / max(seen, 1)
        values = "".join(f" - {k}: {_number(v)}" for k, v in keras_order(logs or {}))
        print(closing_line(seen, target, now - self._started, per_step, self.verbose) + values)


def _read_back(logs):
    """True for logs of floats: on the GPU only the steps that synced have them, and reading
    device values at other steps would wait for the device."""
    return bool(logs) and isinstance(next(iter(logs.values())), float)


def interactive():
    """True where a live bar can redraw itself: a terminal, or a Jupyter kernel."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def closing_line(seen, target, elapsed, per_step, verbose):
    """'422/422 ━━━━━━━━━━━━━━━━━━━━ 5s 10ms/step' (verbose=1) or '422/422 - 5s - 10ms/step'
    (verbose=2); a stopped epoch's bar shows what was done."""
    count = f"{seen:>{len(str(target))}d}/{target}"
    if verbose == 2:
        return f"{count} - {elapsed:.0f}s - {_per_step(per_step)}"
    done = WIDTH * seen // target if target else WIDTH
    bar = _glyph("━") * done + _glyph("─") * (WIDTH - done)
    return f"{count} {bar} {elapsed:.0f}s {_per_step(per_step)}"


def keras_order(logs):
    """The (name, value) pairs as Keras prints them: sorted by name, learning_rate last."""
    return sorted(logs.items(), key=lambda item: (item[0] == "learning_rate", item[0]))


def _per_step(seconds):
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _number(value):
    value = float(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _glyph(char):
    """The bar's character, or '=' / '.' where the output cannot encode it (a text stream
    without an encoding, such as io.StringIO, holds any character)."""
    encoding = getattr(sys.stdout, "encoding", None)
    try:
        char.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return "=" if char == "━" else "."
    return char
