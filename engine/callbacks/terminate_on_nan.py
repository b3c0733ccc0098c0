"""TerminateOnNaN, as keras.callbacks.TerminateOnNaN."""

import math
import numbers

from engine.callbacks.callback import Callback
from engine.distribute import print_on_chief


class TerminateOnNaN(Callback):
    """Stop training when a step's loss is NaN or infinite (``raise_error``: raise a
    RuntimeError instead).

    fit checks every loss it reads (every step on the CPU) and puts the model back to its
    last finite weights; with this callback it then ends the epoch and stops instead of
    raising NonFiniteLossError, as Keras's TerminateOnNaN stops training.
    """

    def __init__(self, raise_error=False):
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        # A loss still on the device (a GPU step between fit's checks) is left to fit's
        # check: reading it here would wait for the device at every step.
        if not isinstance(loss, numbers.Real) or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                "Terminating training immediately."
            )
        print_on_chief(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True
