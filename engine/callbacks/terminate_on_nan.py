"""TerminateOnNaN, as keras.callbacks.TerminateOnNaN."""

import math

from engine.callbacks.callback import Callback


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
        if loss is None or math.isfinite(float(loss)):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {float(loss)}. "
                "Terminating training immediately."
            )
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True
