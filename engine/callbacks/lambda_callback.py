"""LambdaCallback, as keras.callbacks.LambdaCallback."""

from engine.callbacks.callback import HOOKS, Callback


class LambdaCallback(Callback):
    """A callback made of functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs:
    print(epoch))``. Any hook may be given (on_test_end=..., ...), each taking the
    arguments that hook takes."""

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        for name, function in hooks.items():
            if name not in HOOKS:
                raise TypeError(
                    f"LambdaCallback got {name!r}, which is not a callback hook; the hooks are "
                    f"{', '.join(HOOKS)}."
                )
            if function is not None and not callable(function):
                raise TypeError(f"LambdaCallback {name} must be a function, got {function!r}.")
            if function is not None:
                setattr(self, name, function)
