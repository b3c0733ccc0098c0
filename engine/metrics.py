"""Metrics with Keras's names: stateful objects whose totals stay on the device.

    m = metrics.get("accuracy", loss)      # or SparseCategoricalAccuracy(), ...
    m.update_state(y_true, y_pred)         # once per batch: device arithmetic only
    m.result()                             # a 0-d device array; float() it to read it
    m.reset_state()

``result()`` is not read back to the host at every step: fit reads the metrics at its
sync points only (every step on the CPU, every 50th on the GPU). The functions
(sparse_categorical_accuracy, ...) return one value per sample, as Keras's do.
"""

import numpy as np

from engine import backend, losses, utils

# -- per-sample functions -----------------------------------------------------------


def _labels(y_true, y_pred):
    labels = backend.get_array_module(y_pred).asarray(y_true)
    if labels.ndim == y_pred.ndim:
        labels = labels[..., 0]
    return labels


def sparse_categorical_accuracy(y_true, y_pred):
    return (y_pred.argmax(axis=-1) == _labels(y_true, y_pred)).astype(y_pred.dtype)


def categorical_accuracy(y_true, y_pred):
    xp = backend.get_array_module(y_pred)
    return (y_pred.argmax(axis=-1) == xp.asarray(y_true).argmax(axis=-1)).astype(y_pred.dtype)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    xp = backend.get_array_module(y_pred)
    hits = (y_pred > threshold) == (xp.asarray(y_true) > threshold)
    return hits.mean(axis=-1).astype(y_pred.dtype)  # the mean over the last axis, as Keras


def _in_top_k(scores, labels, k):
    """True where the label's score is among the k largest (ties count for the label)."""
    xp = backend.get_array_module(scores)
    rows = xp.arange(scores.shape[0])
    label_scores = scores[rows, labels]
    return (scores > label_scores[:, None]).sum(axis=-1) < k


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    k_scores = y_pred.reshape(-1, y_pred.shape[-1])
    labels = _labels(y_true, y_pred).reshape(-1).astype(np.int64)
    return _in_top_k(k_scores, labels, k).reshape(y_pred.shape[:-1]).astype(y_pred.dtype)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    xp = backend.get_array_module(y_pred)
    labels = xp.asarray(y_true).argmax(axis=-1)
    return sparse_top_k_categorical_accuracy(labels, y_pred, k)


def mean_squared_error(y_true, y_pred):
    t = backend.get_array_module(y_pred).asarray(y_true, dtype=y_pred.dtype)
    return ((y_pred - t) ** 2).mean(axis=-1)


def mean_absolute_error(y_true, y_pred):
    xp = backend.get_array_module(y_pred)
    return xp.abs(y_pred - xp.asarray(y_true, dtype=y_pred.dtype)).mean(axis=-1)


# -- metric objects -------------------------------------------------------------------


class Metric:
    """Base class: update_state, result, reset_state, as keras.metrics.Metric.

    ``direction`` ('up', 'down' or None) says whether larger values are better, as Keras's
    ``_direction``: EarlyStopping and ReduceLROnPlateau read it in mode='auto'.
    """

    direction = None

    def __init__(self, name=None):
        self.name = name or utils.snake_case(type(self).__name__)
        self.reset_state()

    def reset_state(self):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class Mean(Metric):
    """The (weighted) mean of the values given to update_state."""

    def reset_state(self):
        xp = backend.xp()
        self.total = xp.zeros((), dtype=np.float64)
        self.count = xp.zeros((), dtype=np.float64)

    def update_state(self, values, sample_weight=None):
        if sample_weight is None:
            self.total += values.sum()
            self.count += values.size
            return
        if isinstance(sample_weight, (int, float)):  # one weight for all: a batch's size
            self.total += values.sum() * sample_weight
            self.count += values.size * sample_weight
            return
        xp = backend.get_array_module(values)
        weights = xp.broadcast_to(_per_sample(sample_weight, values), values.shape)
        self.total += (values * weights).sum()
        self.count += weights.sum()

    def result(self):
        xp = backend.get_array_module(self.total)
        return xp.where(self.count > 0, self.total / xp.maximum(self.count, 1e-300), 0.0)


def _per_sample(sample_weight, values):
    """Sample weights (N,) shaped to broadcast against per-sample values (N, ...)."""
    xp = backend.get_array_module(values)
    w = xp.asarray(sample_weight, dtype=values.dtype)
    return w.reshape(w.shape + (1,) * (values.ndim - w.ndim))


class MeanMetricWrapper(Mean):
    """The mean over all samples of a per-sample function ``fn(y_true, y_pred)``."""

    def __init__(self, fn, name=None, **fn_kwargs):
        self.fn, self.fn_kwargs = fn, fn_kwargs
        super().__init__(name=name or fn.__name__)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self.fn(y_true, y_pred, **self.fn_kwargs), sample_weight)

    def get_config(self):
        return {**super().get_config(), **self.fn_kwargs}


def _wrapper(fn, default_name, direction, **defaults):
    """A MeanMetricWrapper class for ``fn``, as Keras defines SparseCategoricalAccuracy etc."""

    class Wrapped(MeanMetricWrapper):
        def __init__(self, name=default_name, **kwargs):
            super().__init__(fn, name=name, **{**defaults, **kwargs})

    Wrapped.direction = direction
    return Wrapped


class SparseCategoricalAccuracy(
    _wrapper(sparse_categorical_accuracy, "sparse_categorical_accuracy", "up")
):
    """The fraction of samples whose largest score is at the integer label."""


class CategoricalAccuracy(_wrapper(categorical_accuracy, "categorical_accuracy", "up")):
    """The fraction of samples whose largest score is at the one-hot label's position."""


class BinaryAccuracy(_wrapper(binary_accuracy, "binary_accuracy", "up", threshold=0.5)):
    """The fraction of outputs on the same side of ``threshold`` as their targets."""


class SparseTopKCategoricalAccuracy(
    _wrapper(sparse_top_k_categorical_accuracy, "sparse_top_k_categorical_accuracy", "up", k=5)
):
    """The fraction of samples whose label is among the k largest scores."""


class TopKCategoricalAccuracy(
    _wrapper(top_k_categorical_accuracy, "top_k_categorical_accuracy", "up", k=5)
):
    """As SparseTopKCategoricalAccuracy, with one-hot labels."""


class MeanSquaredError(_wrapper(mean_squared_error, "mean_squared_error", "down")):
    """The mean of (y_pred - y_true)^2."""


class MeanAbsoluteError(_wrapper(mean_absolute_error, "mean_absolute_error", "down")):
    """The mean of |y_pred - y_true|."""


NEG_INF = -1e10  # Keras's threshold when top_k picks the positives (metrics_utils.NEG_INF)


class _Confusion(Metric):
    """True/false positive and false negative counts, as Keras's confusion metrics.

    A prediction is positive where y_pred > ``thresholds`` (one number, default 0.5);
    a target is positive where it is non-zero (Keras casts it to bool). ``top_k``: only
    each sample's k largest predictions may be positive (then the threshold defaults to
    -1e10); ``class_id``: count only that class (the last axis's entry).
    """

    direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None):
        threshold = (0.5 if top_k is None else NEG_INF) if thresholds is None else thresholds
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
            raise ValueError(
                f"{type(self).__name__} takes one threshold (a number), got {thresholds!r}."
            )
        if thresholds is not None and not 0 <= threshold <= 1:
            raise ValueError(
                f"{type(self).__name__} takes one threshold in [0, 1], got {thresholds!r}."
            )
        if top_k is not None:
            utils.positive_int(top_k, f"{type(self).__name__} top_k")
        if class_id is not None and (not utils.is_int(class_id) or class_id < 0):
            raise ValueError(
                f"{type(self).__name__} class_id must be a class index >= 0, got {class_id!r}."
            )
        self.threshold = float(threshold)
        self.init_thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        super().__init__(name=name)

    def get_config(self):
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }

    def reset_state(self):
        xp = backend.xp()
        self.true_positives = xp.zeros((), dtype=np.float64)
        self.false_positives = xp.zeros((), dtype=np.float64)
        self.false_negatives = xp.zeros((), dtype=np.float64)

    def update_state(self, y_true, y_pred, sample_weight=None):
        xp = backend.get_array_module(y_pred)
        truth = xp.asarray(y_true).reshape(y_pred.shape) != 0
        if self.top_k is not None:
            # The k largest of each row keep their value, the others drop to NEG_INF; of
            # tied scores the first ranks higher, as Keras's top_k.
            ranks = xp.argsort(xp.argsort(-y_pred, axis=-1, kind="stable"), axis=-1)
            y_pred = xp.where(ranks < self.top_k, y_pred, NEG_INF)
        w = None if sample_weight is None else _per_sample(sample_weight, y_pred)
        if self.class_id is not None:
            if y_pred.ndim < 2 or self.class_id >= y_pred.shape[-1]:
                raise ValueError(
                    f"{type(self).__name__} class_id={self.class_id} needs outputs of shape "
                    f"(N, K) with K > {self.class_id}, got {y_pred.shape}."
                )
            truth, y_pred = truth[..., self.class_id], y_pred[..., self.class_id]
            if w is not None:
                w = w[..., 0] if w.shape[-1] == 1 else w[..., self.class_id]
        predicted = y_pred > self.threshold
        w = 1.0 if w is None else w
        self.true_positives += (w * (truth & predicted)).sum()
        self.false_positives += (w * (~truth & predicted)).sum()
        self.false_negatives += (w * (truth & ~predicted)).sum()

    def _ratio(self, part, other):
        xp = backend.get_array_module(part)
        total = part + other
        return xp.where(total > 0, part / xp.maximum(total, 1e-300), 0.0)


class Precision(_Confusion):
    """true positives / predicted positives."""

    def result(self):
        return self._ratio(self.true_positives, self.false_positives)


class Recall(_Confusion):
    """true positives / actual positives."""

    def result(self):
        return self._ratio(self.true_positives, self.false_negatives)


METRICS = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "precision": Precision,
    "recall": Recall,
}
ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}


def get(identifier, loss=None):
    """A Metric from an instance or a Keras name; 'accuracy'/'acc' picks the variant that
    matches the loss (sparse labels, one-hot labels, or binary outputs), named 'accuracy'."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise ValueError(f"Metrics are given by name or as Metric objects, got {identifier!r}.")
    name = identifier.lower()
    if name in ("accuracy", "acc"):
        if isinstance(loss, losses.SparseCategoricalCrossentropy):
            return SparseCategoricalAccuracy(name="accuracy")
        if isinstance(loss, losses.BinaryCrossentropy):
            return BinaryAccuracy(name="accuracy")
        return CategoricalAccuracy(name="accuracy")
    key = ALIASES.get(name, name)
    if key in METRICS:
        return METRICS[key](name=name)
    raise ValueError(
        f"Unknown metric {identifier!r}; expected one of accuracy, "
        f"{', '.join([*METRICS, *ALIASES])}."
    )
