"""History: what fit returns, as keras.callbacks.History."""

from engine.callbacks.callback import Callback


class History(Callback):
    """Records each epoch's logs: ``history.history['loss']`` is a list, one value per epoch."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
