"""The Callback base class and the CallbackList fit, evaluate and predict call, as Keras's
keras/src/callbacks/callback.py and callback_list.py.

fit calls, in order: on_train_begin; per epoch on_epoch_begin, per step
on_train_batch_begin / on_train_batch_end, then (validation) on_test_begin,
on_test_batch_begin / on_test_batch_end, on_test_end, and on_epoch_end; on_train_end.
evaluate calls the test hooks, predict the predict hooks. ``logs``, as in Keras:
on_train_batch_end gets the running means of the loss and metrics so far in the epoch
(floats where fit read them back: every step on the CPU, every 50th on the GPU; 0-d
device arrays at the other steps, so that a callback that does not read them costs no
device sync), on_test_batch_end the same for the evaluation (floats), on_epoch_end the
epoch's values (floats, val_ ones too), on_test_end the evaluation's, on_predict_batch_end
{"outputs": [...]}; the begin hooks get none.

Distributed (engine.distribute), every rank runs the callbacks: the float logs of fit are
the global batch's (reduced over the ranks, so every rank decides alike), the device
values between fit's checks and each evaluation batch's logs this rank's. Callbacks that
print or write files do it on rank 0 only.
"""

HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Callback:
    """Hooks called by fit, evaluate and predict; ``self.model`` is set before they start.

    ``self.params`` (set by fit, as Keras) holds 'epochs', 'steps', 'verbose' and
    'metrics': the names of the values fit will log each epoch.
    """

    model = None
    params = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        """Keras's older name of on_train_batch_begin, which calls it."""

    def on_batch_end(self, batch, logs=None):
        """Keras's older name of on_train_batch_end, which calls it."""

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass


_ALIASES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


def overrides(callback, hook):
    """True when ``callback`` does something in ``hook`` (its class or the instance, as
    LambdaCallback does, replaces the base's empty method)."""
    if hook in vars(callback):
        return True
    if getattr(type(callback), hook) is not getattr(Callback, hook):
        return True
    return hook in _ALIASES and overrides(callback, _ALIASES[hook])


class CallbackList:
    """Calls every callback's hook in order: ``callbacks.on_epoch_end(epoch, logs)``.

    Each hook calls only the callbacks that implement it, so a step pays nothing for the
    hooks nobody uses; ``listeners(hook)`` gives those bound methods, for the step loop.
    """

    def __init__(self, callbacks, model=None, params=None):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if model is not None:
                callback.set_model(model)
            if params is not None:
                callback.set_params(params)
        self._listeners = {
            hook: [getattr(c, hook) for c in self.callbacks if overrides(c, hook)] for hook in HOOKS
        }

    def listeners(self, hook):
        return self._listeners[hook]

    def __getattr__(self, hook):
        if hook not in HOOKS:
            raise AttributeError(f"CallbackList has no attribute {hook!r}")
        listeners = self._listeners[hook]

        def call(*args, **kwargs):
            for listener in listeners:
                listener(*args, **kwargs)

        return call
