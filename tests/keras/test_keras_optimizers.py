"""Every optimizer against Keras's: several steps from the same gradients, float64.

Keras side: keras.optimizers.X(...).apply_gradients on keras.Variable; ours:
optimizer.apply(grads, params) in place. Parameters are compared after every step.
"""

import keras
import numpy as np
import pytest
from keras_helpers import assert_close

from engine import backend
from optim import SGD, Adagrad, Adam, Adamax, AdamW, Nadam, RMSprop

pytestmark = pytest.mark.keras

RTOL = 1e-6
STEPS = 6
SHAPES = [(3, 3, 2, 4), (4,), (5, 3)]  # a conv kernel, a bias, a dense kernel

CASES = {
    "SGD": (SGD, {}),
    "SGD-lr": (SGD, {"learning_rate": 0.1}),
    "SGD-momentum": (SGD, {"learning_rate": 0.05, "momentum": 0.9}),
    "SGD-nesterov": (SGD, {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "Adam": (Adam, {}),
    "Adam-custom": (Adam, {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4}),
    "Adam-amsgrad": (Adam, {"learning_rate": 0.01, "amsgrad": True}),
    "RMSprop": (RMSprop, {}),
    "RMSprop-momentum": (RMSprop, {"learning_rate": 0.01, "momentum": 0.9}),
    "RMSprop-centered": (RMSprop, {"learning_rate": 0.01, "centered": True}),
    "RMSprop-centered-momentum": (
        RMSprop,
        {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True},
    ),
    "AdamW": (AdamW, {}),
    "AdamW-custom": (AdamW, {"learning_rate": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    "Nadam": (Nadam, {}),
    "Nadam-custom": (Nadam, {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99}),
    "Adamax": (Adamax, {}),
    "Adamax-custom": (Adamax, {"learning_rate": 0.01, "beta_1": 0.8, "epsilon": 1e-4}),
    "Adagrad": (Adagrad, {}),
    "Adagrad-custom": (
        Adagrad,
        {"learning_rate": 0.05, "initial_accumulator_value": 0.5, "epsilon": 1e-5},
    ),
}


def gradient_sequence(rng):
    """STEPS lists of gradients: mixed scales (1e-3 to 10), some exact zeros, and sign flips
    so that amsgrad's running maximum and the centred average both matter."""
    steps = []
    for step in range(STEPS):
        scale = 10.0 ** rng.uniform(-3, 1)
        grads = [scale * rng.standard_normal(shape) for shape in SHAPES]
        grads[0].reshape(-1)[::7] = 0.0
        if step % 2:
            grads[1] = -grads[1]
        steps.append(grads)
    return steps


def test_every_optimizer_is_covered():
    import optim

    assert {cls for cls, _ in CASES.values()} == set(optim.OPTIMIZERS.values())


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_matches_keras(case, keras_float64):
    cls, kwargs = CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    initial = [rng.standard_normal(shape) for shape in SHAPES]

    theirs = getattr(keras.optimizers, cls.__name__)(**kwargs)
    variables = [keras.Variable(w, dtype="float64") for w in initial]
    ours = cls(**kwargs)
    params = [backend.to_device(w.copy()) for w in initial]

    for step, grads in enumerate(gradient_sequence(rng)):
        theirs.apply_gradients(zip(grads, variables))
        ours.apply([backend.to_device(g) for g in grads], params)
        for i, (p, v) in enumerate(zip(params, variables)):
            # Compare the distance travelled, not the parameter, so the tolerance applies to
            # the optimizer's arithmetic rather than to the (much larger) starting values.
            assert_close(
                backend.to_numpy(p) - initial[i],
                np.asarray(v.value) - initial[i],
                RTOL,
                atol=RTOL * float(np.abs(np.asarray(v.value) - initial[i]).max()),
                what=f"step {step + 1} parameter {i}",
                group="optimizers float64",
            )
    assert ours.iterations == int(theirs.iterations.value) == STEPS
