"""Keras 3's common optimizer arguments and learning-rate schedules against Keras's own.

Every optimizer with weight_decay, clipnorm, clipvalue and global_clipnorm (and two
combinations), and every schedule as an optimizer's learning_rate, over several steps
from the same gradients, float64 and float32 (keras.Variable and apply_gradients on the
Keras side, optimizer.apply on ours). Parameters are compared by the distance travelled.
The schedules are also compared value by value over their interesting steps.
"""

import keras
import numpy as np
import pytest
from keras_helpers import assert_close

import optim
from engine import backend
from optim import schedules

pytestmark = pytest.mark.keras

RTOL = {"float64": 1e-10, "float32": 1e-5}
STEPS = 6
SHAPES = [(3, 3, 2, 4), (4,), (5, 3)]

OPTIMIZERS = {
    "SGD": {"learning_rate": 0.05, "momentum": 0.9},
    "Adam": {"learning_rate": 0.01},
    "AdamW": {"learning_rate": 0.01},
    "Nadam": {"learning_rate": 0.01},
    "Adamax": {"learning_rate": 0.01},
    "RMSprop": {"learning_rate": 0.01, "momentum": 0.5},
    "Adagrad": {"learning_rate": 0.05},
}
# Clipping thresholds sit inside the range of the gradients' norms (0.01 to 50), so some
# steps clip and some do not.
OPTIONS = {
    "weight_decay": {"weight_decay": 0.05},
    "clipnorm": {"clipnorm": 1.0},
    "clipvalue": {"clipvalue": 0.5},
    "global_clipnorm": {"global_clipnorm": 2.0},
    "weight_decay+clipnorm": {"weight_decay": 0.02, "clipnorm": 0.5},
    "weight_decay+global_clipnorm": {"weight_decay": 0.02, "global_clipnorm": 0.5},
}


def gradient_sequence(rng, dtype):
    """STEPS lists of gradients of mixed scales (1e-3 to 10), some zeros, sign flips."""
    steps = []
    for step in range(STEPS):
        scale = 10.0 ** rng.uniform(-3, 1)
        grads = [scale * rng.standard_normal(shape) for shape in SHAPES]
        grads[0].reshape(-1)[::7] = 0.0
        if step % 2:
            grads[1] = -grads[1]
        steps.append([g.astype(dtype) for g in grads])
    return steps


def run_both(name, kwargs, keras_kwargs, dtype, seed):
    """Both optimizers over the same gradients; every step's parameters compared."""
    rng = np.random.default_rng(seed)
    # Parameters of the steps' order (0.1), so that float32 resolves a step to 1e-6.
    initial = [0.1 * rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    theirs = getattr(keras.optimizers, name)(**keras_kwargs)
    variables = [keras.Variable(w, dtype=dtype) for w in initial]
    ours = getattr(optim, name)(**kwargs)
    params = [backend.to_device(w.copy()) for w in initial]
    rtol = RTOL[dtype]
    for step, grads in enumerate(gradient_sequence(rng, dtype)):
        theirs.apply_gradients(zip(grads, variables))
        ours.apply([backend.to_device(g) for g in grads], params)
        for i, (p, v) in enumerate(zip(params, variables)):
            ref = np.asarray(v.value).astype(np.float64) - initial[i]
            assert backend.to_numpy(p).dtype == dtype
            assert_close(
                backend.to_numpy(p).astype(np.float64) - initial[i],
                ref,
                rtol,
                atol=rtol * float(np.abs(ref).max()),
                what=f"step {step + 1} parameter {i}",
                group=f"optimizers {dtype}",
            )
    assert ours.iterations == int(theirs.iterations.value) == STEPS


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_option_matches_keras(name, option, floatx):
    kwargs = {**OPTIMIZERS[name], **OPTIONS[option]}
    run_both(name, kwargs, kwargs, floatx, seed=sum(map(ord, name + option)))


def test_every_optimizer_and_option_is_covered():
    assert {getattr(optim, name) for name in OPTIMIZERS} == set(optim.OPTIMIZERS.values())
    assert {key for option in OPTIONS.values() for key in option} == {
        "weight_decay",
        "clipnorm",
        "clipvalue",
        "global_clipnorm",
    }


SCHEDULES = {
    "ExponentialDecay": {"initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.5},
    "ExponentialDecay-staircase": {
        "initial_learning_rate": 0.1,
        "decay_steps": 2,
        "decay_rate": 0.5,
        "staircase": True,
    },
    "PiecewiseConstantDecay": {"boundaries": [1, 3, 4], "values": [0.1, 0.05, 0.02, 0.001]},
    "CosineDecay": {"initial_learning_rate": 0.1, "decay_steps": 4, "alpha": 0.1},
    "CosineDecay-warmup": {
        "initial_learning_rate": 0.0,
        "decay_steps": 3,
        "warmup_target": 0.1,
        "warmup_steps": 2,
    },
    "InverseTimeDecay": {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5},
    "InverseTimeDecay-staircase": {
        "initial_learning_rate": 0.1,
        "decay_steps": 2,
        "decay_rate": 0.5,
        "staircase": True,
    },
}


def test_every_schedule_is_covered():
    assert {case.split("-")[0] for case in SCHEDULES} == set(schedules.SCHEDULES)


@pytest.mark.parametrize("case", sorted(SCHEDULES))
def test_schedule_values_match_keras(case, floatx):
    name, kwargs = case.split("-")[0], SCHEDULES[case]
    ours = getattr(schedules, name)(**kwargs)
    theirs = getattr(keras.optimizers.schedules, name)(**kwargs)
    for step in range(12):  # past every boundary, warm-up and decay end
        assert_close(
            np.float64(ours(step)),
            np.asarray(theirs(step)),
            RTOL[floatx],
            atol=1e-12,
            what=f"{case} at step {step}",
            group=f"optimizers {floatx}",
        )


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "Nadam"])
@pytest.mark.parametrize("case", sorted(SCHEDULES))
def test_schedule_as_learning_rate_matches_keras(case, optimizer, floatx):
    name, kwargs = case.split("-")[0], SCHEDULES[case]
    ours = {**OPTIMIZERS[optimizer], "learning_rate": getattr(schedules, name)(**kwargs)}
    theirs = {
        **OPTIMIZERS[optimizer],
        "learning_rate": getattr(keras.optimizers.schedules, name)(**kwargs),
    }
    if case == "CosineDecay-warmup":  # a zero rate on the first step: add weight decay too
        ours["weight_decay"] = theirs["weight_decay"] = 0.1
    run_both(optimizer, ours, theirs, floatx, seed=sum(map(ord, case + optimizer)))
