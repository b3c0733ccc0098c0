"""Accuracy metrics, as counts of correct samples kept on the device.

Each metric returns the number of correct predictions in a batch as a 0-d
array, so fit can sum them on the GPU and synchronise once per epoch.
"""

from engine import backend, losses


def sparse_categorical_accuracy(y_true, y_pred):
    xp = backend.get_array_module(y_pred)
    labels = xp.asarray(y_true)
    if labels.ndim == y_pred.ndim:
        labels = labels[..., 0]
    return (y_pred.argmax(axis=-1) == labels).sum()


def categorical_accuracy(y_true, y_pred):
    xp = backend.get_array_module(y_pred)
    return (y_pred.argmax(axis=-1) == xp.asarray(y_true).argmax(axis=-1)).sum()


def binary_accuracy(y_true, y_pred, threshold=0.5):
    xp = backend.get_array_module(y_pred)
    hits = (y_pred > threshold) == (xp.asarray(y_true) > threshold)
    # Per sample, the mean over the last axis, as Keras's binary_accuracy.
    return hits.mean(axis=-1).sum()


METRICS = {
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "binary_accuracy": binary_accuracy,
}


def get(identifier, loss):
    """(name, function) for a metric name; 'accuracy'/'acc' picks the variant matching the loss."""
    if not isinstance(identifier, str):
        raise ValueError(f"Metrics are given by name, got {identifier!r}.")
    name = identifier.lower()
    if name in ("accuracy", "acc"):
        if isinstance(loss, losses.SparseCategoricalCrossentropy):
            return "accuracy", sparse_categorical_accuracy
        if isinstance(loss, losses.BinaryCrossentropy):
            return "accuracy", binary_accuracy
        return "accuracy", categorical_accuracy
    if name in METRICS:
        return name, METRICS[name]
    raise ValueError(
        f"Unknown metric {identifier!r}; expected one of accuracy, {', '.join(METRICS)}."
    )
