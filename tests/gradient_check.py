"""Central-difference gradient checks in float64 (Chainer's gradient_check, DeZero's utils).

For a function f of arrays, the scalar L = sum(f(...) * dy) with a fixed random dy
has d L / d a = the backward pass fed with dy; each element of a is nudged by
+-eps and the slope compared with it.
"""

import numpy as np

from engine import backend
from engine.context import Context


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


def training_context(key=(0,), **options):
    """A Context for a training call that backward follows (fixed randomness by ``key``)."""
    return Context(training=True, for_backward=True, key=key, **options)


def forward_backward(layer, x, dy, **options):
    """(y, dx, copies of the weight gradients) of one training forward and backward."""
    ctx = training_context(**options)
    y = layer.forward(x, ctx)
    dx = layer.backward(ctx, dy)
    return y, dx, {name: g.copy() for name, g in ctx.grads.items()}


def check_layer_gradients(layer, x, rng, tol=1e-6):
    """Compare a layer's backward (input and every weight) with central differences, in
    training mode with fixed randomness."""
    assert backend.to_numpy(x).dtype == np.float64, "gradient checks run in float64"
    y = layer.forward(x, training_context())
    dy = backend.to_device(rng.standard_normal(y.shape))
    _, dx, grads = forward_backward(layer, x, dy)
    analytic = {"input": dx, **grads}

    def scalar():
        return float(backend.to_numpy((layer.forward(x, training_context()) * dy).sum()))

    errors = {"input": relative_error(analytic["input"], numerical_gradient(scalar, x))}
    for name, param in layer.params.items():
        if name in analytic:
            errors[name] = relative_error(analytic[name], numerical_gradient(scalar, param))
    assert set(errors) == {"input", *(n for n in layer.params if n not in layer._non_trainable)}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= tol, (
        f"{layer.name}: gradient of {worst} off by {errors[worst]:.2e}: {errors}"
    )
    return errors


def check_model_gradients(model, inputs, rng, tol=1e-6):
    """Central differences for a whole model: every input and every trainable weight,
    through forward_with_tape and tape.backward (training mode, fixed randomness)."""
    inputs = inputs if isinstance(inputs, list) else [inputs]
    key = (0,)
    outputs, tape = model.forward_with_tape(inputs, key=key, input_gradients=True)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    dys = [backend.to_device(rng.standard_normal(o.shape)) for o in outputs]
    weights = model.trainable_weights
    dxs, grads = tape.backward(dys, weights)

    def scalar():
        ys, _ = model.forward_with_tape(inputs, key=key)
        ys = ys if isinstance(ys, list) else [ys]
        return float(sum(backend.to_numpy((y * d).sum()) for y, d in zip(ys, dys)))

    errors = {}
    for i, (x, dx) in enumerate(zip(inputs, dxs)):
        errors[f"input {i}"] = relative_error(dx, numerical_gradient(scalar, x))
    names = {id(w): name for name, w in model.params.items()}
    for w, g in zip(weights, grads):
        assert g is not None, f"no gradient for {names[id(w)]}"
        errors[names[id(w)]] = relative_error(g, numerical_gradient(scalar, w))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= tol, f"gradient of {worst} off by {errors[worst]:.2e}: {errors}"
    return errors
