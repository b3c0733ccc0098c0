"""Conv2D and MaxPooling2D forward against naive loops; im2col and col2im are adjoint."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import backend, im2col
from layers import Conv2D, MaxPooling2D
from tests.gradient_check import forward_backward

pytestmark = pytest.mark.usefixtures("float64")


def pads_for(size, kernel, stride, padding):
    if padding == "same":
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    if padding == "valid":
        return 0, 0
    return padding, padding


def naive_conv2d(x, kernel, bias, strides, padding):
    """Keras's definition, one output pixel at a time, zero padding spelled out."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    (top, bottom), (left, right) = (
        pads_for(h, kh, strides[0], padding),
        pads_for(w, kw, strides[1], padding),
    )
    xp = np.zeros((n, h + top + bottom, w + left + right, c))
    xp[:, top : top + h, left : left + w] = x
    oh, ow = (xp.shape[1] - kh) // strides[0] + 1, (xp.shape[2] - kw) // strides[1] + 1
    out = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            patch = xp[
                :, i * strides[0] : i * strides[0] + kh, j * strides[1] : j * strides[1] + kw
            ]
            out[:, i, j] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2])) + bias
    return out


def naive_max_pool(x, pool, strides, padding):
    n, h, w, c = x.shape
    (top, bottom), (left, right) = (
        pads_for(h, pool[0], strides[0], padding),
        pads_for(w, pool[1], strides[1], padding),
    )
    xp = np.full((n, h + top + bottom, w + left + right, c), -np.inf)
    xp[:, top : top + h, left : left + w] = x
    oh, ow = (xp.shape[1] - pool[0]) // strides[0] + 1, (xp.shape[2] - pool[1]) // strides[1] + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            window = xp[
                :,
                i * strides[0] : i * strides[0] + pool[0],
                j * strides[1] : j * strides[1] + pool[1],
            ]
            out[:, i, j] = window.max(axis=(1, 2))
    return out


@pytest.mark.parametrize(
    "kernel, strides, padding, shape",
    [
        ((3, 3), (1, 1), "valid", (28, 28, 1)),
        ((3, 3), (2, 2), "same", (8, 8, 3)),
        ((3, 3), (2, 2), "same", (7, 9, 2)),
        ((5, 5), (1, 1), "same", (6, 6, 2)),
        ((1, 1), (1, 1), "valid", (4, 5, 3)),
        ((2, 4), (3, 1), "valid", (9, 8, 2)),
        ((3, 2), (1, 1), (2, 1), (5, 5, 2)),
        ((4, 4), (2, 2), "same", (6, 7, 1)),
    ],
)
def test_conv2d_matches_naive_loop(backend_name, rng, kernel, strides, padding, shape):
    layer = Conv2D(3, kernel, strides=strides, padding=padding)
    layer.build(shape)
    layer.params["bias"][...] = backend.to_device(rng.standard_normal(3))
    x = rng.standard_normal((2, *shape))
    ours = backend.to_numpy(layer(backend.to_device(x)))
    expected = _conv_reference(x, layer, strides, padding)
    assert ours.shape == expected.shape == (2, *layer.compute_output_shape(shape))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def _conv_reference(x, layer, strides, padding):
    kernel = backend.to_numpy(layer.params["kernel"])
    bias = backend.to_numpy(layer.params["bias"])
    if isinstance(padding, str):
        return naive_conv2d(x, kernel, bias, strides, padding)
    # Explicit (ph, pw) padding: pad by hand, then a 'valid' naive convolution.
    ph, pw = padding
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    return naive_conv2d(padded, kernel, bias, strides, "valid")


@pytest.mark.parametrize(
    "pool, strides, padding, shape",
    [
        ((2, 2), None, "valid", (28, 28, 1)),
        ((2, 2), None, "valid", (11, 11, 2)),  # floor: 11 -> 5, as Keras
        ((3, 3), (1, 1), "valid", (6, 5, 2)),
        ((3, 3), (2, 2), "same", (7, 8, 2)),
        ((2, 2), (2, 2), "same", (5, 5, 1)),
        ((2, 3), (2, 1), "valid", (6, 7, 3)),
    ],
)
def test_max_pooling_matches_naive_loop(backend_name, rng, pool, strides, padding, shape):
    layer = MaxPooling2D(pool, strides=strides, padding=padding)
    layer.build(shape)
    x = rng.standard_normal((2, *shape))
    ours = backend.to_numpy(layer(backend.to_device(x)))
    expected = naive_max_pool(x, pool, layer.strides, padding)
    assert ours.shape == expected.shape == (2, *layer.compute_output_shape(shape))
    np.testing.assert_array_equal(ours, expected)


def test_max_pooling_tie_goes_to_first_maximum(backend_name):
    """A window of equal values sends its whole gradient to the first (top-left) one."""
    layer = MaxPooling2D((2, 2))
    layer.build((4, 4, 1))
    x = backend.to_device(np.ones((1, 4, 4, 1)))
    _, dx, _ = forward_backward(layer, x, backend.to_device(np.full((1, 2, 2, 1), 3.0)))
    dx = backend.to_numpy(dx)[0, :, :, 0]
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 3.0
    np.testing.assert_array_equal(dx, expected)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 2),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    c=st.integers(1, 3),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    padding=st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2)),
    seed=st.integers(0, 2**16),
)
def test_im2col_and_col2im_are_adjoint(n, h, w, c, kh, kw, sh, sw, padding, seed):
    """<im2col(x), cols> == <x, col2im(cols)> for every shape, stride and padding."""
    (oh, (top, bottom)), (ow, (left, right)) = (
        im2col.conv_output_size(h, kh, sh, padding),
        im2col.conv_output_size(w, kw, sw, padding),
    )
    if oh < 1 or ow < 1:
        return  # the kernel does not fit; Conv2D refuses such shapes
    rng = np.random.default_rng(seed)
    pads = (top, bottom, left, right)
    x = rng.standard_normal((n, h, w, c))
    cols = rng.standard_normal((n * oh * ow, kh * kw * c))
    patches = im2col.im2col(x, kh, kw, sh, sw, pads)
    assert patches.shape == cols.shape
    back = im2col.col2im(cols, x.shape, kh, kw, sh, sw, pads)
    assert back.shape == x.shape
    assert np.vdot(patches, cols) == pytest.approx(np.vdot(x, back), rel=1e-12, abs=1e-12)


def test_im2col_and_col2im_are_adjoint_on_the_gpu(backend_name, rng):
    """The CuPy kernels against the NumPy ones on one awkward case (stride 2, 'same')."""
    x = rng.standard_normal((2, 7, 6, 3))
    (oh, (top, bottom)), (ow, (left, right)) = (
        im2col.conv_output_size(7, 3, 2, "same"),
        im2col.conv_output_size(6, 3, 2, "same"),
    )
    pads = (top, bottom, left, right)
    cols = rng.standard_normal((2 * oh * ow, 27))
    patches = backend.to_numpy(im2col.im2col(backend.to_device(x), 3, 3, 2, 2, pads))
    back = backend.to_numpy(im2col.col2im(backend.to_device(cols), x.shape, 3, 3, 2, 2, pads))
    np.testing.assert_allclose(patches, im2col.im2col(x, 3, 3, 2, 2, pads), rtol=0, atol=0)
    np.testing.assert_allclose(back, im2col.col2im(cols, x.shape, 3, 3, 2, 2, pads), rtol=1e-12)
