"""Small helpers shared by the engine: random seeding, names, shape checks."""

import random
import re
from collections import defaultdict

import numpy as np

_rng = np.random.default_rng()
_name_counts = defaultdict(int)


def is_int(value):
    """True for a Python or NumPy integer, never for a bool (which Python counts as an int)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(value, what):
    """``value`` as an int, or ValueError "<what> must be a positive int, got ..."."""
    if not is_int(value) or value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value!r}.")
    return int(value)


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
