"""The CPU's fused BatchNormalization + 2x2 max pooling step (layers/batchnorm_pool.py)
against the two layers run one by one, and against central differences."""

import numpy as np
import pytest

from engine import Sequential, backend
from engine.context import Context
from layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D, batchnorm_pool
from tests.gradient_check import check_model_gradients, forward_backward, training_context

pytestmark = pytest.mark.usefixtures("float64")

# gamma per channel: positive, negative (the minimum is picked) and zero (the first element)
GAMMAS = {"positive": [1.5, 0.5, 2.0], "mixed signs": [1.5, -0.7, 0.0]}


def _pair(shape, gamma, rng, **options):
    norm = BatchNormalization(**options)
    norm.build(shape)
    if norm.scale:
        norm.gamma[...] = gamma
    if norm.center:
        norm.beta[...] = rng.standard_normal(shape[-1])
    norm.moving_mean[...] = rng.standard_normal(shape[-1])
    norm.moving_variance[...] = rng.uniform(0.5, 2, shape[-1])
    pool = MaxPooling2D(2)
    pool.build(shape)
    return norm, pool


def _layer_by_layer(norm, pool, x, dy, training):
    norm_ctx, pool_ctx = (Context(training=training, for_backward=True) for _ in range(2))
    y = pool.forward(norm.forward(x, norm_ctx), pool_ctx)
    dx = norm.backward(norm_ctx, pool.backward(pool_ctx, dy))
    return y, dx, {name: g.copy() for name, g in norm_ctx.grads.items()}


def _fused(norm, pool, x, dy, training):
    ctx = Context(training=training, for_backward=True)
    step = batchnorm_pool.BatchNormPool2x2(norm, pool)
    y = step.forward(x, ctx)
    return y, step.backward(ctx, dy), {name: g.copy() for name, g in ctx.grads.items()}


def _compare(norm, pool, x, dy, training):
    statistics = [w.copy() for w in norm.weights[-2:]]
    fused = _fused(norm, pool, x, dy, training)
    fused_statistics = [w.copy() for w in norm.weights[-2:]]
    for w, saved in zip(norm.weights[-2:], statistics):
        w[...] = saved  # the layers' run starts from the same moving statistics
    reference = _layer_by_layer(norm, pool, x, dy, training)
    for a, b in zip(fused_statistics, norm.weights[-2:]):
        np.testing.assert_array_equal(a, b)
    (y, dx, grads), (y_ref, dx_ref, grads_ref) = fused, reference
    assert y.shape == y_ref.shape and dx.shape == dx_ref.shape == x.shape
    np.testing.assert_array_equal(y, y_ref)  # the same arithmetic on the same elements
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-11, atol=1e-12)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("gammas", list(GAMMAS))
@pytest.mark.parametrize("shape", [(6, 8, 3), (7, 5, 3)], ids=["even", "odd"])
@pytest.mark.parametrize("options", [{}, {"center": False}, {"scale": False}], ids=str)
def test_fused_step_equals_the_two_layers(rng, shape, gammas, training, options):
    norm, pool = _pair(shape, GAMMAS[gammas], rng, **options)
    assert batchnorm_pool.can_fuse(norm, pool)
    x = 1 + rng.standard_normal((4, *shape))
    dy = rng.standard_normal((4, shape[0] // 2, shape[1] // 2, 3))
    _compare(norm, pool, x, dy, training)


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_ties_go_to_the_first_maximum_as_in_max_pooling(rng, training):
    """Small integers tie in every window; after the normalisation they still tie, so each
    window's gradient must go where MaxPooling2D sends it: the first maximum of y."""
    norm, pool = _pair((6, 6, 3), GAMMAS["mixed signs"], rng)
    x = rng.integers(0, 2, (4, 6, 6, 3)).astype(np.float64)
    dy = rng.standard_normal((4, 3, 3, 3))
    windows = x.reshape(4, 3, 2, 3, 2, 3)
    assert (windows == windows.max(axis=(2, 4), keepdims=True)).sum(axis=(2, 4)).max() > 1
    _compare(norm, pool, x, dy, training)


def test_frozen_layer_runs_the_inference_arithmetic_in_training(rng):
    norm, pool = _pair((6, 6, 3), GAMMAS["positive"], rng, trainable=False)
    x = rng.standard_normal((3, 6, 6, 3))
    step = batchnorm_pool.BatchNormPool2x2(norm, pool)
    assert not step.mixes_samples and not step.trainable_weights
    fused = step.forward(x, training_context())
    np.testing.assert_array_equal(fused, pool(norm(x)))


def _model(shape, rng):
    model = Sequential([BatchNormalization(), MaxPooling2D(2), Flatten(), Dense(2)])
    model.build(shape)
    norm = model.layers[0]
    norm.gamma[...] = [1.5, -0.7, 0.4]  # not 0: there max pooling has a kink in gamma
    norm.beta[...] = rng.standard_normal(shape[-1])
    return model


def test_models_run_the_fused_step_and_its_gradients_match_central_differences(rng):
    model = _model((5, 6, 3), rng)
    steps = [step.layer for step in model._plan().steps]
    assert isinstance(steps[0], batchnorm_pool.BatchNormPool2x2) and len(steps) == 3
    assert model._plan().mixes_samples  # training batches stay whole
    check_model_gradients(model, backend.to_device(rng.standard_normal((4, 5, 6, 3))), rng)


def test_backward_without_input_gradient_returns_none_and_fills_grads(rng):
    norm, pool = _pair((6, 6, 3), GAMMAS["positive"], rng)
    step = batchnorm_pool.BatchNormPool2x2(norm, pool)
    x, dy = rng.standard_normal((3, 6, 6, 3)), rng.standard_normal((3, 3, 3, 3))
    _, _, expected = forward_backward(step, x, dy)
    ctx = training_context(needs_input_grad=(False,))
    step.forward(x, ctx)
    assert step.backward(ctx, dy) is None
    for name, g in ctx.grads.items():
        np.testing.assert_array_equal(g, expected[name])


@pytest.mark.parametrize(
    "norm, pool, shape",
    [
        (BatchNormalization(axis=1), MaxPooling2D(2), (6, 6, 3)),  # not the channels
        (BatchNormalization(), MaxPooling2D(3), (6, 6, 3)),
        (BatchNormalization(), MaxPooling2D(2, strides=1), (6, 6, 3)),
        (BatchNormalization(), MaxPooling2D(2, padding="same"), (5, 5, 3)),
        (BatchNormalization(), Conv2D(2, 2), (6, 6, 3)),
    ],
)
def test_only_what_the_fused_step_computes_is_fused(norm, pool, shape):
    norm.build(shape)
    pool.build(shape)
    assert not batchnorm_pool.can_fuse(norm, pool)
    model = Sequential([norm, pool])
    assert [step.layer for step in model._plan().steps] == [norm, pool]
