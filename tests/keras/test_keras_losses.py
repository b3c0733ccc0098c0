"""Every loss in engine.losses.LOSSES against the Keras loss class of the same name:
the value (mean over the batch, Keras's 'sum_over_batch_size') and d(loss)/d(y_pred)."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras_helpers import assert_close

from engine import backend, losses

pytestmark = pytest.mark.keras

RTOL = {"float64": 1e-10, "float32": 1e-5}


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def one_hot(labels, k):
    return np.eye(k)[labels]


# Each maker gives (y_true, y_pred) for a shape (..., K). "typical" stays away from the
# clipping boundaries; "clipping" puts values strictly past them (never on them: there
# JAX's clip/maximum split the gradient 0.5/0.5 where we give 0, both valid subgradients);
# "large" gives logits big enough that a naive softmax or sigmoid would overflow.


def _sparse_labels(rng, shape):
    return rng.integers(0, shape[-1], shape[:-1])


def _probabilities_past_clipping(rng, shape, labels):
    """Probabilities whose target entry is below 1e-7 in the first row, above 1 - 1e-7 in
    the second (Keras clips to [1e-7, 1 - 1e-7] after dividing by the row sum)."""
    p = softmax(rng.standard_normal(shape)).reshape(-1, shape[-1])
    target = labels.reshape(-1)
    p[0] = 1e-12
    p[0, (target[0] + 1) % shape[-1]] = 1  # the target's probability is ~1e-12: clipped up
    p[1] = 1e-12
    p[1, target[1]] = 1  # ~1 - 4e-12: clipped down to 1 - 1e-7
    return p.reshape(shape)


def make_sparse_categorical(rng, shape, from_logits, case):
    labels = _sparse_labels(rng, shape)
    if from_logits:
        scale = 50 if case == "large" else 2
        return labels, scale * rng.standard_normal(shape)
    if case == "clipping":
        return labels, _probabilities_past_clipping(rng, shape, labels)
    # Unnormalised positive scores: Keras (and we) divide by the row sum first.
    return labels, rng.uniform(0.05, 1, shape)


def make_categorical(rng, shape, from_logits, case):
    labels = _sparse_labels(rng, shape)
    soft = softmax(rng.standard_normal(shape))
    # Half one-hot rows, half soft labels.
    y_true = np.where(
        np.arange(shape[0]).reshape(-1, *[1] * (len(shape) - 1)) % 2,
        soft,
        one_hot(labels, shape[-1]),
    )
    if from_logits:
        scale = 50 if case == "large" else 2
        return y_true, scale * rng.standard_normal(shape)
    if case == "clipping":
        return y_true, _probabilities_past_clipping(rng, shape, labels)
    return y_true, rng.uniform(0.05, 1, shape)


def make_binary(rng, shape, from_logits, case):
    y_true = np.where(rng.random(shape) < 0.5, rng.integers(0, 2, shape), rng.random(shape))
    if from_logits:
        scale = 50 if case == "large" else 3
        return y_true, scale * rng.standard_normal(shape)
    y_pred = rng.uniform(0.02, 0.98, shape)
    if case == "clipping":
        flat = y_pred.reshape(-1)
        flat[:4] = 0.0, 1.0, 1e-9, 1 - 1e-9  # all strictly outside [1e-7, 1 - 1e-7]
    return y_true, y_pred


def make_regression(rng, shape, from_logits, case):
    return rng.standard_normal(shape), rng.standard_normal(shape)


def make_percentage(rng, shape, from_logits, case):
    y_true = rng.choice([-1, 1], shape) * rng.uniform(0.5, 2, shape)
    if case == "clipping":
        y_true.reshape(-1)[:2] = 0.0, 1e-9  # |y_true| below 1e-7: divided by 1e-7 instead
    return y_true, rng.standard_normal(shape)


def make_logarithmic(rng, shape, from_logits, case):
    y_true, y_pred = rng.uniform(0, 3, shape), rng.uniform(0, 3, shape)
    if case == "clipping":
        y_pred.reshape(-1)[:3] = -0.5, 0.0, 1e-9  # below 1e-7: replaced by 1e-7
        y_true.reshape(-1)[:2] = -1.0, 0.0
    return y_true, y_pred


def make_kl(rng, shape, from_logits, case):
    y_true, y_pred = softmax(rng.standard_normal(shape)), softmax(rng.standard_normal(shape))
    if case == "clipping":
        y_pred.reshape(-1)[:3] = 0.0, 1e-9, 1.5  # outside [1e-7, 1] (1.5 is past the top)
        y_true.reshape(-1)[3:5] = 0.0, 1e-9
    return y_true, y_pred


def make_cosine(rng, shape, from_logits, case):
    y_true, y_pred = rng.standard_normal(shape), rng.standard_normal(shape)
    if case == "clipping":
        # A prediction of norm below 1e-7: its inverse norm is capped at 1e7. (Exactly zero
        # would give Keras a NaN gradient, 0 * d rsqrt(0).)
        y_pred.reshape(-1, shape[-1])[0] = 1e-9
    return y_true, y_pred


MAKERS = {
    "sparse_categorical_crossentropy": make_sparse_categorical,
    "categorical_crossentropy": make_categorical,
    "binary_crossentropy": make_binary,
    "mean_squared_error": make_regression,
    "mean_absolute_error": make_regression,
    "mean_absolute_percentage_error": make_percentage,
    "mean_squared_logarithmic_error": make_logarithmic,
    "kl_divergence": make_kl,
    "cosine_similarity": make_cosine,
}
CLIPPING = {
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "kl_divergence",
    "cosine_similarity",
}


@pytest.fixture
def exact_keras_mean(monkeypatch, floatx):
    """In float64, give Keras an exact mean.

    Keras 3.15 on JAX computes ops.mean of float64 in float32 (keras.backend.result_type
    maps 64-bit dtypes to 32-bit, the cause of the tanh trap too), so its mean-based losses
    (mean squared/absolute/percentage/logarithmic error, binary crossentropy) are float64
    numbers with float32 rounding: about 1e-8 from the exact value. The Keras side then uses
    jax.numpy.mean in float64 instead, so the float64 comparison checks Keras's formulas to
    1e-10 rather than its rounding.
    """
    if floatx == "float64":
        exact = lambda x, axis=None, keepdims=False: jnp.mean(x, axis=axis, keepdims=keepdims)
        monkeypatch.setattr(keras.src.backend.numpy, "mean", exact)


def _cases():
    params = []
    for name, cls in sorted(losses.LOSSES.items()):
        modes = [False, True] if issubclass(cls, losses._FromLogits) else [None]
        for from_logits in modes:
            cases = ["typical"]
            if from_logits:
                cases.append("large")
            elif name in CLIPPING:
                cases.append("clipping")
            for case in cases:
                logits = "" if from_logits is None else f"-logits={from_logits}"
                params.append(pytest.param(name, from_logits, case, id=f"{name}{logits}-{case}"))
    return params


def test_every_loss_is_covered():
    assert set(MAKERS) == set(losses.LOSSES)


@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 4)], ids=["2d", "3d"])
@pytest.mark.parametrize("name,from_logits,case", _cases())
def test_loss_matches_keras(name, from_logits, case, shape, floatx, exact_keras_mean):
    rng = np.random.default_rng(sum(map(ord, name + case)))
    y_true, y_pred = MAKERS[name](rng, shape, from_logits, case)
    y_true = y_true if name.startswith("sparse") else y_true.astype(floatx)
    y_pred = y_pred.astype(floatx)
    kwargs = {} if from_logits is None else {"from_logits": from_logits}
    ours = losses.LOSSES[name](**kwargs)
    theirs = getattr(keras.losses, type(ours).__name__)(**kwargs)

    value, grad = jax.jit(jax.value_and_grad(lambda p: theirs(y_true, p)))(y_pred)
    rtol, group = RTOL[floatx], f"losses {floatx}"

    t, p = backend.to_device(y_true), backend.to_device(y_pred)
    assert ours.compute(t, p).dtype == floatx
    assert_close(ours.compute(t, p), value, rtol, what="value", group=group)
    assert_close(np.float64(ours(y_true, y_pred)), value, rtol, what="__call__")
    # The absolute floor covers gradient entries that are sums cancelling to near zero.
    atol = rtol * float(np.abs(grad).max())
    assert ours.gradient(t, p).dtype == floatx
    assert_close(ours.gradient(t, p), grad, rtol, atol, what="gradient", group=group)
    fused_value, fused_grad = ours.value_and_gradient(t, p)
    assert_close(fused_value, value, rtol, what="value_and_gradient value")
    assert_close(fused_grad, grad, rtol, atol, what="value_and_gradient gradient")
