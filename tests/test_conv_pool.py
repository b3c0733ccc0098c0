"""The CPU's fused Conv2D + 2x2 max pooling step (layers/conv_pool.py) against the two
layers run one by one, and against central differences: it is what every CPU training
step of the tutorial network runs."""

import numpy as np
import pytest

from engine import Sequential
from engine.context import Context
from layers import Conv2D, Dense, MaxPooling2D, conv_pool
from tests.gradient_check import (
    forward_backward,
    numerical_gradient,
    relative_error,
    training_context,
)

pytestmark = pytest.mark.usefixtures("float64")

CASES = [
    # filters, kernel, strides, padding, input (H, W, C), activation, use_bias
    (4, (3, 3), (1, 1), "valid", (8, 8, 1), "relu", True),  # the tutorial's first layer
    (3, (3, 3), (1, 1), "valid", (9, 9, 3), "relu", True),  # odd map: last row/col dropped
    (2, (2, 3), (1, 2), "valid", (7, 9, 2), None, True),  # non-square kernel and strides
    (3, (3, 3), (2, 2), "same", (9, 8, 2), "relu", False),  # asymmetric 'same' padding
    (2, (3, 3), (1, 1), (1, 2), (5, 6, 2), "linear", True),  # explicit padding
    (2, (1, 1), (1, 1), "valid", (4, 6, 3), "relu", True),
]


def _pair(filters, kernel, strides, padding, shape, activation, use_bias, rng):
    conv = Conv2D(
        filters, kernel, strides=strides, padding=padding, activation=activation, use_bias=use_bias
    )
    conv.build(shape)
    if use_bias:
        conv.params["bias"][...] = rng.standard_normal(filters) * 0.3
    pool = MaxPooling2D(2)
    pool.build(conv.compute_output_shape(shape))
    return conv, pool


def _layer_by_layer(conv, pool, x, dy):
    conv_ctx, pool_ctx = training_context(), training_context()
    y = pool.forward(conv.forward(x, conv_ctx), pool_ctx)
    dx = conv.backward(conv_ctx, pool.backward(pool_ctx, dy))
    return y, dx, {name: g.copy() for name, g in conv_ctx.grads.items()}


def _fused(conv, pool, x, dy):
    return forward_backward(conv_pool.ConvPool2x2(conv, pool), x, dy)


@pytest.mark.parametrize("filters, kernel, strides, padding, shape, activation, use_bias", CASES)
def test_fused_step_equals_the_two_layers(
    rng, filters, kernel, strides, padding, shape, activation, use_bias
):
    conv, pool = _pair(filters, kernel, strides, padding, shape, activation, use_bias, rng)
    assert conv_pool.can_fuse(conv, pool)
    x = rng.standard_normal((3, *shape))
    dy = rng.standard_normal((3, *pool.compute_output_shape(conv.compute_output_shape(shape))))
    y, dx, grads = _fused(conv, pool, x, dy)
    y_ref, dx_ref, grads_ref = _layer_by_layer(conv, pool, x, dy)
    assert y.shape == y_ref.shape and dx.shape == dx_ref.shape == x.shape
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-13)
    assert grads.keys() == grads_ref.keys() == conv.params.keys()
    for name in grads:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("activation", ["relu", None])
def test_ties_go_to_the_first_maximum_as_in_max_pooling(rng, activation):
    """Small integers make exact ties everywhere (and zero pre-activations for ReLU):
    the fused step must route each window's gradient exactly as MaxPooling2D does."""
    conv, pool = _pair(2, (2, 2), (1, 1), "valid", (7, 7, 1), activation, True, rng)
    conv.params["kernel"][...] = rng.integers(-1, 2, conv.params["kernel"].shape)
    conv.params["bias"][...] = [0.0, 1.0]
    x = rng.integers(0, 2, (4, 7, 7, 1)).astype(np.float64)
    dy = rng.standard_normal((4, 3, 3, 2))
    y, dx, grads = _fused(conv, pool, x, dy)
    y_ref, dx_ref, grads_ref = _layer_by_layer(conv, pool, x, dy)
    z = conv(x)  # with many ties, or this test would prove nothing
    windows = z[:, :6, :6].reshape(4, 3, 2, 3, 2, 2)
    assert (windows == windows.max(axis=(2, 4), keepdims=True)).sum(axis=(2, 4)).max() > 1
    np.testing.assert_array_equal(y, y_ref)
    # A gradient routed to another tied position would move whole values, not rounding.
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-13)
    for name in grads:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-12, atol=1e-13)


def _relu_step(rng, shape, filters, batch):
    """A fused 3x3 relu step on ``shape`` inputs, a batch for it and an output gradient."""
    conv, pool = _pair(filters, (3, 3), (1, 1), "valid", shape, "relu", True, rng)
    x = rng.standard_normal((batch, *shape))
    dy = rng.standard_normal((batch, *pool.compute_output_shape(conv.compute_output_shape(shape))))
    return conv_pool.ConvPool2x2(conv, pool), x, dy


def _gradients(step, x, dy, **options):
    """(dx, copies of the conv's grads) of one training forward and backward."""
    _, dx, grads = forward_backward(step, x, dy, **options)
    return dx, grads


def test_fused_gradients_match_central_differences(rng):
    step, x, dy = _relu_step(rng, (7, 6, 2), filters=3, batch=2)
    dx, grads = _gradients(step, x, dy)

    def scalar():
        return float((step.forward(x, Context()) * dy).sum())

    for name, array in [("input", x), *step.conv.params.items()]:
        numeric = numerical_gradient(scalar, array)
        assert relative_error(dx if name == "input" else grads[name], numeric) < 1e-7, name


def test_a_prediction_between_forward_and_backward_changes_nothing(rng):
    """In a model, the fused step's inference calls have buffers of their own."""
    step, x, dy = _relu_step(rng, (8, 8, 2), filters=3, batch=3)
    model = Sequential([step.conv, step.pool])
    assert isinstance(model._plan().steps[0].layer, conv_pool.ConvPool2x2)
    weights = model.trainable_weights
    _, tape = model.forward_with_tape(x, input_gradients=True)
    (expected_dx,), expected = tape.backward([dy], weights)
    _, tape = model.forward_with_tape(x, input_gradients=True)
    model.predict(rng.standard_normal((5, 8, 8, 2)))
    (dx,), grads = tape.backward([dy], weights)
    np.testing.assert_array_equal(dx, expected_dx)
    for g, e in zip(grads, expected, strict=True):
        np.testing.assert_array_equal(g, e)


def test_backward_without_input_gradient_returns_none_and_fills_grads(rng):
    step, x, dy = _relu_step(rng, (6, 6, 1), filters=2, batch=2)
    full, expected = _gradients(step, x, dy)
    ctx = training_context(needs_input_grad=(False,))
    step.forward(x, ctx)
    dx = step.backward(ctx, dy)
    assert full is not None and dx is None
    for name, g in ctx.grads.items():
        np.testing.assert_array_equal(g, expected[name])
    ctx.release()
    with pytest.raises(RuntimeError, match="forward"):
        step.backward(ctx, dy)  # each forward serves one backward


@pytest.mark.parametrize(
    "conv, pool",
    [
        (Conv2D(2, 3, activation="sigmoid"), MaxPooling2D(2)),  # does not commute with max
        (Conv2D(2, 3, activation="tanh"), MaxPooling2D(2)),  # monotone, but not in _MONOTONE
        (Conv2D(2, 3, dilation_rate=2), MaxPooling2D(2)),  # the quadrant patches are undilated
        (Conv2D(2, 3, groups=2), MaxPooling2D(2)),  # and of one group
        (Conv2D(2, 3), MaxPooling2D(3)),
        (Conv2D(2, 3), MaxPooling2D(2, strides=1)),
        (Conv2D(2, 3), MaxPooling2D(2, padding="same")),
        (Dense(2), MaxPooling2D(2)),
    ],
)
def test_only_what_the_fused_step_computes_exactly_is_fused(conv, pool):
    shape = (7, 7, 2) if isinstance(conv, Conv2D) else (4,)
    conv.build(shape)
    pool.build(conv.compute_output_shape(shape) if isinstance(conv, Conv2D) else (5, 5, 2))
    assert not conv_pool.can_fuse(conv, pool)
    if isinstance(conv, Conv2D):  # and the fusion pass leaves them as two steps
        model = Sequential([conv, pool])
        assert [step.layer for step in model._plan().steps] == [conv, pool]
