"""Optimizer updates against steps computed by hand from Keras's formulas."""

import math

import numpy as np
import pytest

from engine import backend
from optim import SGD, Adagrad, Adam, RMSprop

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([-0.25, 0.5, 1.0]), np.array([1.0, 0.0, -3.0])]
W0 = np.array([1.0, -2.0, 0.5])


def run(optimizer, steps=3):
    param = backend.to_device(W0.copy())
    for grad in GRADS[:steps]:
        optimizer.apply([backend.to_device(grad)], [param])
    return backend.to_numpy(param)


@pytest.fixture(autouse=True)
def _float64(float64):
    pass


def test_sgd_plain(backend_name):
    expected = W0 - 0.1 * sum(GRADS)
    np.testing.assert_allclose(run(SGD(learning_rate=0.1)), expected, rtol=1e-14)


def test_sgd_momentum(backend_name):
    w, v = W0.copy(), np.zeros(3)
    for g in GRADS:
        v = 0.9 * v - 0.1 * g
        w = w + v
    np.testing.assert_allclose(run(SGD(0.1, momentum=0.9)), w, rtol=1e-14)


def test_sgd_nesterov(backend_name):
    w, v = W0.copy(), np.zeros(3)
    for g in GRADS:
        v = 0.9 * v - 0.1 * g
        w = w + 0.9 * v - 0.1 * g
    np.testing.assert_allclose(run(SGD(0.1, momentum=0.9, nesterov=True)), w, rtol=1e-14)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam(backend_name, amsgrad):
    w, m, v, v_hat = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    for t, g in enumerate(GRADS, start=1):
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        v_hat = np.maximum(v_hat, v)
        w = w - alpha * m / (np.sqrt(v_hat if amsgrad else v) + eps)
    np.testing.assert_allclose(run(Adam(0.01, amsgrad=amsgrad)), w, rtol=1e-14)


def test_adam_first_step_moves_each_weight_by_about_the_learning_rate(backend_name):
    """Adam's first update is lr * g / (|g| + eps) per element: a sign step."""
    np.testing.assert_allclose(run(Adam(0.01), steps=1), W0 - 0.01 * np.sign(GRADS[0]), rtol=1e-6)


@pytest.mark.parametrize(
    "momentum, centered", [(0.0, False), (0.5, False), (0.0, True), (0.5, True)]
)
def test_rmsprop(backend_name, momentum, centered):
    w, vel, mom, avg = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    lr, rho, eps = 0.01, 0.9, 1e-7
    for g in GRADS:
        vel = rho * vel + (1 - rho) * g * g
        avg = rho * avg + (1 - rho) * g
        denominator = vel - avg * avg + eps if centered else vel + eps
        step = lr * g / np.sqrt(denominator)
        mom = momentum * mom + step
        w = w - (mom if momentum else step)
    np.testing.assert_allclose(
        run(RMSprop(0.01, momentum=momentum, centered=centered)), w, rtol=1e-13
    )


def test_adagrad(backend_name):
    w, acc = W0.copy(), np.full(3, 0.1)
    for g in GRADS:
        acc = acc + g * g
        w = w - 0.01 * g / np.sqrt(acc + 1e-7)
    np.testing.assert_allclose(run(Adagrad(0.01)), w, rtol=1e-14)


def test_keras_defaults():
    assert (SGD().learning_rate, SGD().momentum, SGD().nesterov) == (0.01, 0.0, False)
    adam = Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == (
        0.001,
        0.9,
        0.999,
        1e-7,
        False,
    )
    assert (RMSprop().learning_rate, RMSprop().rho, RMSprop().epsilon) == (0.001, 0.9, 1e-7)
    assert (Adagrad().learning_rate, Adagrad().initial_accumulator_value) == (0.001, 0.1)


def test_updates_are_in_place_and_count_iterations(backend_name):
    param = backend.to_device(W0.copy())
    optimizer = Adam()
    optimizer.apply([backend.to_device(GRADS[0])], [param])
    optimizer.apply([backend.to_device(GRADS[1])], [param])
    assert optimizer.iterations == 2
    assert not np.allclose(backend.to_numpy(param), W0)  # the same array object was updated
