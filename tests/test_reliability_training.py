"""Issue 6: training never silently goes bad, Ctrl-C stops cleanly, runs are reproducible,
resumed runs equal straight runs bit for bit on the CPU, and ModelCheckpoint saves as Keras.
"""

import os
import signal

import numpy as np
import pytest

import engine
import optim
from engine import Sequential, backend, utils
from engine.callbacks import Callback, ModelCheckpoint
from layers import Conv2D, Dense, Flatten, MaxPooling2D

pytestmark = [
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # overflow on purpose
    # Exact step-by-step expectations hold on the CPU, which checks every step; tests that
    # take ``backend_name`` run on the GPU too (that fixture switches after this one).
    pytest.mark.usefixtures("on_cpu"),
]


@pytest.fixture
def on_cpu():
    previous = backend.backend_name()
    backend.set_backend("numpy")
    yield
    backend.set_backend(previous)


def small_model(optimizer="adam", seed=0, loss="sparse_categorical_crossentropy"):
    utils.set_random_seed(seed)
    model = Sequential(
        [
            Conv2D(3, 3, activation="relu", input_shape=(6, 6, 1)),
            MaxPooling2D(2),
            Flatten(),
            Dense(3),
        ]
    )
    model.compile(
        optimizer=optimizer,
        loss=engine.losses.SparseCategoricalCrossentropy(from_logits=True)
        if loss == "sparse_categorical_crossentropy"
        else loss,
        metrics=["accuracy"],
    )
    return model


def data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 6, 6, 1)).astype("float32")
    y = (x[:, :3].mean(axis=(1, 2, 3)) * 5).astype(int) % 3
    return x, y


def slots_of(model):
    return [
        {k: backend.to_numpy(v).copy() for k, v in s.items()} for s in model.optimizer.slots or []
    ]


def same_arrays(a, b):
    return len(a) == len(b) and all(
        np.asarray(p).dtype == np.asarray(q).dtype and np.array_equal(p, q) for p, q in zip(a, b)
    )


def all_finite(arrays):
    return all(np.isfinite(a).all() for a in arrays)


class Recorder(Callback):
    """Keeps (epoch, step, weights, slots, iterations) after every finished step."""

    def __init__(self):
        self.epoch = None
        self.steps = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, step, logs=None):
        m = self.model
        self.steps.append((self.epoch, step, m.get_weights(), slots_of(m), m.optimizer.iterations))


# -- non-finite loss ------------------------------------------------------------------------


def _check_kept_last_finite(model, recorder, err, epoch, step):
    assert isinstance(err, FloatingPointError)
    assert isinstance(err, engine.NonFiniteLossError)
    message = str(err)
    assert f"epoch {epoch}" in message and f"step {step}" in message, message
    assert "last finite weights" in message
    weights = model.get_weights()
    assert all_finite(weights)
    _, _, last_weights, last_slots, last_iterations = recorder.steps[-1]
    assert same_arrays(weights, last_weights)
    # The optimizer state goes back too: nothing the user had is replaced by NaN.
    assert model.optimizer.iterations == last_iterations
    slots = slots_of(model)
    assert len(slots) == len(last_slots)
    for now, before in zip(slots, last_slots):
        assert all(np.isfinite(v).all() for v in now.values())
        assert all(np.array_equal(now[k], before[k]) for k in before)


HUGE = {
    "sgd": lambda: optim.SGD(1e32),
    "sgd_momentum": lambda: optim.SGD(1e32, momentum=0.9),
    "adam": lambda: optim.Adam(1e32),
    "rmsprop": lambda: optim.RMSprop(1e32),
    "adagrad": lambda: optim.Adagrad(1e32),
}


@pytest.mark.parametrize("name", list(HUGE))
def test_huge_learning_rate_stops_with_the_last_finite_weights(name):
    x, y = data()
    model = small_model(HUGE[name]())
    recorder = Recorder()
    recorder.steps.append((0, -1, model.get_weights(), [], 0))  # before the first step
    with pytest.raises(FloatingPointError) as excinfo:
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, seed=0, callbacks=[recorder])
    last_epoch, last_step = recorder.steps[-1][:2]
    epoch, step = (last_epoch + 1, last_step + 2) if last_step < 9 else (last_epoch + 2, 1)
    _check_kept_last_finite(model, recorder, excinfo.value, epoch, step)


def test_nan_in_the_data_names_epoch_and_step():
    x, y = data()
    x[9, 2, 2, 0] = np.nan  # batch of samples 8..11: the 3rd step with batch_size 4
    model = small_model()
    recorder = Recorder()
    with pytest.raises(engine.NonFiniteLossError) as excinfo:
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[recorder])
    assert len(recorder.steps) == 2
    _check_kept_last_finite(model, recorder, excinfo.value, epoch=1, step=3)
    assert "NaN/inf in the data" in str(excinfo.value)


def test_inf_in_the_data_on_the_very_first_step_keeps_the_initial_weights():
    x, y = data()
    x[0] = np.inf
    model = small_model()
    initial = model.get_weights()
    with pytest.raises(FloatingPointError, match=r"epoch 1, by step 1"):
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert same_arrays(model.get_weights(), initial)
    assert model.optimizer.iterations == 0 and model.optimizer.slots is None


def test_divergence_in_a_later_epoch_names_that_epoch():
    x, y = data()
    model = small_model(optim.SGD(0.01))
    recorder = Recorder()

    class Explode(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.optimizer.learning_rate = 1e35

    with pytest.raises(engine.NonFiniteLossError) as excinfo:
        model.fit(x, y, batch_size=4, epochs=5, seed=3, verbose=0, callbacks=[recorder, Explode()])
    last_epoch, last_step = recorder.steps[-1][:2]
    assert last_epoch == 2  # the third epoch (1-based 3) is where it went bad
    _check_kept_last_finite(model, recorder, excinfo.value, epoch=3, step=last_step + 2)


def test_non_finite_on_any_backend_keeps_finite_checked_weights(backend_name):
    """The GPU checks every 50th and each epoch's last step: it goes back to the last check."""
    assert backend.backend_name() == backend_name
    x, y = data()
    x[9, 2, 2, 0] = np.nan
    model = small_model()
    recorder = Recorder()
    recorder.steps.append((0, -1, model.get_weights(), [], 0))
    with pytest.raises(engine.NonFiniteLossError, match="epoch 1, by step"):
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[recorder])
    weights = model.get_weights()
    assert all_finite(weights)
    matches = [entry for entry in recorder.steps if same_arrays(entry[2], weights)]
    assert matches and model.optimizer.iterations == matches[-1][4]


def test_train_on_batch_refuses_a_non_finite_step():
    x, y = data()
    model = small_model()
    model.train_on_batch(x[:4], y[:4])
    weights, slots = model.get_weights(), slots_of(model)
    bad = x[4:8].copy()
    bad[0] = np.inf
    with pytest.raises(engine.NonFiniteLossError, match="step 2"):
        model.train_on_batch(bad, y[4:8])
    assert same_arrays(model.get_weights(), weights)
    assert model.optimizer.iterations == 1
    for now, before in zip(slots_of(model), slots):
        assert all(np.array_equal(now[k], before[k]) for k in before)
    assert np.isfinite(model.train_on_batch(x[4:8], y[4:8]))


def test_model_keeps_training_after_a_non_finite_stop():
    x, y = data()
    bad = x.copy()
    bad[20] = np.nan
    model = small_model()
    with pytest.raises(FloatingPointError):
        model.fit(bad, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 5
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)  # the cleaned data
    assert all(np.isfinite(history.history["loss"]))
    assert np.isfinite(model.evaluate(x, y)[0])
    assert model.optimizer.iterations == 25


# -- Ctrl-C -----------------------------------------------------------------------------


class CtrlC(Recorder):
    """Sends SIGINT to this process at the end of step ``at`` of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch, at, times=1):
        super().__init__()
        self.at, self.when_epoch, self.times = at, epoch, times
        self.epoch_ends = []

    def on_train_batch_end(self, step, logs=None):
        super().on_train_batch_end(step, logs)
        if (self.epoch, step) == (self.when_epoch, self.at):
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_ends.append(epoch)


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
@pytest.mark.parametrize("epoch, step", [(0, 2), (1, 0), (1, 9)])
def test_ctrl_c_stops_cleanly_at_the_end_of_the_step(epoch, step, capsys, backend_name):
    assert backend.backend_name() == backend_name
    x, y = data()
    model = small_model()
    ctrl_c = CtrlC(epoch, step)
    handler = signal.getsignal(signal.SIGINT)
    history = model.fit(x, y, batch_size=4, epochs=3, seed=0, verbose=0, callbacks=[ctrl_c])
    assert signal.getsignal(signal.SIGINT) is handler  # the user's handler is back
    assert "Interrupted" in capsys.readouterr().out
    # It stopped right after that step: no further step ran.
    assert ctrl_c.steps[-1][:2] == (epoch, step)
    assert model.optimizer.iterations == 10 * epoch + step + 1
    assert same_arrays(model.get_weights(), ctrl_c.steps[-1][2])
    assert all_finite(model.get_weights())
    # The interrupted epoch is logged (its partial means); on_epoch_end ran for whole ones only.
    assert len(history.history["loss"]) == epoch + 1
    assert ctrl_c.epoch_ends == list(range(epoch))
    # The model is usable: predict, evaluate, train on.
    assert np.isfinite(model.predict(x)).all()
    assert np.isfinite(model.evaluate(x, y)[0])
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert model.optimizer.iterations == 10 * epoch + step + 1 + 10


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
def test_second_ctrl_c_aborts_and_restores_the_handler():
    x, y = data()
    model = small_model()
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[CtrlC(0, 1, times=2)])
    assert signal.getsignal(signal.SIGINT) is handler
    assert all_finite(model.get_weights())


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
def test_ctrl_c_during_a_checkpoint_save_finishes_the_save_then_stops(tmp_path):
    x, y = data()
    model = small_model()
    path = tmp_path / "ckpt-{epoch}.npz"

    class CtrlCInSave(ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            os.kill(os.getpid(), signal.SIGINT)  # arrives while the save below runs
            super().on_epoch_end(epoch, logs)

    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[CtrlCInSave(str(path))])
    assert len(history.history["loss"]) == 1
    assert sorted(os.listdir(tmp_path)) == ["ckpt-1.npz"]
    restored = engine.load_model(tmp_path / "ckpt-1.npz")
    assert same_arrays(restored.get_weights(), model.get_weights())


# -- reproducibility -------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False])
def test_same_seed_gives_identical_weights_and_history(shuffle):
    x, y = data()
    runs = []
    for _ in range(2):
        model = small_model(seed=5)
        history = model.fit(
            x,
            y,
            batch_size=4,
            epochs=2,
            seed=11,
            shuffle=shuffle,
            verbose=0,
            validation_data=(x[:8], y[:8]),
        )
        runs.append((model.get_weights(), history.history))
    assert same_arrays(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_different_seeds_shuffle_differently():
    x, y = data()
    a, b = small_model(seed=5), small_model(seed=5)
    a.fit(x, y, batch_size=4, epochs=1, seed=1, verbose=0)
    b.fit(x, y, batch_size=4, epochs=1, seed=2, verbose=0)
    assert not same_arrays(a.get_weights(), b.get_weights())


# -- resume == straight run, bit for bit on the CPU ------------------------------------------

OPTIMIZERS = {
    "sgd": lambda: optim.SGD(0.05),
    "sgd_momentum_nesterov": lambda: optim.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optim.Adam(0.01),
    "adam_amsgrad": lambda: optim.Adam(0.01, amsgrad=True),
    "rmsprop_centered_momentum": lambda: optim.RMSprop(0.01, momentum=0.5, centered=True),
    "adagrad": lambda: optim.Adagrad(0.05),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("k", [1, 2])
def test_resume_from_a_checkpoint_equals_the_straight_run(name, k, tmp_path):
    x, y = data()
    fit_args = {"batch_size": 8, "seed": 7, "verbose": 0, "validation_data": (x[:8], y[:8])}

    straight = small_model(OPTIMIZERS[name]())
    full = straight.fit(x, y, epochs=3, **fit_args)

    first = small_model(OPTIMIZERS[name]())
    first.fit(x, y, epochs=k, **fit_args)
    first.save(tmp_path / "after.npz")
    del first
    resumed = engine.load_model(tmp_path / "after.npz")
    rest = resumed.fit(x, y, epochs=3, initial_epoch=k, **fit_args)

    assert same_arrays(resumed.get_weights(), straight.get_weights())
    assert resumed.optimizer.iterations == straight.optimizer.iterations == 15
    assert same_arrays(
        [v for s in slots_of(resumed) for v in s.values()],
        [v for s in slots_of(straight) for v in s.values()],
    )
    assert {key: values[k:] for key, values in full.history.items()} == rest.history


def test_epoch_by_epoch_fits_equal_one_fit():
    """Shuffling depends only on (seed, epoch), not on how many epochs ran in this process."""
    x, y = data()
    straight = small_model()
    straight.fit(x, y, batch_size=8, epochs=3, seed=3, verbose=0)
    stepwise = small_model()
    for epoch in range(3):
        stepwise.fit(x, y, batch_size=8, epochs=epoch + 1, initial_epoch=epoch, seed=3, verbose=0)
    assert same_arrays(stepwise.get_weights(), straight.get_weights())


def test_resume_from_a_model_checkpoint_file(tmp_path):
    x, y = data()
    path = str(tmp_path / "ckpt-{epoch:02d}.npz")
    straight = small_model()
    straight.fit(x, y, batch_size=8, epochs=4, seed=9, verbose=0, callbacks=[ModelCheckpoint(path)])
    resumed = engine.load_model(tmp_path / "ckpt-02.npz")
    resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, seed=9, verbose=0)
    assert same_arrays(resumed.get_weights(), straight.get_weights())


# -- ModelCheckpoint ------------------------------------------------------------------------


def test_checkpoint_every_epoch(tmp_path):
    x, y = data()
    model = small_model()
    snapshots = []

    class Keep(Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(self.model.get_weights())

    callback = ModelCheckpoint(str(tmp_path / "m-{epoch}-{loss:.4f}.npz"))
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[callback, Keep()])
    names = sorted(os.listdir(tmp_path))
    expected = sorted(f"m-{e + 1}-{loss:.4f}.npz" for e, loss in enumerate(history.history["loss"]))
    assert names == expected  # one file per epoch, no temporary files left
    for epoch, weights in enumerate(snapshots):
        name = f"m-{epoch + 1}-{history.history['loss'][epoch]:.4f}.npz"
        loaded = engine.load_model(tmp_path / name)
        assert same_arrays(loaded.get_weights(), weights)
        assert loaded.optimizer.iterations == 5 * (epoch + 1)


@pytest.mark.parametrize(
    "monitor, mode",
    [("val_loss", "auto"), ("val_accuracy", "auto"), ("loss", "min"), ("val_loss", "max")],
)
def test_checkpoint_save_best_only(tmp_path, monitor, mode):
    x, y = data()
    model = small_model(optim.SGD(0.5, momentum=0.9))  # a bumpy run: not every epoch improves
    at_epoch_end = []

    class Keep(Callback):
        def on_epoch_end(self, epoch, logs=None):
            at_epoch_end.append(self.model.get_weights())

    path = tmp_path / "best.npz"
    callback = ModelCheckpoint(str(path), monitor=monitor, mode=mode, save_best_only=True)
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=6,
        seed=0,
        verbose=0,
        validation_data=(x[:12], y[:12]),
        callbacks=[callback, Keep()],
    )
    values = history.history[monitor]
    maximize = mode == "max" or (mode == "auto" and "acc" in monitor)
    best, last_improved = None, None
    for epoch, value in enumerate(values):
        if best is None or (value > best if maximize else value < best):
            best, last_improved = value, epoch
    # The file holds the weights of the last epoch that improved the monitored value.
    assert os.listdir(tmp_path) == ["best.npz"]
    assert same_arrays(engine.load_model(path).get_weights(), at_epoch_end[last_improved])
    assert callback.best == best


def test_checkpoint_save_best_only_writes_only_on_improvement(tmp_path):
    """With {epoch} in the name, the files show exactly which epochs improved."""
    x, y = data()
    model = small_model(optim.SGD(0.5, momentum=0.9))
    callback = ModelCheckpoint(
        str(tmp_path / "e{epoch}.npz"), monitor="val_loss", save_best_only=True
    )
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=6,
        seed=0,
        verbose=0,
        validation_data=(x[:12], y[:12]),
        callbacks=[callback],
    )
    best, improved = np.inf, []
    for epoch, value in enumerate(history.history["val_loss"]):
        if value < best:
            best, improved = value, [*improved, epoch + 1]
    assert sorted(os.listdir(tmp_path)) == sorted(f"e{e}.npz" for e in improved)


def test_checkpoint_weights_only(tmp_path):
    x, y = data()
    model = small_model()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[ModelCheckpoint(str(tmp_path / "w.npz"), save_weights_only=True)],
    )
    other = small_model(seed=123)
    other.load_weights(tmp_path / "w.npz")
    assert same_arrays(other.get_weights(), model.get_weights())
    with pytest.raises(engine.WeightFileError, match="weights only"):
        engine.load_model(tmp_path / "w.npz")
