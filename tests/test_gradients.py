"""Every layer's and loss's backward pass against central differences, in float64."""

import numpy as np
import pytest

from engine import backend, losses
from layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D, ReLU, Sigmoid, Softmax, Tanh
from tests.gradient_check import (
    check_layer_gradients,
    forward_backward,
    numerical_gradient,
    relative_error,
)

pytestmark = pytest.mark.usefixtures("float64")


def tie_free(shape, rng):
    """A shuffled linspace: all values distinct, so max pooling has no ties."""
    values = np.linspace(-1, 1, int(np.prod(shape)))
    rng.shuffle(values)
    return values.reshape(shape)


def device_input(shape, rng):
    return backend.to_device(rng.standard_normal(shape))


CONV_CASES = [
    # filters, kernel, strides, padding, input (H, W, C), activation, use_bias
    (3, (3, 3), (1, 1), "valid", (6, 6, 2), None, True),
    (2, (3, 3), (2, 2), "valid", (7, 7, 1), None, True),
    (4, (3, 3), (1, 1), "same", (5, 6, 3), None, True),
    (2, (3, 3), (2, 2), "same", (6, 6, 2), None, True),  # asymmetric 'same'
    (2, (4, 4), (2, 2), "same", (7, 5, 2), None, False),
    (3, (2, 3), (1, 2), "valid", (5, 7, 2), None, True),  # non-square kernel and strides
    (2, (3, 3), (1, 1), (1, 2), (4, 5, 2), None, True),  # explicit padding
    (2, (3, 3), (2, 1), 1, (6, 5, 3), "tanh", True),
    (3, (1, 1), (1, 1), "valid", (4, 4, 3), "sigmoid", True),
    (2, (5, 5), (1, 1), "same", (5, 5, 1), "relu", True),
]


@pytest.mark.parametrize(
    "filters, kernel, strides, padding, shape, activation, use_bias", CONV_CASES
)
def test_conv2d_gradients(
    backend_name, rng, filters, kernel, strides, padding, shape, activation, use_bias
):
    layer = Conv2D(
        filters, kernel, strides=strides, padding=padding, activation=activation, use_bias=use_bias
    )
    layer.build(shape)
    if use_bias:
        layer.params["bias"][...] = backend.to_device(rng.standard_normal(filters))
    check_layer_gradients(layer, device_input((2, *shape), rng), rng)


@pytest.mark.parametrize(
    "pool, strides, padding, shape",
    [
        ((2, 2), None, "valid", (6, 6, 2)),
        ((2, 2), None, "valid", (7, 5, 3)),  # odd edges are dropped (floor)
        ((3, 3), (2, 2), "valid", (7, 7, 2)),  # overlapping windows
        ((3, 3), (1, 1), "same", (5, 4, 2)),
        ((2, 2), None, "same", (5, 5, 1)),
        ((2, 3), (1, 2), "valid", (5, 7, 2)),
    ],
)
def test_max_pooling_gradients(backend_name, rng, pool, strides, padding, shape):
    layer = MaxPooling2D(pool, strides=strides, padding=padding)
    layer.build(shape)
    check_layer_gradients(layer, backend.to_device(tie_free((2, *shape), rng)), rng)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax", "linear"])
def test_dense_gradients(backend_name, rng, activation):
    layer = Dense(4, activation=activation)
    layer.build((5,))
    layer.params["bias"][...] = backend.to_device(rng.standard_normal(4))
    check_layer_gradients(layer, device_input((3, 5), rng), rng)


def test_flatten_gradients(backend_name, rng):
    layer = Flatten()
    layer.build((3, 2, 4))
    check_layer_gradients(layer, device_input((2, 3, 2, 4), rng), rng)


@pytest.mark.parametrize(
    "make", [ReLU, Sigmoid, Tanh, Softmax, lambda: Activation("linear"), lambda: Activation("relu")]
)
def test_activation_layer_gradients(backend_name, rng, make):
    layer = make()
    layer.build((3, 4))
    check_layer_gradients(layer, device_input((2, 3, 4), rng), rng)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: Conv2D(3, 3, strides=2, padding="same", activation="relu"), (7, 6, 2)),
        (lambda: MaxPooling2D(3, strides=2), (7, 7, 2)),
        (lambda: MaxPooling2D(2), (6, 6, 2)),
        (lambda: Dense(4, activation="tanh"), (5,)),
        (Flatten, (3, 2, 4)),
        (ReLU, (3, 4)),
    ],
)
def test_an_inference_call_between_forward_and_backward_changes_nothing(
    backend_name, rng, make, shape
):
    """A prediction (another batch size) between a training forward and its backward:
    the backward still belongs to the training forward (each call keeps its own record,
    and a model's inference calls have scratch buffers of their own)."""
    from engine import Sequential

    model = Sequential([make()])
    model.build(shape)
    weights = model.trainable_weights
    x = device_input((3, *shape), rng)
    y, tape = model.forward_with_tape(x, input_gradients=True)
    dy = device_input(y.shape, rng)
    dxs, grads = tape.backward([dy], weights)
    expected_dx = backend.to_numpy(dxs[0])
    expected = [backend.to_numpy(g) for g in grads]
    _, tape = model.forward_with_tape(x, input_gradients=True)
    model.predict(backend.to_numpy(device_input((5, *shape), rng)))
    model(device_input((5, *shape), rng))
    dxs, grads = tape.backward([dy], weights)
    np.testing.assert_array_equal(backend.to_numpy(dxs[0]), expected_dx)
    for g, e in zip(grads, expected, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(g), e)


def _loss_inputs(loss, rng):
    """(y_true, y_pred) in each loss's domain, away from its clipping edges."""
    n, k = 4, 5
    labels = rng.integers(0, k, size=n)
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        logits = rng.standard_normal((n, k))
        pred = logits if loss.from_logits else np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        return labels, pred
    if isinstance(loss, losses.CategoricalCrossentropy):
        logits = rng.standard_normal((n, k))
        pred = logits if loss.from_logits else rng.uniform(0.1, 1.0, (n, k))
        return np.eye(k)[labels], pred
    if isinstance(loss, losses.BinaryCrossentropy):
        pred = rng.standard_normal((n, k)) if loss.from_logits else rng.uniform(0.05, 0.95, (n, k))
        return rng.uniform(0, 1, (n, k)).round(), pred
    if isinstance(loss, (losses.KLDivergence, losses.MeanSquaredLogarithmicError)):
        return rng.uniform(0.05, 0.95, (n, k)), rng.uniform(0.05, 0.95, (n, k))
    return rng.standard_normal((n, k)), rng.standard_normal((n, k))


ALL_LOSSES = [cls() for cls in losses.LOSSES.values()] + [
    losses.SparseCategoricalCrossentropy(from_logits=True),
    losses.CategoricalCrossentropy(from_logits=True),
    losses.BinaryCrossentropy(from_logits=True),
]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=repr)
def test_loss_gradients(backend_name, rng, loss):
    y_true, y_pred = _loss_inputs(loss, rng)
    y_true, y_pred = backend.to_device(y_true), backend.to_device(y_pred)
    analytic = loss.gradient(y_true, y_pred)
    assert analytic.shape == y_pred.shape
    numeric = numerical_gradient(lambda: loss(y_true, y_pred), y_pred)
    assert relative_error(analytic, numeric) <= 1e-6
    value, fused = loss.value_and_gradient(y_true, y_pred)
    assert float(backend.to_numpy(value)) == pytest.approx(loss(y_true, y_pred), rel=1e-12)
    assert relative_error(fused, analytic) <= 1e-12


def test_softmax_crossentropy_is_stable_for_huge_logits(backend_name):
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    logits = backend.to_device(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]]))
    labels = backend.to_device(np.array([1, 2]))
    value, grad = loss.value_and_gradient(labels, logits)
    value, grad = float(backend.to_numpy(value)), backend.to_numpy(grad)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx((2e4 + np.log(2)) / 2)
    # (softmax - onehot) / N
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0], [0, 0.25, -0.25]], atol=1e-12)


def test_softmax_crossentropy_matches_softmax_then_crossentropy(backend_name, rng):
    """The fused gradient equals backprop through a Softmax layer and the probability loss."""
    logits = backend.to_device(rng.standard_normal((6, 4)))
    labels = rng.integers(0, 4, size=6)
    fused = losses.SparseCategoricalCrossentropy(from_logits=True).gradient(labels, logits)
    softmax = Softmax()
    probs = softmax(logits)
    dprobs = losses.SparseCategoricalCrossentropy().gradient(labels, probs)
    _, chained, _ = forward_backward(softmax, logits, dprobs)
    assert relative_error(chained, fused) <= 1e-9
