"""Callbacks: the hooks fit, evaluate and predict call and the logs they pass, and each
Keras callback on scripted logs and in real fits (their parity with Keras's own is in
tests/keras/test_keras_fit.py)."""

import math

import numpy as np
import pytest

import engine
import optim
from engine import Sequential, losses, utils
from engine.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from layers import Dense


def dense_model(lr=0.1, metrics=("accuracy",)):
    utils.set_random_seed(0)
    model = Sequential([Dense(3, input_shape=(4,))])
    model.compile(
        optim.SGD(lr), losses.SparseCategoricalCrossentropy(from_logits=True), list(metrics)
    )
    return model


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype("float32"), rng.integers(0, 3, n)


class Recorder(Callback):
    """Every hook called, with its arguments."""

    def __init__(self):
        self.calls = []

    def _record(name):  # noqa: N805
        def hook(self, *args, logs=None):
            self.calls.append((name, *args, None if logs is None else dict(logs)))

        return hook

    for _name in engine.callbacks.callback.HOOKS:
        locals()[_name] = _record(_name)
    del _name


def names(calls):
    return [call[0] for call in calls]


def test_fit_calls_the_hooks_in_keras_order_with_keras_logs():
    x, y = data(8)
    recorder = Recorder()
    dense_model().fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        validation_data=(x[:4], y[:4]),
        callbacks=[recorder],
        verbose=0,
    )
    epoch = [
        "on_epoch_begin",
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_test_begin",
        "on_test_batch_begin",
        "on_test_batch_end",
        "on_test_end",
        "on_epoch_end",
    ]
    assert names(recorder.calls) == ["on_train_begin", *epoch, *epoch, "on_train_end"]
    batch_end = [c for c in recorder.calls if c[0] == "on_train_batch_end"]
    assert [c[1] for c in batch_end] == [0, 1, 0, 1]
    assert set(batch_end[0][2]) == {"loss", "accuracy"}  # running means, floats on the CPU
    assert all(isinstance(v, float) for v in batch_end[0][2].values())
    epoch_end = [c for c in recorder.calls if c[0] == "on_epoch_end"]
    assert [c[1] for c in epoch_end] == [0, 1]
    assert list(epoch_end[0][2]) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    test_end = [c for c in recorder.calls if c[0] == "on_test_end"][0]
    assert test_end[1] == {"loss": epoch_end[0][2]["val_loss"], "accuracy": test_end[1]["accuracy"]}
    assert recorder.calls[-1][1] == epoch_end[-1][2]  # on_train_end gets the last epoch's logs


def test_evaluate_and_predict_call_their_hooks():
    x, y = data(8)
    recorder = Recorder()
    model = dense_model()
    model.evaluate(x, y, batch_size=4, callbacks=[recorder], verbose=0)
    assert names(recorder.calls) == ["on_test_begin"] + [
        "on_test_batch_begin",
        "on_test_batch_end",
    ] * 2 + ["on_test_end"]
    recorder.calls.clear()
    outputs = model.predict(x, batch_size=4, callbacks=[recorder], verbose=0)
    assert names(recorder.calls) == ["on_predict_begin"] + [
        "on_predict_batch_begin",
        "on_predict_batch_end",
    ] * 2 + ["on_predict_end"]
    np.testing.assert_array_equal(recorder.calls[2][2]["outputs"][0], outputs[:4])


def test_the_old_batch_hook_names_still_work():
    ends = []

    class Old(Callback):
        def on_batch_end(self, batch, logs=None):
            ends.append(batch)

    x, y = data(8)
    dense_model().fit(x, y, batch_size=4, callbacks=[Old()], verbose=0)
    assert ends == [0, 1]


def test_a_callback_can_stop_training_mid_epoch():
    class StopAtStep2(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    x, y = data(16)
    model = dense_model()
    history = model.fit(x, y, batch_size=4, epochs=3, callbacks=[StopAtStep2()], verbose=0)
    assert model.optimizer.iterations == 2 and len(history.history["loss"]) == 1


# -- EarlyStopping ---------------------------------------------------------------------------


def run_monitor(callback, values, key="val_loss", model=None):
    """Feed the callback one epoch end per value; the epochs it ran (stopped after)."""
    model = model or dense_model()
    callback.set_model(model)
    callback.set_params({"metrics": ["loss", key]})
    model.stop_training = False
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"loss": 1.0, key: value})
        if model.stop_training:
            return epoch + 1
    return len(values)


@pytest.mark.parametrize(
    "kwargs, values, epochs",
    [
        ({}, [1.0, 0.9, 0.95, 0.8], 3),  # patience 0: the first epoch without progress
        ({"patience": 2}, [1.0, 0.9, 0.95, 0.96, 0.8], 4),
        ({"patience": 2}, [1.0, 0.9, 0.95, 0.85, 0.86, 0.87], 6),
        ({"min_delta": 0.1}, [1.0, 0.95, 0.7], 2),  # 0.05 better is no progress
        ({"monitor": "val_accuracy"}, [0.5, 0.6, 0.55], 3),  # auto: accuracy goes up
        ({"monitor": "val_accuracy", "mode": "min"}, [0.5, 0.6], 2),
        ({"start_from_epoch": 2}, [1.0, 1.1, 1.2, 1.3, 1.2], 4),
        ({"patience": 2}, [1.0, 0.9, 0.95, 0.96], 4),
        ({"baseline": 0.5, "patience": 2}, [1.0, 0.9, 0.95, 0.96], 3),  # never under 0.5
    ],
)
def test_early_stopping_stops_where_keras_does(kwargs, values, epochs):
    key = kwargs.get("monitor", "val_loss")
    assert run_monitor(EarlyStopping(**kwargs), values, key) == epochs


def test_early_stopping_restores_the_best_weights_in_a_real_fit(capsys):
    x, y = data(16)
    model = dense_model(lr=0.5)
    snapshots = []

    class Keep(Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append((logs["val_loss"], self.model.get_weights()))

    stopper = EarlyStopping(patience=1, restore_best_weights=True, verbose=1)
    x_val, y_val = x[:4], (y[:4] + 1) % 3  # a validation set the model gets worse on
    model.fit(
        x, y, epochs=20, validation_data=(x_val, y_val), callbacks=[Keep(), stopper], verbose=0
    )
    best = int(np.argmin([v for v, _ in snapshots]))
    assert stopper.best_epoch == best and stopper.stopped_epoch == len(snapshots) - 1 < 19
    for got, want in zip(model.get_weights(), snapshots[best][1]):
        np.testing.assert_array_equal(got, want)
    out = capsys.readouterr().out
    assert f"Epoch {len(snapshots)}: early stopping" in out
    assert f"Restoring model weights from the end of the best epoch: {best + 1}." in out


# -- ReduceLROnPlateau ------------------------------------------------------------------------


def test_reduce_lr_on_plateau_reduces_after_patience_and_waits_out_the_cooldown():
    model = dense_model(lr=1.0)
    callback = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_lr=0.2)
    callback.set_model(model)
    callback.set_params({"metrics": ["loss", "val_loss"]})
    callback.on_train_begin()
    rates, logged = [], []
    for epoch, value in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]):
        logs = {"val_loss": value}
        callback.on_epoch_end(epoch, logs)
        rates.append(model.optimizer.learning_rate)
        logged.append(logs["learning_rate"])
    assert rates == [1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2]  # never below min_lr
    assert logged == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2]  # the rate each epoch ended with


def test_reduce_lr_on_plateau_in_a_real_fit_logs_the_learning_rate():
    x, y = data()
    model = dense_model(lr=0.1)
    callback = ReduceLROnPlateau(monitor="loss", factor=0.1, patience=0, min_delta=10.0)
    history = model.fit(x, y, epochs=3, callbacks=[callback], verbose=0)
    # The first epoch sets the best loss; every later one falls short of it by min_delta.
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.01])
    assert model.optimizer.learning_rate == pytest.approx(1e-3)


def test_a_scheduled_rate_cannot_be_reduced():
    model = dense_model()
    model.compile(optim.SGD(optim.schedules.ExponentialDecay(0.1, 10, 0.5)), "mse")
    callback = ReduceLROnPlateau(patience=0)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_end(0, {"val_loss": 1.0})
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        callback.on_epoch_end(1, {"val_loss": 1.0})


# -- LearningRateScheduler and the learning_rate log ----------------------------------------------


@pytest.mark.parametrize(
    "schedule", [lambda epoch: 0.1 / (epoch + 1), lambda epoch, lr: 0.1 / (epoch + 1)]
)
def test_learning_rate_scheduler_sets_each_epochs_rate(schedule, capsys):
    x, y = data(8)
    model, steps = dense_model(lr=0.5), []

    class Rates(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            steps.append(self.model.optimizer.learning_rate)

    callback = LearningRateScheduler(schedule, verbose=1)
    history = model.fit(x, y, batch_size=4, epochs=3, callbacks=[callback, Rates()], verbose=0)
    assert steps == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.1 / 3, 0.1 / 3])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert (
        "Epoch 2: LearningRateScheduler setting learning rate to 0.05." in capsys.readouterr().out
    )


def test_the_previous_rate_reaches_a_two_argument_schedule():
    x, y = data(4)
    model = dense_model(lr=0.4)
    callback = LearningRateScheduler(lambda epoch, lr: lr / 2)
    history = model.fit(x, y, epochs=3, callbacks=[callback], verbose=0)
    assert history.history["learning_rate"] == pytest.approx([0.2, 0.1, 0.05])


def test_fit_logs_the_learning_rate_once_it_moves():
    x, y = data(8)
    model = dense_model(lr=0.1)

    class Halve(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.optimizer.learning_rate = 0.05

    history = model.fit(x, y, epochs=4, callbacks=[Halve()], verbose=0)
    assert history.history["learning_rate"] == [0.05, 0.05]  # epochs 3 and 4
    scheduled = dense_model()
    scheduled.compile(optim.SGD(optim.schedules.InverseTimeDecay(0.1, 1, 1.0)), "mse")
    history = scheduled.fit(x, np.eye(3)[y], batch_size=4, epochs=2, verbose=0)
    assert history.history["learning_rate"] == pytest.approx([0.1 / 3, 0.1 / 5])
    plain = dense_model().fit(x, y, epochs=2, verbose=0)
    assert "learning_rate" not in plain.history


def test_learning_rate_scheduler_refuses_what_is_not_a_rate():
    x, y = data(4)
    with pytest.raises(ValueError, match="must return a number, got '0.1'"):
        dense_model().fit(x, y, callbacks=[LearningRateScheduler(lambda e: "0.1")], verbose=0)
    with pytest.raises(ValueError, match="learning_rate must be a positive"):
        dense_model().fit(x, y, callbacks=[LearningRateScheduler(lambda e: -1.0)], verbose=0)


# -- CSVLogger ------------------------------------------------------------------------------


def test_csv_logger_writes_kerass_file(tmp_path):
    x, y = data(8)
    path = tmp_path / "log.csv"
    history = dense_model().fit(
        x, y, epochs=2, validation_data=(x, y), callbacks=[CSVLogger(path)], verbose=0
    )
    lines = path.read_bytes().decode().split("\r\n")  # the csv module's excel dialect, as Keras
    assert lines[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    for epoch in range(2):
        row = lines[1 + epoch].split(",")
        assert row[0] == str(epoch)
        assert [float(v) for v in row[1:]] == [
            history.history[k][epoch] for k in ("accuracy", "loss", "val_accuracy", "val_loss")
        ]
    assert lines[3] == ""


def test_csv_logger_appends_without_a_second_header(tmp_path):
    x, y = data(8)
    path = tmp_path / "log.csv"
    model = dense_model()
    model.fit(x, y, epochs=1, callbacks=[CSVLogger(path)], verbose=0)
    model.fit(x, y, epochs=2, callbacks=[CSVLogger(path, separator=";", append=True)], verbose=0)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,accuracy,loss,val_accuracy,val_loss"  # val_ columns, as Keras
    assert len(lines) == 4 and lines[2].startswith("0;") and lines[3].endswith(";NA;NA")


# -- TerminateOnNaN ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN on purpose
def test_terminate_on_nan_stops_training_with_the_last_finite_weights(capsys):
    x, y = data(16)
    x[9] = np.nan  # the third batch of 4
    model, recorder = dense_model(), []

    class Keep(Callback):
        def on_train_batch_end(self, batch, logs=None):
            recorder.append(self.model.get_weights())

    history = model.fit(
        x, y, batch_size=4, epochs=3, shuffle=False, callbacks=[TerminateOnNaN(), Keep()], verbose=0
    )
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out
    assert len(history.history["loss"]) == 1 and math.isnan(history.history["loss"][0])
    assert model.optimizer.iterations == 2
    for got, want in zip(model.get_weights(), recorder[-1]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_can_raise():
    x, y = data(8)
    x[0] = np.inf
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        dense_model().fit(x, y, shuffle=False, callbacks=[TerminateOnNaN(raise_error=True)])


# -- LambdaCallback ---------------------------------------------------------------------------


def test_lambda_callback_runs_the_functions_it_is_given():
    x, y = data(8)
    seen = []
    callback = LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(("epoch", epoch, round(logs["loss"], 6))),
        on_train_batch_end=lambda batch, logs: seen.append(("batch", batch)),
        on_test_end=lambda logs: seen.append(("test", sorted(logs))),
    )
    history = dense_model().fit(
        x, y, batch_size=4, validation_data=(x, y), callbacks=[callback], verbose=0
    )
    loss = round(history.history["loss"][0], 6)
    assert seen == [("batch", 0), ("batch", 1), ("test", ["accuracy", "loss"]), ("epoch", 0, loss)]


# -- bad arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: EarlyStopping(mode="up"), ValueError, ["EarlyStopping", "'up'", "min", "max"]),
        (lambda: EarlyStopping(patience=-1), ValueError, ["patience", "-1"]),
        (lambda: EarlyStopping(patience=1.5), ValueError, ["patience", "1.5"]),
        (lambda: EarlyStopping(monitor=3), TypeError, ["monitor", "3"]),
        (lambda: EarlyStopping(baseline="low"), ValueError, ["baseline", "'low'"]),
        (lambda: EarlyStopping(start_from_epoch=-2), ValueError, ["start_from_epoch", "-2"]),
        (lambda: ReduceLROnPlateau(factor=1.0), ValueError, ["factor", "(0, 1)", "1.0"]),
        (lambda: ReduceLROnPlateau(factor=0), ValueError, ["factor", "0"]),
        (lambda: ReduceLROnPlateau(min_lr=-1), ValueError, ["min_lr", "-1"]),
        (lambda: ReduceLROnPlateau(cooldown=-1), ValueError, ["cooldown", "-1"]),
        (lambda: ReduceLROnPlateau(min_delta=float("nan")), ValueError, ["min_delta", "nan"]),
        (lambda: LearningRateScheduler(0.1), TypeError, ["schedule", "0.1"]),
        (lambda: CSVLogger(None), TypeError, ["filename", "None"]),
        (lambda: CSVLogger("a.csv", separator=";;"), ValueError, ["separator", "';;'"]),
        (
            lambda: LambdaCallback(on_epoch_stop=print),
            TypeError,
            ["'on_epoch_stop'", "on_epoch_end"],
        ),
        (lambda: LambdaCallback(on_epoch_end=3), TypeError, ["on_epoch_end", "function", "3"]),
    ],
)
def test_bad_callback_arguments_are_refused(make, error, words):
    with pytest.raises(error) as excinfo:
        make()
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("cls", [EarlyStopping, ReduceLROnPlateau])
def test_a_monitor_typo_fails_before_the_first_epoch(cls):
    x, y = data(8)
    model = dense_model()
    with pytest.raises(ValueError) as excinfo:
        model.fit(x, y, validation_data=(x, y), callbacks=[cls(monitor="val_los")], verbose=0)
    assert "'val_los'" in str(excinfo.value) and "val_loss" in str(excinfo.value)
    assert model.optimizer.iterations == 0


def test_auto_mode_needs_a_known_direction():
    model = dense_model()
    model.compile("sgd", "mse", metrics=[engine.metrics.Mean(name="mean")])
    callback = EarlyStopping(monitor="mean")
    callback.set_model(model)
    with pytest.raises(ValueError, match="mode='max'"):
        callback.on_epoch_end(0, {"mean": 1.0})


def test_csv_logger_needs_an_existing_folder(tmp_path):
    x, y = data(4)
    logger = CSVLogger(tmp_path / "missing" / "log.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dense_model().fit(x, y, callbacks=[logger], verbose=0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_on_every_backend(backend_name, capsys):
    """On the GPU fit checks the loss every 50th and each epoch's last step: TerminateOnNaN
    acts there, on floats (never on device values, which would sync every step)."""
    x, y = data(16)
    x[9] = np.nan
    model = dense_model()
    history = model.fit(
        x, y, batch_size=4, epochs=2, shuffle=False, callbacks=[TerminateOnNaN()], verbose=0
    )
    assert "Invalid loss, terminating training" in capsys.readouterr().out
    assert len(history.history["loss"]) == 1
    assert all(np.isfinite(w).all() for w in model.get_weights())
