"""Weight initialisers with Keras's names and formulas (keras/src/initializers/).

Each is a function ``(shape, rng) -> float64 ndarray`` drawn on the host; the
layer casts it to floatx() and moves it to the device.
"""

import math

import numpy as np

# Keras's truncated normal keeps draws within 2 stddev; this rescales to the target std.
_TRUNCATED_STD = 0.87962566103423978


def _fans(shape):
    """fan_in, fan_out for Dense (in, out) and Conv (kh, kw, in, out) kernels."""
    if len(shape) < 2:
        return shape[0] if shape else 1, shape[0] if shape else 1
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(shape, std, rng):
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * std


def _variance_scaling(scale, mode, distribution):
    def init(shape, rng):
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, fan)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, size=shape)
        return _truncated_normal(shape, math.sqrt(variance) / _TRUNCATED_STD, rng)

    return init


def zeros(shape, rng=None):
    return np.zeros(shape)


def ones(shape, rng=None):
    return np.ones(shape)


INITIALIZERS = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "zeros": zeros,
    "ones": ones,
}


def get(identifier):
    """An initialiser from its Keras name, or a callable (shape, rng) -> array as is."""
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in INITIALIZERS:
        return INITIALIZERS[identifier]
    raise ValueError(
        f"Unknown initializer {identifier!r}; expected a callable or one of "
        f"{', '.join(sorted(INITIALIZERS))}."
    )
