"""Weight regularizers: Keras's penalties, part of the loss fit minimises and shows."""

import numpy as np
import pytest

from engine import Sequential, backend, regularizers
from layers import Conv2D, Dense, Flatten
from tests.gradient_check import numerical_gradient, relative_error


@pytest.mark.parametrize(
    "regularizer, penalty",
    [
        (regularizers.L1(0.3), lambda w: 0.3 * np.abs(w).sum()),
        (regularizers.L2(0.2), lambda w: 0.2 * (w**2).sum()),
        (regularizers.L1L2(0.1, 0.4), lambda w: 0.1 * np.abs(w).sum() + 0.4 * (w**2).sum()),
    ],
    ids=["l1", "l2", "l1_l2"],
)
def test_penalty_and_its_gradient(regularizer, penalty, rng, float64):
    w = rng.standard_normal((4, 3))
    assert float(regularizer(w)) == pytest.approx(penalty(w), rel=1e-12)
    numeric = numerical_gradient(lambda: float(regularizer(w)), w)
    assert relative_error(regularizer.gradient(w), numeric) < 1e-7


def test_the_loss_and_gradients_include_the_penalties(backend_name, rng, float64):
    model = Sequential(
        [
            Conv2D(2, 3, kernel_regularizer="l2", bias_regularizer=regularizers.L1(0.05)),
            Flatten(),
            Dense(3, kernel_regularizer=regularizers.L1L2(0.01, 0.02)),
        ]
    )
    model.build((5, 5, 1))
    model.compile("sgd", "mse")
    for w in model.weights:
        w[...] = backend.to_device(rng.standard_normal(w.shape))
    x = backend.to_device(rng.standard_normal((4, 5, 5, 1)))
    y = backend.to_device(rng.standard_normal((4, 3)))
    loss, _, _, grads = model.compute_loss_and_gradients([x], [y])
    plain = float(((backend.to_numpy(model(x)) - backend.to_numpy(y)) ** 2).mean())
    penalties = sum(float(r(w)) for w, r in model.regularized_weights)
    assert len(model.regularized_weights) == 3
    assert float(loss) == pytest.approx(plain + penalties, rel=1e-12)

    def total():
        return float(model.compute_loss_and_gradients([x], [y])[0])

    for w, g in zip(model.trainable_weights, grads, strict=True):
        assert relative_error(g, numerical_gradient(total, w)) < 1e-6
    logs = model.evaluate(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(plain + penalties, rel=1e-12)


def test_unknown_regularizer_and_bad_factor_are_refused():
    with pytest.raises(ValueError, match="'l3'.*'l1', 'l2', 'l1_l2'"):
        Dense(2, kernel_regularizer="l3")
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0, got -1"):
        regularizers.L2(-1)
