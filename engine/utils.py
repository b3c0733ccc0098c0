"""Small helpers shared by the engine: random seeding, names, argument checks, one-hot
labels; and, as keras.utils, PyDataset (engine/py_dataset.py) and
image_dataset_from_directory (engine/datasets/image_dataset.py)."""

import numbers
import random
import re
from collections import defaultdict

import numpy as np

from engine.py_dataset import PyDataset  # noqa: F401  (keras.utils.PyDataset)

_rng = np.random.default_rng()
_name_counts = defaultdict(int)


def __getattr__(name):
    # keras.utils.image_dataset_from_directory, loaded on first use: the datasets import
    # this module, so it cannot import them while it starts.
    if name == "image_dataset_from_directory":
        from engine.datasets import image_dataset_from_directory

        return image_dataset_from_directory
    raise AttributeError(f"module 'engine.utils' has no attribute {name!r}")


def is_int(value):
    """True for a Python or NumPy integer, never for a bool (which Python counts as an int)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(value, what):
    """``value`` as an int, or ValueError "<what> must be a positive int, got ..."."""
    if not is_int(value) or value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value!r}.")
    return int(value)


def check_number(name, value, low=None, high=None, high_open=False, low_open=False):
    """``value`` as a float after checking it is a finite real number in [low, high].

    Python and NumPy numbers are accepted (not bools); ``low_open``/``high_open``
    exclude the bound. The ValueError names the argument, the value and the range.
    """
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or (low is not None and (value <= low if low_open else value < low))
        or (high is not None and (value >= high if high_open else value > high))
    ):
        if low is not None and high is not None:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            expected = f"a number in {left}{low}, {high}{right}"
        elif low == 0 and low_open:
            expected = "a positive finite number"
        elif low is not None:
            expected = f"a finite number {'>' if low_open else '>='} {low}"
        else:
            expected = "a finite number"
        raise ValueError(f"{name} must be {expected}, got {value!r}.")
    return float(value)


def to_categorical(x, num_classes=None):
    """Integer class labels (N, ...) as one-hot float64 rows (N, ..., num_classes), as
    keras.utils.to_categorical (a trailing axis of size 1 is dropped first).

    ``num_classes`` defaults to the largest label + 1. Labels must be whole numbers in
    0..num_classes - 1 (Keras would wrap a negative one around silently).
    """
    if num_classes is not None:
        num_classes = positive_int(num_classes, "to_categorical: num_classes")
    try:
        labels = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"to_categorical: labels must be an array of numbers ({exc}).") from None
    if labels.dtype.kind not in "biuf" or labels.dtype.kind == "b":
        raise TypeError(f"to_categorical: labels must be integers, got dtype {labels.dtype}.")
    whole = np.isfinite(labels) & (labels == np.round(labels)) if labels.dtype.kind == "f" else None
    if whole is not None and not whole.all():
        bad = labels[~whole].flat[0]
        raise ValueError(f"to_categorical: labels must be whole numbers, got {bad}.")
    shape = labels.shape[:-1] if labels.ndim > 1 and labels.shape[-1] == 1 else labels.shape
    flat = labels.reshape(-1).astype(np.int64)
    if num_classes is None:
        if not flat.size:
            raise ValueError("to_categorical: give num_classes for an empty array of labels.")
        num_classes = int(flat.max()) + 1
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        bad = flat.min() if flat.min() < 0 else flat.max()
        raise ValueError(f"to_categorical: label {bad} is outside 0..{num_classes - 1}.")
    one_hot = np.zeros((flat.size, num_classes))
    one_hot[np.arange(flat.size), flat] = 1
    return one_hot.reshape(*shape, num_classes)


def set_random_seed(seed):
    """Seed weight initialisation (and Python's and NumPy's global RNGs), as keras.utils."""
    global _rng
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    _rng = np.random.default_rng(int(seed))


def global_rng():
    """The generator weight initialisers draw from."""
    return _rng


def snake_case(name):
    """'MaxPooling2D' -> 'max_pooling2d', as Keras names layers."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)  # keras/src/utils/naming.py
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base):
    """'conv2d', 'conv2d_1', 'conv2d_2', ... as Keras numbers layer names."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


def as_pair(value, what):
    """An int or a pair of positive ints -> a pair (kernel sizes, strides, pool sizes)."""
    if is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_int, value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}.")
    if min(pair) <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}.")
    return pair


def standardize_shape(shape, what="input_shape"):
    """A per-sample shape tuple; a leading None batch axis (Keras's form) is dropped."""
    try:
        shape = tuple(shape)
    except TypeError:
        raise ValueError(f"{what} must be a tuple of ints, got {shape!r}.") from None
    if shape and shape[0] is None:
        shape = shape[1:]
    if not shape or not all(is_int(d) and d > 0 for d in shape):
        raise ValueError(f"{what} must be a non-empty tuple of positive ints, got {shape!r}.")
    return tuple(int(d) for d in shape)
