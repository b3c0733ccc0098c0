"""Issue 6: every class of user mistake gets a clear ValueError/TypeError, early, and
changes nothing.

Each case checks the error type, the words of the message that matter (the offending
value, shape or name and what was expected), that no IndexError/KeyError or NumPy
broadcasting/indexing message leaks out, and that the model (weights, optimizer state,
compile settings, built state) is exactly as before the refused call.
"""

import numpy as np
import pytest

import engine
import optim
from engine import Sequential, backend, utils
from engine.callbacks import ModelCheckpoint
from layers import (
    Activation,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LayerNormalization,
    MaxPooling2D,
    SpatialDropout2D,
)

# Words that mean an internal error leaked out instead of a validated message.
LEAKS = ("broadcast", "out of bounds", "index ", "not subscriptable", "has no attribute")


def small_model(compiled=True, loss="sparse_categorical_crossentropy", built=True):
    """A tiny CNN: (6, 6, 1) -> conv 2x3x3 -> pool 2 -> flatten -> 3 classes."""
    utils.set_random_seed(0)
    first = Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1) if built else None)
    model = Sequential([first, MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])
    if compiled:
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 1)).astype("float32"), np.arange(n) % 3


def state(model):
    """Everything a refused call must leave alone."""
    opt = model.optimizer
    slots = None
    if opt is not None and opt.slots is not None:
        slots = [{k: backend.to_numpy(v).copy() for k, v in s.items()} for s in opt.slots]
    return {
        "built": [layer.built for layer in model.layers],
        "input_shapes": [layer.input_shape for layer in model.layers],
        "weights": model.get_weights() if model.built else None,
        "optimizer": opt,
        "iterations": None if opt is None else opt.iterations,
        "slots": slots,
        "loss": model.loss,
        "metrics": list(model.metrics),
    }


def assert_same_state(before, after):
    assert before["built"] == after["built"]
    assert before["input_shapes"] == after["input_shapes"]
    assert before["optimizer"] is after["optimizer"]
    assert before["loss"] is after["loss"]
    assert before["metrics"] == after["metrics"]
    assert before["iterations"] == after["iterations"]
    if before["weights"] is None:
        assert after["weights"] is None
    else:
        assert len(before["weights"]) == len(after["weights"])
        for a, b in zip(before["weights"], after["weights"]):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    assert (before["slots"] is None) == (after["slots"] is None)
    for sa, sb in zip(before["slots"] or [], after["slots"] or []):
        assert sa.keys() == sb.keys()
        assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def check_error(excinfo, expected_type, words):
    """The right type, every word of ``words`` in the message, and nothing leaking."""
    err = excinfo.value
    assert isinstance(err, expected_type), f"{type(err).__name__}: {err}"
    assert isinstance(err, (ValueError, TypeError)), f"{type(err).__name__}: {err}"
    assert not isinstance(err, (IndexError, KeyError)), f"{type(err).__name__}: {err}"
    message = str(err)
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    for leak in LEAKS:
        assert leak not in message.lower(), f"internal message leaked: {message!r}"


def refused(call, expected_type, words, model=None):
    """Run ``call``, check the error, and that ``model`` did not change."""
    before = state(model) if model is not None else None
    with pytest.raises(Exception) as excinfo:
        call()
    check_error(excinfo, expected_type, words)
    if model is not None:
        assert_same_state(before, state(model))
    return excinfo.value


# -- inputs x: rank, shape, channels, dtype, emptiness -----------------------------------

X_CASES = {
    "rank3_no_channel_axis": (
        lambda x: x[..., 0],
        ValueError,
        ["(N, 6, 6, 1)", "(8, 6, 6)", "channel axis"],
    ),
    "rank5": (lambda x: x[..., None], ValueError, ["(N, 6, 6, 1)", "(8, 6, 6, 1, 1)"]),
    "rank1": (lambda x: x.reshape(-1), ValueError, ["batch axis", "(288,)"]),
    "rank0": (lambda x: np.float32(1.0), ValueError, ["batch axis", "()"]),
    "wrong_height": (lambda x: x[:, :5], ValueError, ["(N, 6, 6, 1)", "(8, 5, 6, 1)"]),
    "wrong_width": (lambda x: x[:, :, :4], ValueError, ["(N, 6, 6, 1)", "(8, 6, 4, 1)"]),
    "three_channels": (
        lambda x: np.repeat(x, 3, axis=-1),
        ValueError,
        ["(N, 6, 6, 1)", "(8, 6, 6, 3)", "3 channels"],
    ),
    "channels_first": (
        lambda x: np.moveaxis(x, -1, 1),
        ValueError,
        ["(N, 6, 6, 1)", "(8, 1, 6, 6)"],
    ),
    "strings": (lambda x: np.full(x.shape, "0.5"), TypeError, ["numbers", "<U3"]),
    "bytes": (lambda x: np.full(x.shape, b"0.5"), TypeError, ["numbers", "S3"]),
    "objects": (lambda x: x.astype(object), TypeError, ["numbers", "object"]),
    "complex": (lambda x: x.astype(np.complex64), TypeError, ["numbers", "complex64"]),
    "none": (lambda x: None, TypeError, ["None"]),
    "ragged_list": (
        lambda x: [x[0].tolist(), x[1, :3].tolist()],
        TypeError,
        ["array of numbers"],
    ),
    "empty": (lambda x: x[:0], ValueError, ["at least one sample", "(0, 6, 6, 1)"]),
}


def _call(method, model, x, y):
    if method == "fit":
        return model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    if method == "evaluate":
        return model.evaluate(x, y, batch_size=4)
    if method == "predict":
        return model.predict(x, batch_size=4)
    return model.train_on_batch(x, y)


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict", "train_on_batch"])
@pytest.mark.parametrize("case", list(X_CASES))
def test_bad_inputs_are_refused(case, method):
    make_x, error, words = X_CASES[case]
    model = small_model()
    x, y = data()
    refused(lambda: _call(method, model, make_x(x), y), error, [method, *words], model)


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_bad_input_leaves_an_unbuilt_model_unbuilt(method):
    """A model without input_shape is built by its first good call only."""
    model = small_model(built=False)
    x, y = data()
    refused(
        lambda: _call(method, model, np.zeros((8, 2, 2, 1)), y),
        ValueError,
        [method, "(8, 2, 2, 1)", "larger than its padded input"],
        model,
    )
    if method != "predict":  # predict takes no targets
        refused(lambda: _call(method, model, x, y[:5]), ValueError, ["8", "5"], model)
    assert not model.built
    _call(method, model, x, y)  # the right data still work
    assert model.built and model.input_shape == (6, 6, 1)


# -- targets y: lengths, label ranges, one-hot shapes, dtypes ----------------------------

Y_CASES = {
    "fewer_labels": ("sparse", lambda y: y[:7], ValueError, ["8 samples", "7"]),
    "more_labels": ("sparse", lambda y: np.concatenate([y, y]), ValueError, ["8 samples", "16"]),
    "scalar_label": ("sparse", lambda y: np.int64(1), ValueError, ["no batch axis"]),
    "label_too_big": ("sparse", lambda y: np.where(y == 2, 3, y), ValueError, ["3", "0..2"]),
    "label_way_too_big": ("sparse", lambda y: y + 1000, ValueError, ["1002", "0..2"]),
    "negative_label": ("sparse", lambda y: y - 1, ValueError, ["-1", "0..2"]),
    "fractional_label": ("sparse", lambda y: y + 0.5, ValueError, ["0.5", "whole numbers"]),
    "nan_label": ("sparse", lambda y: np.where(y == 0, np.nan, y), ValueError, ["nan"]),
    "inf_label": ("sparse", lambda y: np.where(y == 0, np.inf, y), ValueError, ["inf"]),
    "string_labels": ("sparse", lambda y: y.astype(str), TypeError, ["targets", "numbers"]),
    "object_labels": ("sparse", lambda y: y.astype(object), TypeError, ["targets", "object"]),
    "none_labels": ("sparse", lambda y: None, TypeError, ["targets", "None"]),
    "bool_labels": ("sparse", lambda y: y > 0, ValueError, ["integers", "bool"]),
    "one_hot_for_sparse_loss": (
        "sparse",
        lambda y: np.eye(3)[y],
        ValueError,
        ["(8, 3)", "CategoricalCrossentropy"],
    ),
    "one_hot_too_wide": (
        "categorical",
        lambda y: np.eye(4)[y % 3],
        ValueError,
        ["(N, 3)", "(8, 4)"],
    ),
    "one_hot_too_narrow": ("categorical", lambda y: np.eye(2)[y % 2], ValueError, ["(8, 2)"]),
    "integer_labels_for_categorical": ("categorical", lambda y: y, ValueError, ["(N, 3)", "(8,)"]),
    "one_hot_extra_axis": (
        "categorical",
        lambda y: np.eye(3)[y][:, None],
        ValueError,
        ["(8, 1, 3)"],
    ),
    "mse_target_shape": ("mse", lambda y: np.zeros((8, 2)), ValueError, ["(N, 3)", "(8, 2)"]),
}


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch"])
@pytest.mark.parametrize("case", list(Y_CASES))
def test_bad_targets_are_refused(case, method):
    kind, make_y, error, words = Y_CASES[case]
    loss = {
        "sparse": "sparse_categorical_crossentropy",
        "categorical": "categorical_crossentropy",
        "mse": "mse",
    }[kind]
    model = small_model(loss=loss)
    x, y = data()
    refused(lambda: _call(method, model, x, make_y(y)), error, [method, *words], model)


def test_empty_data_is_refused_for_every_method():
    model = small_model()
    x, y = data()
    for method in ("fit", "evaluate", "predict", "train_on_batch"):
        call = lambda m=method: _call(m, model, x[:0], y[:0])  # noqa: E731
        refused(call, ValueError, ["at least one"], model)


# -- batch size, epochs, initial_epoch, seed ---------------------------------------------

FIT_ARG_CASES = {
    "batch_size_0": ({"batch_size": 0}, ["batch_size", "positive", "0"]),
    "batch_size_negative": ({"batch_size": -4}, ["batch_size", "-4"]),
    "batch_size_float": ({"batch_size": 2.5}, ["batch_size", "2.5"]),
    "batch_size_string": ({"batch_size": "32"}, ["batch_size", "'32'"]),
    "batch_size_bool": ({"batch_size": True}, ["batch_size", "True"]),
    "batch_size_none": ({"batch_size": None}, ["batch_size", "None"]),
    "epochs_0": ({"epochs": 0}, ["epochs", "positive", "0"]),
    "epochs_negative": ({"epochs": -1}, ["epochs", "-1"]),
    "epochs_float": ({"epochs": 1.5}, ["epochs", "1.5"]),
    "initial_epoch_negative": ({"initial_epoch": -1}, ["initial_epoch", "-1"]),
    "initial_epoch_equal_epochs": ({"epochs": 2, "initial_epoch": 2}, ["initial_epoch", "2"]),
    "initial_epoch_float": ({"epochs": 3, "initial_epoch": 1.0}, ["initial_epoch", "1.0"]),
    "seed_negative": ({"seed": -1}, ["seed", "-1"]),
    "seed_string": ({"seed": "abc"}, ["seed", "'abc'"]),
    "seed_float": ({"seed": 1.5}, ["seed", "1.5"]),
}


@pytest.mark.parametrize("case", list(FIT_ARG_CASES))
def test_bad_fit_arguments_are_refused(case):
    kwargs, words = FIT_ARG_CASES[case]
    model = small_model()
    x, y = data()
    args = {"batch_size": 4, "epochs": 1, "verbose": 0, **kwargs}
    refused(lambda: model.fit(x, y, **args), ValueError, words, model)


@pytest.mark.parametrize("method", ["evaluate", "predict"])
@pytest.mark.parametrize("batch_size", [0, -1, 0.5, "8"])
def test_bad_batch_size_for_evaluate_and_predict(method, batch_size):
    model = small_model()
    x, y = data()
    call = (
        (lambda: model.evaluate(x, y, batch_size=batch_size))
        if method == "evaluate"
        else (lambda: model.predict(x, batch_size=batch_size))
    )
    refused(call, ValueError, ["batch_size", repr(batch_size)], model)


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch"])
def test_fit_or_evaluate_before_compile(method):
    model = small_model(compiled=False)
    x, y = data()
    err = refused(
        lambda: _call(method, model, x, y), engine.NotCompiledError, [method, "compile"], model
    )
    assert isinstance(err, RuntimeError)  # as before, for callers catching RuntimeError


def test_predict_needs_no_compile():
    model = small_model(compiled=False)
    assert model.predict(data()[0]).shape == (8, 3)


# -- unknown names: optimizers, losses, metrics, activations, initializers, paddings, backends


def _valid_listed(message, names):
    return all(name in message for name in names)


NAME_CASES = {
    "optimizer_typo": (
        lambda: small_model(compiled=False).compile(optimizer="adamm", loss="mse"),
        ["'adamm'", "sgd", "adam", "rmsprop", "adagrad"],
    ),
    "optimizer_not_a_name": (
        lambda: small_model(compiled=False).compile(optimizer=3, loss="mse"),
        ["3", "sgd", "adam"],
    ),
    "loss_typo": (
        lambda: small_model(compiled=False).compile(optimizer="sgd", loss="crossentropy"),
        ["'crossentropy'", "sparse_categorical_crossentropy", "mean_squared_error", "mse"],
    ),
    "loss_not_a_name": (
        lambda: small_model(compiled=False).compile(optimizer="sgd", loss=len),
        ["loss", "categorical_crossentropy"],
    ),
    "loss_missing": (
        lambda: small_model(compiled=False).compile(optimizer="sgd"),
        ["needs a loss", "sparse_categorical_crossentropy"],
    ),
    "metric_typo": (
        lambda: small_model(compiled=False).compile("sgd", "mse", metrics=["acuracy"]),
        ["'acuracy'", "accuracy", "categorical_accuracy"],
    ),
    "activation_typo": (lambda: Dense(3, activation="gleu"), ["'gleu'", "relu", "softmax"]),
    "activation_case": (lambda: Conv2D(2, 3, activation="ReLU"), ["'ReLU'", "relu"]),
    "activation_layer": (lambda: Activation("swich"), ["'swich'", "sigmoid", "tanh"]),
    "kernel_initializer": (
        lambda: Dense(3, kernel_initializer="xavier"),
        ["'xavier'", "glorot_uniform", "he_normal"],
    ),
    "bias_initializer": (lambda: Dense(3, bias_initializer="zero"), ["'zero'", "zeros"]),
    "conv_kernel_initializer": (
        lambda: Conv2D(2, 3, kernel_initializer="kaiming"),
        ["'kaiming'", "he_uniform"],
    ),
    "bn_initializer": (
        lambda: BatchNormalization(moving_variance_initializer="one"),
        ["'one'", "ones", "zeros"],
    ),
    "ln_initializer": (lambda: LayerNormalization(gamma_initializer="unit"), ["'unit'", "ones"]),
    "conv_padding": (lambda: Conv2D(2, 3, padding="full"), ["'full'", "valid", "same"]),
    "conv_padding_negative": (lambda: Conv2D(2, 3, padding=-1), ["-1", "valid", "same"]),
    "pool_padding": (lambda: MaxPooling2D(2, padding="causal"), ["'causal'", "valid", "same"]),
    "backend_typo": (lambda: backend.set_backend("torch"), ["'torch'", "numpy", "cupy", "auto"]),
    "backend_none": (lambda: backend.set_backend(None), ["None", "numpy", "cupy"]),
    "backend_empty": (lambda: backend.set_backend(""), ["''", "numpy"]),
    "floatx_typo": (lambda: backend.set_floatx("float16"), ["float16", "float32", "float64"]),
}


@pytest.mark.parametrize("case", list(NAME_CASES))
def test_unknown_names_list_the_valid_ones(case):
    call, words = NAME_CASES[case]
    before = (backend.backend_name(), backend.floatx())
    refused(call, ValueError, words)
    assert (backend.backend_name(), backend.floatx()) == before


def test_compile_typo_keeps_the_previous_compile():
    model = small_model()
    for kwargs in (
        {"optimizer": "sgd", "loss": "msee"},
        {"optimizer": "sgdd", "loss": "mse"},
        {"optimizer": "sgd", "loss": "mse", "metrics": ["f1"]},
        {"optimizer": "sgd", "loss": "mse", "metrics": "accuracy"},
    ):
        refused(lambda k=kwargs: model.compile(**k), (ValueError, TypeError), [], model)
    assert type(model.optimizer).__name__ == "Adam"


def test_cupy_missing_is_a_clear_error(monkeypatch):
    """Simulated on every machine: CuPy import failed."""
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_error", "ModuleNotFoundError: No module named 'cupy'")
    before = backend.backend_name()
    err = refused(
        lambda: backend.set_backend("cupy"),
        backend.BackendUnavailableError,
        ["cupy", "No module named 'cupy'", "pip install", "set_backend('numpy')"],
    )
    assert isinstance(err, RuntimeError)
    assert backend.backend_name() == before
    assert not backend.gpu_available()
    assert backend.set_backend("auto") == "numpy"  # auto falls back instead of failing
    backend.set_backend(before)


@pytest.mark.skipif(backend.gpu_available(), reason="CuPy works on this machine")
def test_cupy_really_missing_here():
    before = backend.backend_name()
    refused(lambda: backend.set_backend("cupy"), ValueError, ["cupy", "not usable"])
    assert backend.backend_name() == before


# -- layer and optimizer arguments out of range -------------------------------------------

LAYER_ARG_CASES = {
    "conv_filters_0": (lambda: Conv2D(0, 3), ["filters", "positive", "0"]),
    "conv_filters_negative": (lambda: Conv2D(-8, 3), ["filters", "-8"]),
    "conv_filters_float": (lambda: Conv2D(2.0, 3), ["filters", "2.0"]),
    "conv_filters_bool": (lambda: Conv2D(True, 3), ["filters", "True"]),
    "conv_filters_string": (lambda: Conv2D("32", 3), ["filters", "'32'"]),
    "conv_kernel_0": (lambda: Conv2D(2, 0), ["kernel_size", "positive", "0"]),
    "conv_kernel_negative": (lambda: Conv2D(2, (3, -1)), ["kernel_size", "(3, -1)"]),
    "conv_kernel_one_number_tuple": (lambda: Conv2D(2, (3,)), ["kernel_size", "(3,)"]),
    "conv_kernel_three_numbers": (lambda: Conv2D(2, (3, 3, 3)), ["kernel_size", "(3, 3, 3)"]),
    "conv_kernel_float": (lambda: Conv2D(2, 2.5), ["kernel_size", "2.5"]),
    "conv_strides_0": (lambda: Conv2D(2, 3, strides=0), ["strides", "0"]),
    "dense_units_0": (lambda: Dense(0), ["units", "positive", "0"]),
    "dense_units_negative": (lambda: Dense(-3), ["units", "-3"]),
    "dense_units_string": (lambda: Dense("10"), ["units", "'10'"]),
    "dense_units_none": (lambda: Dense(None), ["units", "None"]),
    "pool_size_0": (lambda: MaxPooling2D(0), ["pool_size", "0"]),
    "pool_size_negative": (lambda: MaxPooling2D((2, -2)), ["pool_size", "(2, -2)"]),
    "pool_strides_0": (lambda: MaxPooling2D(2, strides=0), ["strides", "0"]),
    "input_shape_zero": (lambda: Dense(3, input_shape=(0,)), ["input_shape", "(0,)"]),
    "input_shape_empty": (lambda: Dense(3, input_shape=()), ["input_shape", "()"]),
    "input_shape_not_a_tuple": (lambda: Dense(3, input_shape=5), ["input_shape", "5"]),
    "layer_name_empty": (lambda: Dense(3, name=""), ["name", "''"]),
    "conv_kernel_larger_than_input": (
        lambda: Sequential([Conv2D(2, 7, input_shape=(6, 6, 1))]),
        ["kernel (7, 7)", "larger than its padded input", "(6, 6)"],
    ),
    "conv_kernel_larger_than_padded_input": (
        lambda: Sequential([Conv2D(2, 9, padding=1, input_shape=(6, 6, 1))]),
        ["kernel (9, 9)", "(6, 6)", "(1, 1)"],
    ),
    "conv_kernel_too_tall": (
        lambda: Sequential([Conv2D(2, (7, 1), input_shape=(6, 6, 1))]),
        ["kernel (7, 1)", "(6, 6)"],
    ),
    "pool_larger_than_input": (
        lambda: Sequential([MaxPooling2D(7, input_shape=(6, 6, 1))]),
        ["(7, 7)", "larger than its padded input"],
    ),
    "kernel_larger_than_a_later_input": (
        lambda: Sequential([Conv2D(2, 3, input_shape=(6, 6, 1)), MaxPooling2D(2), Conv2D(2, 3)]),
        ["kernel (3, 3)", "(2, 2)"],
    ),
    "conv_on_flat_input": (
        lambda: Sequential([Conv2D(2, 3, input_shape=(10,))]),
        ["(height, width, channels)", "(10,)"],
    ),
    "dense_on_image_input": (
        lambda: Sequential([Dense(2, input_shape=(4, 4, 1))]),
        ["(4, 4, 1)", "Flatten"],
    ),
    "dropout_rate_1": (lambda: Dropout(1.0), ["Dropout rate", "[0, 1)", "1.0"]),
    "dropout_rate_negative": (lambda: Dropout(-0.1), ["rate", "-0.1"]),
    "dropout_rate_string": (lambda: Dropout("0.5"), ["rate", "'0.5'"]),
    "dropout_rate_none": (lambda: Dropout(None), ["rate", "None"]),
    "spatial_dropout_rate": (lambda: SpatialDropout2D(1.5), ["SpatialDropout2D rate", "1.5"]),
    "dropout_seed_negative": (lambda: Dropout(0.5, seed=-1), ["seed", "-1"]),
    "dropout_noise_shape_zero": (
        lambda: Dropout(0.5, noise_shape=(None, 0)),
        ["noise_shape", "(None, 0)"],
    ),
    "dropout_noise_shape_rank": (
        lambda: Sequential([Dropout(0.5, noise_shape=(None, 1), input_shape=(4, 4))]),
        ["noise_shape", "(None, 1)", "(None, 4, 4)", "batch axis counts"],
    ),
    "dropout_noise_shape_size": (
        lambda: Sequential([Dropout(0.5, noise_shape=(None, 3), input_shape=(4,))]),
        ["noise_shape", "(None, 3)", "(None, 4)"],
    ),
    "spatial_dropout_on_flat_input": (
        lambda: Sequential([SpatialDropout2D(0.2, input_shape=(10,))]),
        ["(height, width, channels)", "(10,)"],
    ),
    "spatial_dropout_data_format": (
        lambda: SpatialDropout2D(0.2, data_format="nhwc"),
        ["data_format", "'nhwc'", "channels_last"],
    ),
    "bn_momentum": (lambda: BatchNormalization(momentum=1.5), ["momentum", "[0, 1]", "1.5"]),
    "bn_momentum_negative": (lambda: BatchNormalization(momentum=-0.1), ["momentum", "-0.1"]),
    "bn_epsilon_negative": (
        lambda: BatchNormalization(epsilon=-1e-3),
        ["epsilon", ">= 0", "-0.001"],
    ),
    "bn_epsilon_nan": (lambda: BatchNormalization(epsilon=float("nan")), ["epsilon", "nan"]),
    "bn_axis_out_of_range": (
        lambda: Sequential([BatchNormalization(axis=4, input_shape=(3, 3, 2))]),
        ["axis 4", "out of range", "(None, 3, 3, 2)"],
    ),
    "bn_axis_negative_out_of_range": (
        lambda: Sequential([BatchNormalization(axis=-3, input_shape=(5,))]),
        ["axis -3", "out of range", "(None, 5)"],
    ),
    "bn_batch_axis": (
        lambda: Sequential([BatchNormalization(axis=0, input_shape=(5,))]),
        ["axis 0", "batch axis"],
    ),
    "bn_axis_list": (lambda: BatchNormalization(axis=[1, 2]), ["axis", "an int", "[1, 2]"]),
    "bn_axis_float": (lambda: BatchNormalization(axis=-1.0), ["axis", "-1.0"]),
    "ln_epsilon_negative": (lambda: LayerNormalization(epsilon=-1), ["epsilon", "-1"]),
    "ln_axis_out_of_range": (
        lambda: Sequential([LayerNormalization(axis=[1, 5], input_shape=(3, 3, 2))]),
        ["axis 5", "out of range", "(None, 3, 3, 2)"],
    ),
    "ln_axis_twice": (
        lambda: Sequential([LayerNormalization(axis=[-1, 3], input_shape=(3, 3, 2))]),
        ["axis [-1, 3]", "twice"],
    ),
    "ln_axis_string": (lambda: LayerNormalization(axis="channels"), ["axis", "'channels'"]),
    "sgd_learning_rate_0": (lambda: optim.SGD(learning_rate=0), ["learning_rate", "positive"]),
    "adam_learning_rate_negative": (lambda: optim.Adam(-0.1), ["learning_rate", "-0.1"]),
    "learning_rate_nan": (lambda: optim.RMSprop(float("nan")), ["learning_rate", "nan"]),
    "learning_rate_inf": (lambda: optim.Adagrad(float("inf")), ["learning_rate", "inf"]),
    "learning_rate_string": (lambda: optim.SGD("0.1"), ["learning_rate", "'0.1'"]),
    "learning_rate_bool": (lambda: optim.SGD(True), ["learning_rate", "True"]),
    "sgd_momentum": (lambda: optim.SGD(momentum=1.5), ["momentum", "[0, 1]", "1.5"]),
    "sgd_momentum_negative": (lambda: optim.SGD(momentum=-0.1), ["momentum", "-0.1"]),
    "adam_beta_1": (lambda: optim.Adam(beta_1=1.0), ["beta_1", "[0, 1)", "1.0"]),
    "adam_beta_2": (lambda: optim.Adam(beta_2=-0.5), ["beta_2", "-0.5"]),
    "adam_epsilon": (lambda: optim.Adam(epsilon=-1e-7), ["epsilon", ">= 0"]),
    "rmsprop_rho": (lambda: optim.RMSprop(rho=2), ["rho", "2"]),
    "adagrad_accumulator": (
        lambda: optim.Adagrad(initial_accumulator_value=-1),
        ["initial_accumulator_value", "-1"],
    ),
    "checkpoint_mode": (lambda: ModelCheckpoint("m.npz", mode="up"), ["'up'", "min", "max"]),
    "checkpoint_path": (lambda: ModelCheckpoint(None), ["filepath", "None"]),
    "sequential_add_non_layer": (lambda: Sequential(["dense"]), ["Layer", "'dense'"]),
    "sequential_build_empty": (lambda: Sequential().build((3,)), ["no layers"]),
}


@pytest.mark.parametrize("case", list(LAYER_ARG_CASES))
def test_out_of_range_arguments_are_refused(case):
    call, words = LAYER_ARG_CASES[case]
    refused(call, (ValueError, TypeError), words)


def test_numpy_numbers_are_accepted_as_arguments():
    assert optim.Adam(np.float32(0.5)).learning_rate == 0.5
    assert optim.SGD(np.float64(0.1), momentum=np.float32(0.5)).momentum == 0.5
    assert Dense(np.int64(4)).units == 4 and type(Dense(np.int64(4)).units) is int
    assert Conv2D(np.int32(2), np.int64(3)).kernel_size == (3, 3)


def test_kernel_too_large_for_the_data_leaves_the_model_unbuilt():
    model = Sequential([Conv2D(2, 5), Flatten(), Dense(3)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = data()
    refused(
        lambda: model.fit(x[:, :4, :4], y, verbose=0),
        ValueError,
        ["kernel (5, 5)", "(4, 4)"],
        model,
    )
    assert not any(layer.built for layer in model.layers)
    model.fit(x, y, verbose=0)
    assert model.built


# -- validation data that does not match ----------------------------------------------------

VALIDATION_CASES = {
    "not_a_tuple": (lambda x, y: x, ValueError, ["validation_data", "(x_val, y_val)", "ndarray"]),
    "three_items": (lambda x, y: (x, y, y), ValueError, ["(x_val, y_val)", "length 3"]),
    "one_item": (lambda x, y: (x,), ValueError, ["(x_val, y_val)", "length 1"]),
    "wrong_shape": (
        lambda x, y: (x[:, :5], y),
        ValueError,
        ["validation_data x", "(N, 6, 6, 1)", "(8, 5, 6, 1)"],
    ),
    "wrong_channels": (
        lambda x, y: (np.repeat(x, 3, -1), y),
        ValueError,
        ["validation_data x", "(8, 6, 6, 3)"],
    ),
    "missing_channel_axis": (
        lambda x, y: (x[..., 0], y),
        ValueError,
        ["validation_data x", "channel axis"],
    ),
    "lengths_differ": (
        lambda x, y: (x, y[:3]),
        ValueError,
        ["validation_data y", "8 samples", "3"],
    ),
    "label_out_of_range": (lambda x, y: (x, y + 3), ValueError, ["validation_data y", "0..2"]),
    "one_hot_labels": (lambda x, y: (x, np.eye(3)[y]), ValueError, ["validation_data y", "(8, 3)"]),
    "string_inputs": (lambda x, y: (x.astype(str), y), TypeError, ["validation_data x"]),
    "empty": (lambda x, y: (x[:0], y[:0]), ValueError, ["validation_data x", "at least one"]),
}


@pytest.mark.parametrize("case", list(VALIDATION_CASES))
def test_validation_data_that_does_not_match_fails_before_training(case):
    make, error, words = VALIDATION_CASES[case]
    model = small_model()
    x, y = data()
    refused(
        lambda: model.fit(x, y, validation_data=make(x, y), batch_size=4, verbose=0),
        error,
        words,
        model,
    )
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("built", [True, False])
def test_validation_data_checked_against_training_data_on_unbuilt_model(built):
    model = small_model(built=built)
    x, y = data()
    refused(
        lambda: model.fit(x, y, validation_data=(x[:, :, :5], y), verbose=0),
        ValueError,
        ["validation_data x", "(8, 6, 5, 1)"],
        model,
    )


# -- set_weights ------------------------------------------------------------------------------

SET_WEIGHTS_CASES = {
    "one_too_few": (lambda w: w[:-1], ValueError, ["4 arrays", "got 3"]),
    "one_too_many": (lambda w: [*w, w[-1]], ValueError, ["4 arrays", "got 5"]),
    "empty_list": (lambda w: [], ValueError, ["4 arrays", "got 0"]),
    "transposed_kernel": (
        lambda w: [w[0].T, *w[1:]],
        ValueError,
        ["kernel", "(3, 3, 1, 2)", "(2, 1, 3, 3)"],
    ),
    "wrong_bias_shape": (
        lambda w: [*w[:3], np.zeros(4, np.float32)],
        ValueError,
        ["bias", "(3,)", "(4,)"],
    ),
    "last_array_wrong": (
        lambda w: [*w[:2], w[2][:-1], w[3]],
        ValueError,
        ["kernel", "(8, 3)", "(7, 3)"],
    ),
    "swapped_order": (lambda w: [w[1], w[0], *w[2:]], ValueError, ["(3, 3, 1, 2)", "(2,)"]),
    "strings": (lambda w: [np.full(a.shape, "x") for a in w], ValueError, ["numbers", "<U1"]),
    "objects": (lambda w: [a.astype(object) for a in w], ValueError, ["numbers", "object"]),
    "complex": (lambda w: [a.astype(complex) for a in w], ValueError, ["numbers", "complex"]),
    "ragged_element": (lambda w: [[[1, 2], [3]], *w[1:]], TypeError, ["kernel", "numbers"]),
    "none": (lambda w: None, TypeError, ["list of 4 arrays", "NoneType"]),
    "a_single_array": (lambda w: w[0], TypeError, ["list of 4 arrays", "ndarray"]),
    "a_dict": (lambda w: {"kernel": w[0]}, TypeError, ["list of 4 arrays", "dict"]),
    "a_number": (lambda w: 3.0, TypeError, ["list of 4 arrays", "float"]),
}


@pytest.mark.parametrize("case", list(SET_WEIGHTS_CASES))
def test_set_weights_refuses_and_changes_nothing(case):
    make, error, words = SET_WEIGHTS_CASES[case]
    model = small_model()
    x, y = data()
    model.fit(x, y, verbose=0)  # optimizer slots exist too
    weights = [w * 0 + 7 for w in model.get_weights()]  # different values: a change would show
    refused(lambda: model.set_weights(make(weights)), error, words, model)


def test_set_weights_before_build_is_refused():
    model = small_model(built=False)
    refused(lambda: model.set_weights([]), ValueError, ["set_weights", "not built"], model)


# -- ModelCheckpoint typos fail before the first epoch, not after it -------------------------


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (
            {"monitor": "val_los", "save_best_only": True},
            ["'val_los'", "loss", "accuracy", "val_loss"],
        ),
        ({"filepath": "ckpt-{val_acc:.2f}.npz"}, ["val_acc", "epoch", "val_loss"]),
        ({"filepath": "ckpt-{epoch:02d}-{0}.npz"}, ["ckpt-{epoch:02d}-{0}.npz"]),
    ],
    ids=["monitor_typo", "filepath_unknown_key", "filepath_positional_field"],
)
def test_checkpoint_typos_fail_before_training(tmp_path, kwargs, words):
    model = small_model()
    x, y = data()
    args = {"filepath": str(tmp_path / "ckpt-{epoch}.npz"), **kwargs}
    if "{" in args["filepath"] and not args["filepath"].startswith(str(tmp_path)):
        args["filepath"] = str(tmp_path / args["filepath"])
    callback = ModelCheckpoint(**args)
    refused(
        lambda: model.fit(x, y, validation_data=(x, y), callbacks=[callback], verbose=0),
        ValueError,
        words,
        model,
    )
    assert model.optimizer.iterations == 0
    assert list(tmp_path.iterdir()) == []


def test_bad_callbacks_are_refused():
    model = small_model()
    x, y = data()
    refused(lambda: model.fit(x, y, callbacks=[print], verbose=0), TypeError, ["Callback"], model)
