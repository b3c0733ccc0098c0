"""Central-difference gradient checks in float64 (Chainer's gradient_check, DeZero's utils).

For a function f of arrays, the scalar L = sum(f(...) * dy) with a fixed random dy
has d L / d a = the backward pass fed with dy; each element of a is nudged by
+-eps and the slope compared with it.
"""

import numpy as np

from engine import backend


def numerical_gradient(scalar_fn, array, eps=1e-6):
    """d scalar_fn() / d array by central differences; ``array`` is nudged in place."""
    grad = np.zeros(array.shape)
    flat = array.reshape(-1)  # a view: writes go to ``array``
    for i in range(flat.size):
        original = flat[i].item()
        flat[i] = original + eps
        plus = scalar_fn()
        flat[i] = original - eps
        minus = scalar_fn()
        flat[i] = original
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic, numeric):
    """max |analytic - numeric| / max |numeric|: 0 for identical gradients."""
    analytic, numeric = backend.to_numpy(analytic), backend.to_numpy(numeric)
    scale = max(np.abs(numeric).max(), 1e-12)
    return float(np.abs(analytic - numeric).max() / scale)


def check_layer_gradients(layer, x, rng, tol=1e-6):
    """Compare a layer's backward (input and every parameter) with central differences."""
    assert backend.to_numpy(x).dtype == np.float64, "gradient checks run in float64"
    y = layer.forward(x, training=True)
    dy = backend.to_device(rng.standard_normal(y.shape))
    dx = layer.backward(dy)
    analytic = {"input": dx, **{name: g.copy() for name, g in layer.grads.items()}}

    def scalar():
        return float(backend.to_numpy((layer.forward(x) * dy).sum()))

    errors = {"input": relative_error(analytic["input"], numerical_gradient(scalar, x))}
    for name, param in layer.params.items():
        errors[name] = relative_error(analytic[name], numerical_gradient(scalar, param))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= tol, (
        f"{layer.name}: gradient of {worst} off by {errors[worst]:.2e}: {errors}"
    )
    return errors
