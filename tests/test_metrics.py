"""Metrics against values computed by hand: the accuracies, top-k, mae/mse, Precision and
Recall (thresholds, top_k, class_id, sample weights), weighted_metrics in compile, and
utils.to_categorical."""

import numpy as np
import pytest

import engine
from engine import backend, metrics

SCORES = np.array(
    [
        [0.1, 0.6, 0.3],  # top: 1, then 2
        [0.5, 0.2, 0.3],  # top: 0, then 2
        [0.2, 0.3, 0.5],  # top: 2, then 1
        [0.4, 0.4, 0.2],  # a tie between 0 and 1
    ]
)
LABELS = np.array([1, 2, 1, 1])
WEIGHTS = np.array([1.0, 2.0, 0.0, 0.5])


def result(metric, y_true, y_pred, sample_weight=None):
    metric.update_state(
        backend.to_device(y_true),
        backend.to_device(y_pred),
        None if sample_weight is None else backend.to_device(sample_weight),
    )
    return float(backend.to_numpy(metric.result()))


def test_accuracies(backend_name):
    assert result(metrics.SparseCategoricalAccuracy(), LABELS, SCORES) == 0.25
    # argmax picks the first of tied scores, as NumPy and Keras do: row 3 -> class 0.
    assert result(metrics.CategoricalAccuracy(), np.eye(3)[LABELS], SCORES) == 0.25
    weighted = result(metrics.SparseCategoricalAccuracy(), LABELS, SCORES, WEIGHTS)
    assert weighted == pytest.approx(1 / 3.5)


def test_sparse_top_k_counts_ties_for_the_label(backend_name):
    # k=2: row 0 yes (rank 1), row 1 yes (rank 2), row 2 yes (rank 2), row 3 yes (a tie).
    assert result(metrics.SparseTopKCategoricalAccuracy(k=2), LABELS, SCORES) == 1.0
    # k=1: only row 0, and row 3 whose label ties for the top score.
    assert result(metrics.SparseTopKCategoricalAccuracy(k=1), LABELS, SCORES) == 0.5
    assert result(metrics.TopKCategoricalAccuracy(k=1), np.eye(3)[LABELS], SCORES) == 0.5
    assert metrics.get("sparse_top_k_categorical_accuracy").fn_kwargs == {"k": 5}


def test_mae_and_mse_by_name(backend_name):
    y_true, y_pred = np.array([[0.0, 1.0], [2.0, 2.0]]), np.array([[1.0, 1.0], [0.0, 3.0]])
    assert result(metrics.get("mae"), y_true, y_pred) == pytest.approx(1.0)  # (1+0+2+1)/4
    assert result(metrics.get("mse"), y_true, y_pred) == pytest.approx(1.5)  # (1+0+4+1)/4
    assert metrics.get("mae").name == "mae" and metrics.get("mse").direction == "down"
    weighted = result(metrics.get("mse"), y_true, y_pred, np.array([3.0, 1.0]))
    assert weighted == pytest.approx((3 * 0.5 + 1 * 2.5) / 4)


def test_precision_and_recall(backend_name):
    y_true = np.array([[1], [0], [1], [1], [0]])
    y_pred = np.array([[0.9], [0.8], [0.4], [0.6], [0.1]])
    # predicted positive: rows 0, 1, 3: tp 2, fp 1; actual positives 0, 2, 3: fn 1
    assert result(metrics.Precision(), y_true, y_pred) == pytest.approx(2 / 3)
    assert result(metrics.Recall(), y_true, y_pred) == pytest.approx(2 / 3)
    assert result(metrics.Precision(thresholds=0.7), y_true, y_pred) == pytest.approx(1 / 2)
    assert result(metrics.Recall(thresholds=0.3), y_true, y_pred) == pytest.approx(1.0)
    w = np.array([1.0, 3.0, 1.0, 1.0, 1.0])
    assert result(metrics.Precision(), y_true, y_pred, w) == pytest.approx(2 / 5)
    # Any non-zero target is positive, as Keras casts targets to bool.
    assert result(metrics.Recall(), 0.5 * y_true, y_pred) == pytest.approx(2 / 3)
    assert float(backend.to_numpy(metrics.Precision().result())) == 0.0  # nothing seen yet


def test_precision_and_recall_with_top_k_and_class_id(backend_name):
    y_true = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1]])
    y_pred = np.array([[0.2, 0.9, 0.1], [0.3, 0.8, 0.7], [0.6, 0.1, 0.35]])
    # top_k=1: the positives are each row's largest: (0,1), (1,1), (2,0); tp 1, fp 2
    assert result(metrics.Precision(top_k=1), y_true, y_pred) == pytest.approx(1 / 3)
    assert result(metrics.Recall(top_k=1), y_true, y_pred) == pytest.approx(1 / 4)
    # class_id=2: predictions 0.1, 0.7, 0.35 against targets 1, 0, 1: tp 0, fp 1, fn 2
    assert result(metrics.Precision(class_id=2), y_true, y_pred) == 0.0
    assert result(metrics.Recall(class_id=2, thresholds=0.3), y_true, y_pred) == 0.5
    assert result(metrics.Precision(top_k=2, class_id=2), y_true, y_pred) == pytest.approx(1 / 2)
    # Of tied scores the first is in the top k, as Keras's top_k: here class 0, a miss.
    tied = np.array([[0.5, 0.5, 0.1]])
    assert result(metrics.Precision(top_k=1), np.array([[0, 1, 0]]), tied) == 0.0


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: metrics.Precision(thresholds=1.5), ["[0, 1]", "1.5"]),
        (lambda: metrics.Recall(thresholds=[0.1, 0.5]), ["one threshold", "[0.1, 0.5]"]),
        (lambda: metrics.Precision(top_k=0), ["top_k", "positive", "0"]),
        (lambda: metrics.Recall(class_id=-1), ["class_id", "-1"]),
        (lambda: metrics.get("f1"), ["'f1'", "accuracy", "precision"]),
    ],
)
def test_bad_metric_arguments_are_refused(make, words):
    with pytest.raises(ValueError) as excinfo:
        make()
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)


def test_class_id_beyond_the_outputs_is_refused():
    with pytest.raises(ValueError, match="class_id=3 needs outputs of shape"):
        result(metrics.Precision(class_id=3), np.eye(3), np.eye(3))


def test_metrics_by_name_in_compile_log_under_their_names():
    model = engine.Sequential([engine.layers.Dense(3, input_shape=(2,))])
    model.compile(
        "sgd",
        "categorical_crossentropy",
        metrics=["categorical_accuracy", "mae", "mse", "accuracy", "accuracy"],
        weighted_metrics=["mse", "precision"],
    )
    assert model.metrics_names == [
        "loss",
        "categorical_accuracy",
        "mae",
        "mse",
        "accuracy",
        "accuracy_1",  # a name used twice, as Keras
        "weighted_mse",  # a weighted metric whose name is taken, as Keras
        "precision",
    ]


def test_saved_models_keep_their_weighted_metrics(tmp_path):
    model = engine.Sequential([engine.layers.Dense(3, input_shape=(2,))])
    model.compile("sgd", "mse", metrics=["mae"], weighted_metrics=[metrics.Recall(top_k=2)])
    model.save(tmp_path / "m.npz")
    loaded = engine.load_model(tmp_path / "m.npz")
    assert loaded.metrics_names == ["loss", "mae", "recall"]
    assert loaded.compiled_metrics.weighted_per_output[0][0].top_k == 2


# -- to_categorical ------------------------------------------------------------------------


def test_to_categorical_as_keras():
    np.testing.assert_array_equal(engine.to_categorical([0, 2, 1]), np.eye(3)[[0, 2, 1]])
    assert engine.utils.to_categorical(np.array([[1], [0]]), 4).shape == (2, 4)  # (N, 1) squeezed
    assert engine.to_categorical(np.zeros((2, 3), int), 2).shape == (2, 3, 2)
    assert engine.to_categorical([1.0, 0.0]).dtype == np.float64
    np.testing.assert_array_equal(engine.to_categorical([], 3), np.zeros((0, 3)))


@pytest.mark.parametrize(
    "labels, num_classes, error, words",
    [
        ([0, 3], 3, ValueError, ["label 3", "0..2"]),
        ([-1, 0], None, ValueError, ["label -1"]),
        ([0.5], None, ValueError, ["whole numbers", "0.5"]),
        ([np.inf], None, ValueError, ["whole numbers", "inf"]),
        (["a"], None, TypeError, ["integers", "<U1"]),
        ([0, 1], 0, ValueError, ["num_classes", "positive", "0"]),
        ([], None, ValueError, ["num_classes", "empty"]),
    ],
)
def test_to_categorical_refuses_what_is_not_labels(labels, num_classes, error, words):
    with pytest.raises(error) as excinfo:
        engine.to_categorical(labels, num_classes)
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)
