"""Dropout and SpatialDropout2D: gradients with the fixed key of tests/gradient_check.py,
the masks they draw (fraction kept, scaling, shared draws, seeds), and the identity at
inference."""

import numpy as np
import pytest

from engine import Sequential, backend, utils
from engine.context import Context
from layers import Dense, Dropout, SpatialDropout2D
from tests.gradient_check import check_layer_gradients, forward_backward, training_context

CASES = [
    (lambda: Dropout(0.5), (4, 10)),
    (lambda: Dropout(0.0), (4, 10)),
    (lambda: Dropout(0.3, noise_shape=(None, 1, 4)), (5, 3, 4)),
    (lambda: Dropout(0.3, noise_shape=(1, None, None), seed=4), (5, 3, 4)),
    (lambda: SpatialDropout2D(0.4), (4, 3, 3, 5)),
    (lambda: SpatialDropout2D(0.4, data_format="channels_first", seed=2), (4, 5, 3, 3)),
]


def device_input(shape, rng):
    return backend.to_device(2 + rng.standard_normal(shape))  # no zeros: mask = y / x


@pytest.mark.parametrize("make, shape", CASES)
def test_dropout_gradients(backend_name, float64, rng, make, shape):
    """Central differences with one fixed key: the same mask every call."""
    layer = make()
    layer.build(shape[1:])
    x = device_input(shape, rng)
    first = layer.forward(x, training_context())
    np.testing.assert_array_equal(
        backend.to_numpy(first), backend.to_numpy(layer.forward(x, training_context()))
    )
    check_layer_gradients(layer, x, rng)


@pytest.mark.parametrize("make, shape", CASES)
def test_backward_multiplies_by_the_mask_forward_drew(backend_name, rng, make, shape):
    layer = make()
    layer.build(shape[1:])
    x = device_input(shape, rng).astype(np.float32)
    dy = backend.to_device(rng.standard_normal(shape).astype(np.float32))
    y, dx, _ = forward_backward(layer, x, dy, key=(7,))
    y, dx, x, dy = map(backend.to_numpy, (y, dx, x, dy))
    assert y.dtype == dx.dtype == np.float32
    scale = np.float32(1 / (1 - layer.rate))
    kept = y != 0
    np.testing.assert_array_equal(y, np.where(kept, x * scale, 0))
    np.testing.assert_array_equal(dx, np.where(kept, dy * scale, 0))


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.9])
def test_fraction_kept_and_inference_identity(rate, rng):
    layer = Dropout(rate)
    x = np.ones((500, 80), np.float32)
    y = layer(x, training=True)
    kept = (y != 0).mean()
    assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / x.size), kept
    assert set(np.unique(y)) == {0, np.float32(1 / (1 - rate))}
    assert layer(x) is x  # inference: the identity, no copy
    assert Dropout(0.0)(x, training=True) is x


def test_noise_shape_shares_one_draw_along_its_ones(rng):
    y = Dropout(0.5, noise_shape=(None, 1, 7))(np.ones((40, 6, 7)), training=True)
    assert (y == y[:, :1]).all()
    assert 0 < (y == 0).mean() < 1
    y = SpatialDropout2D(0.5)(np.ones((30, 4, 5, 6)), training=True)
    assert (y == y[:, :1, :1]).all()


def test_a_seed_is_mixed_into_the_key():
    x = np.ones((20, 30))
    key = (3, 0, 5)

    def mask(layer):
        return layer.forward(x, Context(training=True, key=key)) != 0

    plain, seeded, other = Dropout(0.5), Dropout(0.5, seed=1), Dropout(0.5, seed=2)
    assert not np.array_equal(mask(seeded), mask(other))
    assert not np.array_equal(mask(plain), mask(seeded))
    np.testing.assert_array_equal(mask(seeded), mask(Dropout(0.5, seed=1)))
    np.testing.assert_array_equal(mask(plain), mask(Dropout(0.5)))


def test_fit_draws_follow_its_seed(rng):
    x, y = rng.random((32, 6)).astype(np.float32), rng.random((32, 2)).astype(np.float32)

    def fit(seed):
        utils.set_random_seed(0)
        model = Sequential([Dense(8, input_shape=(6,)), Dropout(0.5), Dense(2)])
        model.compile("sgd", "mse")
        model.fit(x, y, batch_size=8, epochs=2, seed=seed, verbose=0)
        return model.get_weights()

    same, again, other = fit(1), fit(1), fit(2)
    for a, b in zip(same, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(same[0], other[0])
