"""fit's options against Keras's: weighted losses and metrics, validation_split,
class_weight, whole weighted fits, EarlyStopping and ReduceLROnPlateau on the same logs,
CSVLogger's file, the progress line and summary's box table, to_categorical."""

import io
import re

import jax
import keras
import numpy as np
import pytest
from keras.src.trainers.data_adapters import array_slicing
from keras_helpers import assert_close
from test_keras_losses import MAKERS, _cases

import engine
import optim
from engine import Sequential, backend, callbacks, losses, metrics
from engine import data_adapter as data
from layers import Dense

pytestmark = pytest.mark.keras

RTOL = {"float64": 1e-10, "float32": 1e-5}


# -- weighted losses: every loss, value and gradient ----------------------------------------


def sample_weights(rng, shape):
    """Weights per sample, some zero, some above 1."""
    w = rng.uniform(0, 2, shape[:1])
    w[::3] = 0.0
    return w


@pytest.mark.parametrize("name,from_logits,case", _cases())
def test_weighted_loss_matches_keras(name, from_logits, case, floatx, exact_keras_mean):
    shape = (6, 5)
    rng = np.random.default_rng(sum(map(ord, name + case)) + 1)
    y_true, y_pred = MAKERS[name](rng, shape, from_logits, case)
    y_true = y_true if name.startswith("sparse") else y_true.astype(floatx)
    y_pred, w = y_pred.astype(floatx), sample_weights(rng, shape).astype(floatx)
    kwargs = {} if from_logits is None else {"from_logits": from_logits}
    ours = losses.LOSSES[name](**kwargs)
    theirs = getattr(keras.losses, type(ours).__name__)(**kwargs)

    value, grad = jax.jit(jax.value_and_grad(lambda p: theirs(y_true, p, sample_weight=w)))(y_pred)
    rtol, group = RTOL[floatx], f"losses {floatx}"
    t, p, dw = (backend.to_device(a) for a in (y_true, y_pred, w))
    ours_value, ours_grad = ours.value_and_gradient(t, p, dw)
    assert ours_value.dtype == ours_grad.dtype == floatx
    assert_close(ours_value, value, rtol, what="weighted value", group=group)
    assert_close(ours.compute(t, p, dw), value, rtol, what="weighted compute")
    atol = rtol * float(np.abs(grad).max())
    assert_close(ours_grad, grad, rtol, atol, what="weighted gradient", group=group)


@pytest.fixture
def exact_keras_mean(monkeypatch, floatx):
    """As in test_keras_losses.py: Keras 3.15's ops.mean of float64 rounds through float32."""
    if floatx == "float64":
        import jax.numpy as jnp

        exact = lambda x, axis=None, keepdims=False: jnp.mean(x, axis=axis, keepdims=keepdims)
        monkeypatch.setattr(keras.src.backend.numpy, "mean", exact)


# -- weighted metrics -----------------------------------------------------------------------

METRIC_CASES = {
    "SparseCategoricalAccuracy": ({}, "sparse"),
    "CategoricalAccuracy": ({}, "one_hot"),
    "BinaryAccuracy": ({"threshold": 0.4}, "binary"),
    "SparseTopKCategoricalAccuracy": ({"k": 2}, "sparse"),
    "TopKCategoricalAccuracy": ({"k": 2}, "one_hot"),
    "MeanSquaredError": ({}, "regression"),
    "MeanAbsoluteError": ({}, "regression"),
    "Precision": ({}, "binary"),
    "Precision-thresholds": ({"thresholds": 0.3}, "binary"),
    "Precision-top_k": ({"top_k": 2}, "multi_label"),
    "Precision-class_id": ({"class_id": 1}, "multi_label"),
    "Recall": ({}, "binary"),
    "Recall-top_k-class_id": ({"top_k": 2, "class_id": 2}, "multi_label"),
}


def metric_data(kind, rng, n=20, k=4):
    scores = rng.random((n, k))
    labels = rng.integers(0, k, n)
    if kind == "sparse":
        return labels, scores
    if kind == "one_hot":
        return np.eye(k)[labels], scores
    if kind == "binary":
        return rng.integers(0, 2, (n, 1)).astype(float), rng.random((n, 1))
    if kind == "multi_label":
        return rng.integers(0, 2, (n, k)).astype(float), scores
    return rng.standard_normal((n, k)), rng.standard_normal((n, k))


def test_every_metric_is_covered():
    assert {case.split("-")[0] for case in METRIC_CASES} == {
        cls.__name__ for cls in metrics.METRICS.values()
    }


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", sorted(METRIC_CASES))
def test_metric_matches_keras(case, weighted, floatx):
    name = case.split("-")[0]
    kwargs, kind = METRIC_CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for _ in range(3):  # three batches: the state accumulates
        y_true, y_pred = metric_data(kind, rng)
        y_pred = y_pred.astype(floatx)
        w = sample_weights(rng, y_pred.shape) if weighted else None
        theirs.update_state(y_true, y_pred, sample_weight=w)
        ours.update_state(
            backend.to_device(y_true),
            backend.to_device(y_pred),
            None if w is None else backend.to_device(w),
        )
    # Keras keeps its totals in floatx variables; float32 rounding of a sum of 60 terms.
    rtol = 1e-12 if floatx == "float64" else 1e-6
    assert_close(
        ours.result(), np.asarray(theirs.result()), rtol, what=case, group=f"metrics {floatx}"
    )


# -- validation_split, class_weight and whole fits -------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 10, 33, 100, 1001])
@pytest.mark.parametrize("split", [0.1, 0.2, 0.25, 1 / 3, 0.5, 0.75, 0.999])
def test_validation_split_is_kerass(n, split):
    samples = np.arange(n)
    try:
        (keras_train,), (keras_val,) = array_slicing.train_validation_split(
            (samples,), validation_split=split
        )
    except ValueError:
        with pytest.raises(ValueError, match="both need at least one"):
            data.split_validation([samples], split, "fit")
        return
    (train,), (val,) = data.split_validation([samples], split, "fit")
    np.testing.assert_array_equal(train, keras_train)
    np.testing.assert_array_equal(val, keras_val)


@pytest.mark.parametrize("one_hot", [False, True])
def test_class_weight_gives_kerass_sample_weights(one_hot):
    from keras.src.trainers.data_adapters.data_adapter_utils import class_weight_to_sample_weights

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 30)
    y = np.eye(4)[labels] if one_hot else labels
    class_weight = {0: 0.5, 2: 3.0, 3: 0.0}
    model = Sequential([Dense(4, input_shape=(2,))])
    model.compile(
        "sgd", "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    )
    (ours,) = data.class_weight_to_sample_weight(model, class_weight, [y], "fit")
    np.testing.assert_array_equal(ours, class_weight_to_sample_weights(y, class_weight))


def keras_and_our_models():
    keras.utils.set_random_seed(0)
    k_model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)]
    )
    ours = Sequential([Dense(8, activation="relu", input_shape=(5,)), Dense(3)])
    ours.set_weights(k_model.get_weights())
    return k_model, ours


FIT_OPTIONS = {
    "sample_weight": lambda rng, y: {"sample_weight": rng.uniform(0, 2, len(y))},
    "class_weight": lambda rng, y: {"class_weight": {0: 0.5, 1: 2.0}},
    "validation_split": lambda rng, y: {"validation_split": 0.25},
    "all": lambda rng, y: {"sample_weight": rng.uniform(0, 2, len(y)), "validation_split": 0.2},
}


@pytest.mark.parametrize("option", sorted(FIT_OPTIONS))
def test_weighted_fit_matches_kerass(option, keras_float64):
    """Three epochs of SGD (shuffle off) with the option on both sides: the same history
    (loss, weighted and plain accuracy, val_ values) and the same final weights."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    kwargs = FIT_OPTIONS[option](rng, y)
    k_model, ours = keras_and_our_models()
    compile_args = {"metrics": ["accuracy"], "weighted_metrics": ["accuracy"]}
    k_model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **compile_args,
    )
    ours.compile(
        optim.SGD(0.1), losses.SparseCategoricalCrossentropy(from_logits=True), **compile_args
    )
    theirs = k_model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, **kwargs).history
    mine = ours.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, **kwargs).history
    assert set(mine) == set(theirs)
    for key in theirs:
        assert_close(
            np.array(mine[key]), np.array(theirs[key]), 1e-10, what=key, group="fit float64"
        )
    for w_ours, w_keras in zip(ours.get_weights(), k_model.get_weights()):
        assert_close(w_ours, w_keras, 1e-10, atol=1e-12, what="weights", group="fit float64")


# -- EarlyStopping and ReduceLROnPlateau on the same logs --------------------------------------


def scripted_logs(rng, epochs=25):
    """A noisy, mostly falling val_loss with plateaus, and a rising val_accuracy."""
    loss = np.cumsum(rng.normal(-0.02, 0.05, epochs)) + 2.0
    loss[8:12] = loss[8]  # a plateau
    accuracy = np.clip(np.cumsum(rng.normal(0.02, 0.03, epochs)), 0, 1)
    return [
        {"loss": 1.0, "val_loss": float(v), "val_accuracy": float(a)}
        for v, a in zip(loss, accuracy)
    ]


class FakeKerasModel:
    """What Keras's callbacks touch: stop_training, weights, the optimizer and metrics."""

    def __init__(self):
        self.stop_training = False
        self.optimizer = keras.optimizers.SGD(1.0)
        self.metrics = []
        self.weights = [np.zeros(1)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = weights


def drive(callback, model, logs, set_epoch_weights):
    """Run a callback over scripted epoch logs: (stopped after epoch, learning rates)."""
    callback.set_model(model)
    callback.on_train_begin()
    stopped, rates = len(logs), []
    for epoch, entry in enumerate(logs):
        set_epoch_weights(model, epoch)
        entry = dict(entry)
        callback.on_epoch_end(epoch, entry)
        rates.append(entry.get("learning_rate"))
        if model.stop_training:
            stopped = epoch + 1
            break
    callback.on_train_end()
    return stopped, rates


EARLY_STOPPING = [
    {},
    {"patience": 3},
    {"patience": 2, "min_delta": 0.05},
    {"patience": 2, "monitor": "val_accuracy", "mode": "max"},
    {"patience": 4, "baseline": 1.9},
    {"patience": 3, "start_from_epoch": 5},
    {"patience": 2, "restore_best_weights": True},
    {"patience": 5, "restore_best_weights": True, "mode": "min"},
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kwargs", EARLY_STOPPING, ids=[str(k) for k in EARLY_STOPPING])
def test_early_stopping_matches_keras_on_the_same_logs(kwargs, seed):
    logs = scripted_logs(np.random.default_rng(seed))

    def epoch_weights(model, epoch):
        model.set_weights([np.full(1, float(epoch))])

    theirs_model, ours_model = FakeKerasModel(), Sequential([Dense(1, input_shape=(1,))])
    ours_model.compile("sgd", "mse")
    ours_model.stop_training = False
    theirs = keras.callbacks.EarlyStopping(**kwargs)
    ours = callbacks.EarlyStopping(**kwargs)
    stopped_theirs, _ = drive(theirs, theirs_model, logs, epoch_weights)
    stopped_ours, _ = drive(
        ours, ours_model, logs, lambda m, e: m.set_weights([np.full((1, 1), float(e)), np.zeros(1)])
    )
    assert stopped_ours == stopped_theirs
    assert (ours.stopped_epoch, ours.best_epoch, ours.wait) == (
        theirs.stopped_epoch,
        theirs.best_epoch,
        theirs.wait,
    )
    if kwargs.get("restore_best_weights"):
        assert ours_model.get_weights()[0][0, 0] == theirs_model.weights[0][0]


REDUCE_LR = [
    {},
    {"patience": 2},
    {"patience": 1, "factor": 0.5, "cooldown": 2},
    {"patience": 2, "factor": 0.3, "min_lr": 0.05},
    {"patience": 1, "min_delta": 0.05, "monitor": "val_accuracy", "mode": "max"},
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kwargs", REDUCE_LR, ids=[str(k) for k in REDUCE_LR])
def test_reduce_lr_on_plateau_matches_keras_on_the_same_logs(kwargs, seed):
    logs = scripted_logs(np.random.default_rng(seed))
    theirs_model = FakeKerasModel()
    ours_model = Sequential([Dense(1, input_shape=(1,))])
    ours_model.compile(optim.SGD(1.0), "mse")
    _, theirs_rates = drive(
        keras.callbacks.ReduceLROnPlateau(**kwargs), theirs_model, logs, lambda m, e: None
    )
    _, our_rates = drive(callbacks.ReduceLROnPlateau(**kwargs), ours_model, logs, lambda m, e: None)
    # Keras's learning rate is a float32 variable: its rates are float32-rounded.
    np.testing.assert_allclose(our_rates, theirs_rates, rtol=1e-6)
    assert len(set(our_rates)) > 1 or kwargs == {}  # the case reduces at least once


# -- CSVLogger, the progress line, summary, to_categorical ---------------------------------------


def test_csv_logger_writes_the_file_kerass_writes(tmp_path):
    logs = [{"loss": 0.5, "accuracy": 0.25}, {"loss": 0.25, "accuracy": 0.5}]
    files = []
    for make in (keras.callbacks.CSVLogger, callbacks.CSVLogger):
        path = tmp_path / f"{len(files)}.csv"
        logger = make(str(path), separator=";")
        logger.on_train_begin()
        for epoch, entry in enumerate(logs):
            logger.on_epoch_end(epoch, dict(entry))
        logger.on_train_end()
        files.append(path.read_bytes())
    assert files[0] == files[1]


def test_the_closing_line_is_kerass(capsys):
    """Keras's Progbar at verbose=2 against ours for the same values (times masked)."""
    values = [("accuracy", 0.987654), ("loss", 0.0004321), ("val_loss", 12.5)]
    bar = keras.utils.Progbar(target=422, verbose=2)
    bar.update(422, values, finalize=True)
    theirs = capsys.readouterr().out.strip()
    ours = callbacks.progbar_logger.closing_line(422, 422, 5.0, 0.01, 2) + "".join(
        f" - {k}: {callbacks.progbar_logger._number(v)}" for k, v in values
    )
    mask = lambda line: re.sub(r"\d+s - \d+(ms|us|s)/step", "T", line)  # noqa: E731
    assert mask(ours) == mask(theirs), (ours, theirs)


def keras_summary(model, line_length):
    out = io.StringIO()
    model.summary(line_length=line_length, print_fn=lambda text, **_: out.write(text))
    return out.getvalue().rstrip("\n")


@pytest.mark.parametrize("line_length", [60, 76, 88, 120])
def test_box_summary_matches_kerass(line_length, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich would crop Keras's table to the terminal
    keras_model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(5, name="logits"),
        ],
        name="small",
    )
    ours = engine.Sequential(
        [
            engine.Input((12, 12, 3)),
            engine.layers.Conv2D(8, 3, activation="relu", name="conv"),
            engine.layers.Flatten(name="flatten"),
            engine.layers.Dense(5, name="logits"),
        ],
        name="small",
    )
    lines = []
    ours.summary(line_length=line_length, print_fn=lines.append, style="box")
    assert lines[0] == keras_summary(keras_model, line_length)

    k_in = keras.Input((6,), name="features")
    k_out = keras.layers.Add(name="add")(
        [keras.layers.Dense(4, name="left")(k_in), keras.layers.Dense(4, name="right")(k_in)]
    )
    o_in = engine.Input((6,), name="features")
    o_out = engine.layers.Add(name="add")(
        [engine.layers.Dense(4, name="left")(o_in), engine.layers.Dense(4, name="right")(o_in)]
    )
    lines = []
    engine.Model(o_in, o_out, name="branches").summary(
        line_length=line_length, print_fn=lines.append, style="box"
    )
    assert lines[0] == keras_summary(keras.Model(k_in, k_out, name="branches"), line_length)


def test_to_categorical_is_kerass():
    for labels, classes in (
        ([0, 3, 1], None),
        (np.array([[2], [0]]), 5),
        (np.arange(6).reshape(2, 3), 6),
    ):
        np.testing.assert_array_equal(
            engine.to_categorical(labels, classes), keras.utils.to_categorical(labels, classes)
        )


def test_terminal_width_default_is_kerass(monkeypatch):
    """Without line_length both use min(88, terminal columns - 4)."""
    monkeypatch.setenv("COLUMNS", "70")
    keras_model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")], name="m")
    ours = engine.Sequential([engine.Input((3,)), engine.layers.Dense(2, name="d")], name="m")
    lines = []
    ours.summary(print_fn=lines.append, style="box")
    assert lines[0] == keras_summary(keras_model, None)
