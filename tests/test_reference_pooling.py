"""AveragePooling2D, the global poolings and UpSampling2D forward against naive loops, on
every backend; the GPU kernels (emulated) against the CPU's code, to rounding."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import avgpool, backend, upsample
from engine.workspace import Workspace
from layers import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, UpSampling2D
from tests.test_reference import pads_for

pytestmark = pytest.mark.usefixtures("float64")


def naive_avg_pool(x, pool, strides, padding):
    """Keras's definition, one window at a time: the mean of the real cells it covers."""
    n, h, w, c = x.shape
    (top, _), (left, _) = (
        pads_for(h, pool[0], strides[0], padding),
        pads_for(w, pool[1], strides[1], padding),
    )
    oh = math.ceil(h / strides[0]) if padding == "same" else (h - pool[0]) // strides[0] + 1
    ow = math.ceil(w / strides[1]) if padding == "same" else (w - pool[1]) // strides[1] + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            rows = range(max(i * strides[0] - top, 0), min(i * strides[0] - top + pool[0], h))
            cols = range(max(j * strides[1] - left, 0), min(j * strides[1] - left + pool[1], w))
            cells = [x[:, r, s] for r in rows for s in cols]
            out[:, i, j] = sum(cells) / len(cells)
    return out


def naive_global_pool(x, reduce):
    n, h, w, c = x.shape
    out = np.zeros((n, c))
    for b in range(n):
        for ch in range(c):
            out[b, ch] = reduce([x[b, i, j, ch] for i in range(h) for j in range(w)])
    return out


def naive_nearest(x, size):
    n, h, w, c = x.shape
    out = np.zeros((n, h * size[0], w * size[1], c))
    for i in range(h * size[0]):
        for j in range(w * size[1]):
            out[:, i, j] = x[:, i // size[0], j // size[1]]
    return out


def resize_weights(size, factor):
    """jax.image.resize's 'linear' weights as a matrix (output, input): the triangle kernel
    at the half-pixel sample positions, renormalised over the input cells it reaches."""
    sample = (np.arange(size * factor) + 0.5) / factor - 0.5
    weights = np.maximum(0, 1 - np.abs(sample[:, None] - np.arange(size)[None, :]))
    return weights / weights.sum(axis=1, keepdims=True)


def naive_bilinear(x, size):
    n, h, w, c = x.shape
    rows, cols = resize_weights(h, size[0]), resize_weights(w, size[1])
    out = np.zeros((n, h * size[0], w * size[1], c))
    for i in range(h * size[0]):
        for j in range(w * size[1]):
            for r in range(h):
                for s in range(w):
                    out[:, i, j] += rows[i, r] * cols[j, s] * x[:, r, s]
    return out


def run(layer, x):
    return backend.to_numpy(layer(backend.to_device(x)))


@pytest.mark.parametrize(
    "pool, strides, padding, shape",
    [
        ((2, 2), None, "valid", (28, 28, 1)),
        ((2, 2), None, "valid", (11, 11, 2)),  # floor: 11 -> 5, as Keras
        ((2, 2), None, "same", (5, 5, 1)),  # the last window holds one real row/column
        ((3, 3), (1, 1), "valid", (6, 5, 2)),
        ((3, 3), (1, 1), "same", (6, 5, 2)),
        ((3, 3), (2, 2), "same", (7, 8, 2)),
        ((2, 3), (2, 1), "valid", (6, 7, 3)),
        ((4, 1), (3, 2), "same", (7, 5, 2)),
        ((5, 5), (1, 1), "same", (3, 4, 1)),  # windows wider than the map
    ],
)
def test_average_pooling_matches_naive_loop(backend_name, rng, pool, strides, padding, shape):
    layer = AveragePooling2D(pool, strides=strides, padding=padding)
    layer.build(shape)
    x = rng.standard_normal((2, *shape))
    ours = run(layer, x)
    expected = naive_avg_pool(x, pool, layer.strides, padding)
    assert ours.shape == expected.shape == (2, *layer.compute_output_shape(shape))
    np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape", [(5, 7, 3), (1, 1, 2), (26, 26, 4)])
def test_global_pooling_matches_naive_loop(backend_name, rng, shape, keepdims):
    x = rng.standard_normal((2, *shape))
    for layer, reduce in [
        (GlobalAveragePooling2D(keepdims=keepdims), lambda v: sum(v) / len(v)),
        (GlobalMaxPooling2D(keepdims=keepdims), max),
    ]:
        ours = run(layer, x)
        expected = naive_global_pool(x, reduce)
        if keepdims:
            expected = expected[:, None, None, :]
        assert ours.shape == expected.shape == (2, *layer.compute_output_shape(shape))
        np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-15)


UPSAMPLING = [((2, 2), (4, 5, 2)), ((3, 3), (3, 3, 1)), ((2, 3), (5, 1, 2)), ((1, 4), (1, 3, 2))]


@pytest.mark.parametrize("size, shape", UPSAMPLING)
def test_nearest_upsampling_matches_naive_loop(backend_name, rng, size, shape):
    x = rng.standard_normal((2, *shape))
    layer = UpSampling2D(size)
    np.testing.assert_array_equal(run(layer, x), naive_nearest(x, size))


@pytest.mark.parametrize("size, shape", UPSAMPLING)
def test_bilinear_upsampling_matches_naive_loop(backend_name, rng, size, shape):
    """Against jax.image.resize's definition (renormalised triangle weights), not against
    the phases the kernels use."""
    x = rng.standard_normal((2, *shape))
    layer = UpSampling2D(size, interpolation="bilinear")
    ours = run(layer, x)
    assert ours.shape == (2, *layer.compute_output_shape(shape))
    np.testing.assert_allclose(ours, naive_bilinear(x, size), rtol=1e-13, atol=1e-14)


def test_bilinear_of_a_constant_map_is_that_constant_and_of_a_ramp_a_ramp(backend_name):
    """Two properties any bilinear resize has: constants stay, and a linear ramp stays
    linear away from the edges (where the edge cell is extended instead)."""
    constant = np.full((1, 3, 4, 1), 2.5)
    np.testing.assert_allclose(run(UpSampling2D(3, "bilinear"), constant), 2.5, rtol=1e-15)
    ramp = np.arange(6.0).reshape(1, 6, 1, 1)
    y = run(UpSampling2D((2, 1), "bilinear"), ramp)[0, :, 0, 0]
    np.testing.assert_allclose(y[1:-1], (np.arange(1, 11) + 0.5) / 2 - 0.5, rtol=1e-15)
    assert y[0] == 0.0 and y[-1] == 5.0


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    c=st.integers(1, 3),
    sh=st.integers(1, 4),
    sw=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_bilinear_forward_and_backward_are_adjoint(n, h, w, c, sh, sw, seed):
    """<up(x), g> == <x, up_backward(g)> for every shape and factor: the edge rows and the
    rows where one sample's map ends and the next begins included."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    g = rng.standard_normal((n, h * sh, w * sw, c))
    y = upsample.bilinear_forward(x, sh, sw, Workspace())
    np.testing.assert_allclose(y, naive_bilinear(x, (sh, sw)), rtol=1e-12, atol=1e-13)
    back = upsample.bilinear_backward(g, sh, sw, Workspace())
    np.testing.assert_allclose((y * g).sum(), (x * back).sum(), rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 8),
    w=st.integers(1, 8),
    ph=st.integers(1, 4),
    pw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    seed=st.integers(0, 2**16),
)
def test_average_pooling_forward_and_backward_are_adjoint(h, w, ph, pw, sh, sw, padding, seed):
    if padding == "valid" and (ph > h or pw > w):
        return  # the pool does not fit; AveragePooling2D refuses such shapes
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, h, w, 2))
    (top, bottom), (left, right) = pads_for(h, ph, sh, padding), pads_for(w, pw, sw, padding)
    pads = (top, bottom, left, right)
    y = avgpool.avg_pool_forward(x, ph, pw, sh, sw, pads)
    np.testing.assert_allclose(y, naive_avg_pool(x, (ph, pw), (sh, sw), padding), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    back = avgpool.avg_pool_backward(g, x.shape, ph, pw, sh, sw, pads)
    np.testing.assert_allclose((y * g).sum(), (x * back).sum(), rtol=1e-12, atol=1e-12)


@pytest.fixture
def emulated(monkeypatch):
    from tests import emulated_cupy

    try:
        fake = emulated_cupy.EmulatedCupy()
    except emulated_cupy.CompilerUnavailable as exc:
        pytest.skip(f"needs a C++ compiler: {exc}")
    monkeypatch.setattr(backend, "_cupy", fake)
    monkeypatch.setattr(backend, "_elementwise_kernels", {})
    return fake


@pytest.mark.parametrize(
    "pool, strides, pads",
    [
        ((2, 2), (2, 2), (0, 0, 0, 0)),
        ((3, 2), (2, 1), (1, 1, 0, 1)),
        ((3, 3), (1, 2), (1, 0, 2, 1)),
    ],
)
def test_the_emulated_avg_pool_kernels_match_the_cpu(emulated, rng, pool, strides, pads):
    x = rng.standard_normal((2, 7, 8, 3))
    y = avgpool.avg_pool_forward(emulated.asarray(x), *pool, *strides, pads)
    host_y = avgpool.avg_pool_forward(x, *pool, *strides, pads)
    np.testing.assert_allclose(y.get(), host_y, rtol=1e-14)
    dy = rng.standard_normal(host_y.shape)
    dx = avgpool.avg_pool_backward(emulated.asarray(dy), x.shape, *pool, *strides, pads)
    host_dx = avgpool.avg_pool_backward(dy, x.shape, *pool, *strides, pads)
    np.testing.assert_allclose(dx.get(), host_dx, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("size", [(2, 2), (3, 2), (1, 5)])
def test_the_emulated_bilinear_kernels_match_the_cpu(emulated, rng, size, dtype):
    """Same weights, same order of the forward's operations: the forward is equal to the
    last bit."""
    x = rng.standard_normal((2, 4, 5, 3)).astype(dtype)
    y = upsample.bilinear_forward(emulated.asarray(x), *size, Workspace())
    host_y = upsample.bilinear_forward(x, *size, Workspace())
    assert y.dtype == host_y.dtype == dtype
    np.testing.assert_array_equal(y.get(), host_y)
    dy = rng.standard_normal(host_y.shape).astype(dtype)
    dx = upsample.bilinear_backward(emulated.asarray(dy), *size, Workspace())
    host_dx = upsample.bilinear_backward(dy, *size, Workspace())
    assert dx.dtype == host_dx.dtype == dtype
    # The sums run in another order: equal to rounding, relative to the gradient's scale.
    tol = 1e-14 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(dx.get(), host_dx, rtol=tol, atol=tol * np.abs(host_dx).max())
