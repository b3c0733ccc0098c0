"""The convolution layers and MaxPooling2D forward against naive loops (Keras's definitions,
written out pixel by pixel); im2col and col2im are adjoint."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import backend, im2col
from layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, MaxPooling2D, SeparableConv2D
from tests.gradient_check import forward_backward

pytestmark = pytest.mark.usefixtures("float64")


def pads_for(size, kernel, stride, padding):
    if padding == "same":
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    if padding == "valid":
        return 0, 0
    return padding, padding


def naive_conv2d(x, kernel, bias, strides, padding, dilation=(1, 1), groups=1):
    """Keras's definition, one output pixel at a time, zero padding spelled out: output
    channel f of group g = f // (F/G) sums input channels of group g under the kernel's
    taps, which are ``dilation`` apart."""
    n, h, w, c = x.shape
    kh, kw, cg, f = kernel.shape
    fg = f // groups
    span = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    (top, bottom), (left, right) = (
        pads_for(h, span[0], strides[0], padding),
        pads_for(w, span[1], strides[1], padding),
    )
    xp = np.zeros((n, h + top + bottom, w + left + right, c))
    xp[:, top : top + h, left : left + w] = x
    oh, ow = (xp.shape[1] - span[0]) // strides[0] + 1, (xp.shape[2] - span[1]) // strides[1] + 1
    out = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * strides[0], j * strides[1]
            patch = xp[:, y0 : y0 + span[0] : dilation[0], x0 : x0 + span[1] : dilation[1]]
            for g in range(groups):
                out[:, i, j, g * fg : (g + 1) * fg] = np.tensordot(
                    patch[..., g * cg : (g + 1) * cg],
                    kernel[..., g * fg : (g + 1) * fg],
                    axes=([1, 2, 3], [0, 1, 2]),
                )
            out[:, i, j] += bias
    return out


def naive_depthwise_conv2d(x, kernel, bias, strides, padding, dilation=(1, 1)):
    """Output channel c*M + m: input channel c under kernel[:, :, c, m], pixel by pixel."""
    n, h, w, c = x.shape
    kh, kw, _, m = kernel.shape
    span = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    (top, bottom), (left, right) = (
        pads_for(h, span[0], strides[0], padding),
        pads_for(w, span[1], strides[1], padding),
    )
    xp = np.zeros((n, h + top + bottom, w + left + right, c))
    xp[:, top : top + h, left : left + w] = x
    oh, ow = (xp.shape[1] - span[0]) // strides[0] + 1, (xp.shape[2] - span[1]) // strides[1] + 1
    out = np.zeros((n, oh, ow, c, m))
    for i in range(oh):
        for j in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    pixel = xp[
                        :, i * strides[0] + ky * dilation[0], j * strides[1] + kx * dilation[1]
                    ]
                    out[:, i, j] += pixel[:, :, None] * kernel[ky, kx]
    return out.reshape(n, oh, ow, c * m) + bias


def keras_transpose_padding(kernel, stride, dilation, padding, output_padding):
    """(low, high) padding of the spread-out input, Keras's JAX rule for conv_transpose
    (keras/src/backend/common/backend_utils.py), per axis."""
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        return span - 1, span - 1 + extra
    if output_padding is None:
        total = stride + span - 2
    else:
        total = span + span % 2 - 2 + output_padding
    low = min(total // 2 + total % 2, span - 1)
    return low, total - low


def naive_conv2d_transpose(x, kernel, bias, strides, padding, output_padding, dilation):
    """JAX's definition of Keras's conv_transpose: the input spread out ``strides`` apart
    (zeros between), padded by Keras's (low, high), correlated with the flipped kernel
    (KH, KW, F, C), one output pixel at a time."""
    n, h, w, c = x.shape
    kh, kw, f, _ = kernel.shape
    extra = (None, None) if output_padding is None else output_padding
    (top, bottom), (left, right) = (
        keras_transpose_padding(kh, strides[0], dilation[0], padding, extra[0]),
        keras_transpose_padding(kw, strides[1], dilation[1], padding, extra[1]),
    )
    spread = np.zeros((n, (h - 1) * strides[0] + 1, (w - 1) * strides[1] + 1, c))
    spread[:, :: strides[0], :: strides[1]] = x
    xp = np.zeros((n, spread.shape[1] + top + bottom, spread.shape[2] + left + right, c))
    xp[:, top : top + spread.shape[1], left : left + spread.shape[2]] = spread
    span = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    oh, ow = xp.shape[1] - span[0] + 1, xp.shape[2] - span[1] + 1
    flipped = kernel[::-1, ::-1]
    out = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i : i + span[0] : dilation[0], j : j + span[1] : dilation[1]]
            out[:, i, j] = np.tensordot(patch, flipped, axes=([1, 2, 3], [0, 1, 3])) + bias
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
    _check_against_reference(layer, shape, rng, naive_conv2d)


@pytest.mark.parametrize(
    "filters, kernel, strides, padding, dilation, groups, shape",
    [
        (4, (3, 3), (1, 1), "valid", (2, 2), 1, (9, 8, 2)),
        (3, (3, 2), (1, 1), "same", (2, 3), 1, (7, 8, 3)),  # 'same' over the dilated span
        (6, (3, 3), (2, 2), "same", (1, 1), 3, (7, 8, 6)),
        (4, (2, 2), (1, 1), (1, 2), (3, 1), 2, (6, 7, 4)),  # explicit padding, dilated, grouped
        (4, (3, 3), (1, 1), "same", (2, 2), 4, (6, 6, 4)),  # one channel per group
        (6, (1, 1), (1, 1), "valid", (1, 1), 2, (4, 5, 2)),  # three filters per group
    ],
)
def test_dilated_and_grouped_conv2d_matches_naive_loop(
    backend_name, rng, filters, kernel, strides, padding, dilation, groups, shape
):
    layer = Conv2D(
        filters, kernel, strides=strides, padding=padding, dilation_rate=dilation, groups=groups
    )
    _check_against_reference(layer, shape, rng, naive_conv2d, dilation=dilation, groups=groups)


@pytest.mark.parametrize(
    "kernel, strides, padding, multiplier, dilation, shape",
    [
        ((3, 3), (1, 1), "valid", 1, (1, 1), (6, 7, 3)),
        ((3, 3), (2, 2), "same", 2, (1, 1), (7, 8, 2)),
        ((2, 3), (1, 2), "valid", 3, (1, 1), (5, 7, 2)),
        ((3, 3), (1, 1), "same", 1, (2, 2), (6, 6, 2)),
        ((3, 2), (2, 2), "same", 2, (2, 3), (9, 8, 3)),  # strides with dilation, as Keras allows
        ((2, 2), (1, 1), (1, 2), 2, (1, 1), (4, 5, 1)),  # explicit padding, one channel
    ],
)
def test_depthwise_conv2d_matches_naive_loop(
    backend_name, rng, kernel, strides, padding, multiplier, dilation, shape
):
    layer = DepthwiseConv2D(
        kernel,
        strides=strides,
        padding=padding,
        depth_multiplier=multiplier,
        dilation_rate=dilation,
    )
    _check_against_reference(layer, shape, rng, naive_depthwise_conv2d, dilation=dilation)


def naive_separable_conv2d(x, depthwise_kernel, pointwise_kernel, bias, strides, padding, dilation):
    """The depthwise convolution (no bias), then the 1x1 convolution, then the bias."""
    u = naive_depthwise_conv2d(x, depthwise_kernel, 0.0, strides, padding, dilation)
    return naive_conv2d(u, pointwise_kernel, bias, (1, 1), "valid")


@pytest.mark.parametrize(
    "filters, kernel, strides, padding, multiplier, dilation, shape",
    [
        (4, (3, 3), (1, 1), "valid", 1, (1, 1), (6, 7, 3)),
        (3, (3, 3), (2, 2), "same", 2, (1, 1), (7, 8, 2)),
        (2, (2, 3), (1, 1), "same", 1, (2, 1), (6, 6, 4)),
        (5, (1, 1), (1, 1), "valid", 3, (1, 1), (4, 4, 2)),
    ],
)
def test_separable_conv2d_matches_naive_loop(
    backend_name, rng, filters, kernel, strides, padding, multiplier, dilation, shape
):
    layer = SeparableConv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        depth_multiplier=multiplier,
        dilation_rate=dilation,
    )
    layer.build(shape)
    layer.params["bias"][...] = backend.to_device(rng.standard_normal(filters))
    x = rng.standard_normal((2, *shape))
    ours = backend.to_numpy(layer(backend.to_device(x)))
    depthwise, pointwise, bias = layer.get_weights()
    expected = naive_separable_conv2d(x, depthwise, pointwise, bias, strides, padding, dilation)
    assert ours.shape == expected.shape == (2, *layer.compute_output_shape(shape))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kernel, strides, padding, output_padding, dilation, shape",
    [
        ((3, 3), (2, 2), "same", None, (1, 1), (4, 5, 3)),  # 2x upsampling
        ((3, 3), (2, 2), "valid", None, (1, 1), (4, 5, 2)),
        ((2, 2), (3, 3), "valid", None, (1, 1), (3, 4, 2)),  # stride > kernel: bias-only rows
        ((2, 4), (3, 2), "same", None, (1, 1), (3, 4, 2)),
        ((3, 3), (3, 2), "same", (2, 1), (1, 1), (3, 4, 2)),
        ((4, 3), (3, 3), "valid", (2, 1), (1, 1), (3, 3, 2)),
        ((3, 2), (1, 1), "same", None, (2, 3), (5, 6, 2)),  # dilated
        ((3, 3), (1, 1), "valid", None, (2, 1), (4, 4, 1)),
    ],
)
def test_conv2d_transpose_matches_naive_loop(
    backend_name, rng, kernel, strides, padding, output_padding, dilation, shape
):
    layer = Conv2DTranspose(
        3,
        kernel,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        dilation_rate=dilation,
    )
    layer.build(shape)
    layer.params["bias"][...] = backend.to_device(rng.standard_normal(3))
    x = rng.standard_normal((2, *shape))
    ours = backend.to_numpy(layer(backend.to_device(x)))
    kernel_values, bias = layer.get_weights()
    expected = naive_conv2d_transpose(
        x, kernel_values, bias, strides, padding, output_padding, dilation
    )
    assert ours.shape == expected.shape == (2, *layer.compute_output_shape(shape))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def _check_against_reference(layer, shape, rng, naive, **options):
    """The layer (with a random bias) on two random samples against ``naive``."""
    layer.build(shape)
    bias = layer.params["bias"]
    bias[...] = backend.to_device(rng.standard_normal(bias.shape))
    x = rng.standard_normal((2, *shape))
    ours = backend.to_numpy(layer(backend.to_device(x)))
    kernel, bias = (backend.to_numpy(p) for p in (layer.params["kernel"], bias))
    padding = layer.padding
    if not isinstance(padding, str):
        # Explicit (ph, pw) padding: pad by hand, then a 'valid' naive convolution.
        ph, pw = padding
        x, padding = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))), "valid"
    expected = naive(x, kernel, bias, layer.strides, padding, **options)
    assert ours.shape == expected.shape == (2, *layer.compute_output_shape(shape))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


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


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 2),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    per_group=st.integers(1, 2),
    groups=st.integers(1, 3),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dh=st.integers(1, 3),
    dw=st.integers(1, 3),
    padding=st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2)),
    seed=st.integers(0, 2**16),
)
def test_im2col_and_col2im_are_adjoint(
    n, h, w, per_group, groups, kh, kw, sh, sw, dh, dw, padding, seed
):
    """<im2col(x), cols> == <x, col2im(cols)> for every shape, stride, dilation, group count
    and padding."""
    c = per_group * groups
    (oh, (top, bottom)), (ow, (left, right)) = (
        im2col.conv_output_size(h, im2col.effective_kernel(kh, dh), sh, padding),
        im2col.conv_output_size(w, im2col.effective_kernel(kw, dw), sw, padding),
    )
    if oh < 1 or ow < 1:
        return  # the kernel does not fit; Conv2D refuses such shapes
    rng = np.random.default_rng(seed)
    pads, options = (top, bottom, left, right), {"dilation": (dh, dw), "groups": groups}
    x = rng.standard_normal((n, h, w, c))
    cols = rng.standard_normal(im2col.cols_shape(n * oh * ow, kh * kw * c, groups))
    patches = im2col.im2col(x, kh, kw, sh, sw, pads, **options)
    assert patches.shape == cols.shape
    back = im2col.col2im(cols, x.shape, kh, kw, sh, sw, pads, **options)
    assert back.shape == x.shape
    assert np.vdot(patches, cols) == pytest.approx(np.vdot(x, back), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("dilation, groups", [((1, 1), 1), ((2, 1), 3)])
def test_im2col_and_col2im_are_adjoint_on_the_gpu(backend_name, rng, dilation, groups):
    """The CuPy kernels against the NumPy ones on awkward cases (stride 2, 'same'; dilated
    and grouped)."""
    x = rng.standard_normal((2, 7, 6, 3))
    (oh, (top, bottom)), (ow, (left, right)) = (
        im2col.conv_output_size(7, im2col.effective_kernel(3, dilation[0]), 2, "same"),
        im2col.conv_output_size(6, im2col.effective_kernel(3, dilation[1]), 2, "same"),
    )
    pads, options = (top, bottom, left, right), {"dilation": dilation, "groups": groups}
    cols = rng.standard_normal(im2col.cols_shape(2 * oh * ow, 27, groups))
    patches = im2col.im2col(backend.to_device(x), 3, 3, 2, 2, pads, **options)
    back = im2col.col2im(backend.to_device(cols), x.shape, 3, 3, 2, 2, pads, **options)
    expected = im2col.im2col(x, 3, 3, 2, 2, pads, **options)
    np.testing.assert_allclose(backend.to_numpy(patches), expected, rtol=0, atol=0)
    expected = im2col.col2im(cols, x.shape, 3, 3, 2, 2, pads, **options)
    np.testing.assert_allclose(backend.to_numpy(back), expected, rtol=1e-12)
