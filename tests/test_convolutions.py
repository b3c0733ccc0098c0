"""The convolution family beyond the plain Conv2D: dilated and grouped Conv2D,
DepthwiseConv2D, SeparableConv2D and Conv2DTranspose. Their gradients against central
differences (float64), float32 kept end to end, the argument errors, and the model file
round trip. Their forward passes against naive loops are in tests/test_reference.py, and
against Keras in tests/keras/test_keras_convolutions.py."""

import numpy as np
import pytest

import engine
from engine import Input, Model, Sequential, backend, utils
from layers import Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, Flatten, SeparableConv2D
from tests.gradient_check import (
    check_layer_gradients,
    check_model_gradients,
    forward_backward,
    training_context,
)

CONV_CASES = {
    # Conv2D(filters, kernel, strides, padding, dilation_rate, groups, activation), input
    "dilated": ((4, 3, 1, "valid", 2, 1, None), (7, 7, 2)),
    "dilated_same_tanh": ((4, (3, 2), 1, "same", (2, 3), 2, "tanh"), (6, 7, 4)),
    "grouped_strided": ((6, 3, 2, "same", 1, 3, "sigmoid"), (6, 5, 6)),
    "one_channel_per_group": ((4, 2, 1, (1, 2), (2, 1), 4, None), (5, 5, 4)),
}
DEPTHWISE_CASES = {
    # DepthwiseConv2D(kernel, strides, padding, depth_multiplier, dilation_rate,
    # activation, use_bias), input
    "valid": ((3, 1, "valid", 1, 1, None, True), (5, 6, 2)),
    "multiplier_same_strided": ((3, 2, "same", 2, 1, "tanh", True), (6, 5, 2)),
    "dilated_no_bias": (((2, 3), 1, "same", 3, (2, 1), None, False), (5, 5, 1)),
    "strided_and_dilated": ((3, 2, "same", 1, 2, "sigmoid", True), (7, 7, 2)),
}
SEPARABLE_CASES = {
    # SeparableConv2D(filters, kernel, strides, padding, dilation_rate, depth_multiplier,
    # activation, use_bias), input
    "valid": ((3, 3, 1, "valid", 1, 1, None, True), (5, 6, 2)),
    "multiplier_same_strided": ((2, 3, 2, "same", 1, 2, "tanh", True), (6, 5, 2)),
    "dilated_no_bias": ((4, 2, 1, "same", 2, 1, None, False), (5, 5, 3)),
}
TRANSPOSE_CASES = {
    # Conv2DTranspose(filters, kernel, strides, padding, output_padding, dilation_rate,
    # activation, use_bias), input
    "upsample_same": ((3, 3, 2, "same", None, 1, None, True), (3, 4, 2)),
    "upsample_valid_tanh": ((2, 3, 2, "valid", None, 1, "tanh", True), (3, 3, 2)),
    "stride_over_kernel": ((2, 2, 3, "valid", None, 1, None, True), (2, 3, 2)),
    "output_padding_no_bias": ((2, (3, 2), (3, 2), "same", (2, 1), 1, None, False), (2, 3, 2)),
    "dilated": ((2, 3, 1, "same", None, 2, "sigmoid", True), (4, 4, 2)),
}


def conv2d(args):
    filters, kernel, strides, padding, dilation, groups, activation = args
    return Conv2D(filters, kernel, strides, padding, dilation, groups, activation)


def depthwise_conv2d(args):
    kernel, strides, padding, multiplier, dilation, activation, use_bias = args
    return DepthwiseConv2D(kernel, strides, padding, multiplier, dilation, activation, use_bias)


def separable_conv2d(args):
    filters, kernel, strides, padding, dilation, multiplier, activation, use_bias = args
    return SeparableConv2D(
        filters, kernel, strides, padding, dilation, multiplier, activation, use_bias
    )


def conv2d_transpose(args):
    filters, kernel, strides, padding, output_padding, dilation, activation, use_bias = args
    return Conv2DTranspose(
        filters, kernel, strides, padding, output_padding, dilation, activation, use_bias
    )


CASES = {
    **{f"Conv2D-{name}": (conv2d, *case) for name, case in CONV_CASES.items()},
    **{f"Depthwise-{name}": (depthwise_conv2d, *case) for name, case in DEPTHWISE_CASES.items()},
    **{f"Separable-{name}": (separable_conv2d, *case) for name, case in SEPARABLE_CASES.items()},
    **{f"Transpose-{name}": (conv2d_transpose, *case) for name, case in TRANSPOSE_CASES.items()},
}


def built(case, rng):
    """The layer of ``case``, built, with a random bias (zeros would hide a misplaced one)."""
    make, args, shape = CASES[case]
    layer = make(args)
    layer.build(shape)
    if "bias" in layer.params:
        bias = layer.params["bias"]
        bias[...] = backend.to_device(rng.standard_normal(bias.shape))
    return layer, shape


@pytest.mark.parametrize("case", list(CASES))
def test_gradients_match_central_differences(backend_name, float64, rng, case):
    layer, shape = built(case, rng)
    check_layer_gradients(layer, backend.to_device(rng.standard_normal((2, *shape))), rng)


@pytest.mark.parametrize("case", list(CASES))
def test_backward_without_input_gradient_returns_none_and_the_same_weight_gradients(
    backend_name, float64, rng, case
):
    """A model's first layer is not asked for dx; its weight gradients do not change."""
    layer, shape = built(case, rng)
    x = backend.to_device(rng.standard_normal((2, *shape)))
    dy = backend.to_device(rng.standard_normal((2, *layer.compute_output_shape(shape))))
    _, dx, expected = forward_backward(layer, x, dy)
    _, no_dx, grads = forward_backward(layer, x, dy, needs_input_grad=(False,))
    assert dx is not None and no_dx is None
    assert grads.keys() == expected.keys() == layer.params.keys()
    for name in grads:
        np.testing.assert_array_equal(
            backend.to_numpy(grads[name]), backend.to_numpy(expected[name])
        )


@pytest.mark.parametrize("case", list(CASES))
def test_float32_stays_float32(backend_name, rng, case):
    layer, shape = built(case, rng)
    x = backend.to_device(rng.standard_normal((2, *shape)).astype(np.float32))
    y = layer.forward(x, ctx := training_context())
    dx = layer.backward(ctx, backend.to_device(np.ones(y.shape, np.float32)))
    assert y.dtype == dx.dtype == np.float32
    assert {name: g.dtype for name, g in ctx.grads.items()} == dict.fromkeys(
        layer.params, np.float32
    )


def stacked_family():
    """Each layer of the family once, in one graph: (N, 7, 7, 4) -> (N, 7, 7, 3)."""
    inputs = Input((7, 7, 4))
    y = Conv2D(4, 3, padding="same", dilation_rate=2, groups=2, activation="relu")(inputs)
    y = DepthwiseConv2D(3, depth_multiplier=2, padding="same")(y)
    y = SeparableConv2D(4, 3, strides=2, padding="same", activation="tanh")(y)
    return Model(inputs, Conv2DTranspose(3, 3, strides=2, output_padding=0, padding="same")(y))


def test_a_model_of_the_family_matches_central_differences(backend_name, float64, rng):
    """Through the graph: each layer's backward feeds the next one's (input and weights)."""
    x = backend.to_device(rng.standard_normal((2, 7, 7, 4)))
    check_model_gradients(stacked_family(), x, rng)


def test_a_prediction_between_forward_and_backward_changes_nothing(backend_name, float64, rng):
    """In a model, each layer's inference calls have buffers of their own."""
    model = stacked_family()
    x = backend.to_device(rng.standard_normal((3, 7, 7, 4)))
    dy = backend.to_device(rng.standard_normal((3, 7, 7, 3)))
    weights = model.trainable_weights
    _, tape = model.forward_with_tape(x, input_gradients=True)
    (expected_dx,), expected = tape.backward([dy], weights)
    _, tape = model.forward_with_tape(x, input_gradients=True)
    model.predict(rng.standard_normal((5, 7, 7, 4)))
    (dx,), grads = tape.backward([dy], weights)
    np.testing.assert_array_equal(backend.to_numpy(dx), backend.to_numpy(expected_dx))
    for g, e in zip(grads, expected, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(g), backend.to_numpy(e))


# -- argument errors: the argument, its value and what is expected, and nothing made -------

ARGUMENT_CASES = {
    "groups_not_dividing_filters": (
        lambda: Conv2D(4, 3, groups=3),
        ["filters", "groups", "filters=4", "groups=3"],
    ),
    "groups_zero": (lambda: Conv2D(4, 3, groups=0), ["groups", "positive", "0"]),
    "groups_float": (lambda: Conv2D(4, 3, groups=2.0), ["groups", "2.0"]),
    "conv_strides_with_dilation": (
        lambda: Conv2D(4, 3, strides=2, dilation_rate=2),
        ["strides > 1", "dilation_rate > 1", "strides=(2, 2)", "dilation_rate=(2, 2)"],
    ),
    "dilation_zero": (lambda: Conv2D(4, 3, dilation_rate=0), ["dilation_rate", "0"]),
    "dilation_one_number_tuple": (
        lambda: Conv2D(4, 3, dilation_rate=(2,)),
        ["dilation_rate", "(2,)"],
    ),
    "depth_multiplier_zero": (
        lambda: DepthwiseConv2D(3, depth_multiplier=0),
        ["depth_multiplier", "positive", "0"],
    ),
    "depth_multiplier_float": (
        lambda: SeparableConv2D(4, 3, depth_multiplier=1.5),
        ["depth_multiplier", "1.5"],
    ),
    "depthwise_initializer": (
        lambda: DepthwiseConv2D(3, depthwise_initializer="kaiming"),
        ["'kaiming'", "glorot_uniform", "he_normal"],
    ),
    "pointwise_initializer": (
        lambda: SeparableConv2D(4, 3, pointwise_initializer="xavier"),
        ["'xavier'", "glorot_uniform"],
    ),
    "depthwise_regularizer": (
        lambda: DepthwiseConv2D(3, depthwise_regularizer="l3"),
        ["'l3'", "l1", "l2"],
    ),
    "depthwise_padding": (lambda: DepthwiseConv2D(3, padding="full"), ["'full'", "valid", "same"]),
    "separable_filters": (lambda: SeparableConv2D(0, 3), ["filters", "positive", "0"]),
    "transpose_filters": (lambda: Conv2DTranspose(-2, 3), ["filters", "-2"]),
    "output_padding_equal_to_strides": (
        lambda: Conv2DTranspose(4, 3, strides=2, output_padding=2),
        ["output_padding", "strictly less than strides", "output_padding=(2, 2)", "(2, 2)"],
    ),
    "output_padding_with_unit_strides": (
        lambda: Conv2DTranspose(4, 3, output_padding=(0, 1)),
        ["output_padding", "axis 1", "strides=(1, 1)"],
    ),
    "output_padding_negative": (
        lambda: Conv2DTranspose(4, 3, strides=2, output_padding=-1),
        ["output_padding", "-1", "non-negative"],
    ),
    "output_padding_three_numbers": (
        lambda: Conv2DTranspose(4, 3, strides=2, output_padding=(1, 1, 1)),
        ["output_padding", "(1, 1, 1)"],
    ),
    "transpose_explicit_padding": (
        lambda: Conv2DTranspose(4, 3, padding=1),
        ["padding", "1", "valid", "same"],
    ),
    "transpose_padding_typo": (
        lambda: Conv2DTranspose(4, 3, padding="full"),
        ["'full'", "Conv2DTranspose", "expected 'valid' or 'same'"],
    ),
    "transpose_strides_with_dilation": (
        lambda: Conv2DTranspose(4, 3, strides=(1, 2), dilation_rate=(2, 1)),
        ["strides > 1", "dilation_rate > 1", "(1, 2)", "(2, 1)"],
    ),
}


def refused(call, words):
    with pytest.raises(ValueError) as excinfo:
        call()
    for word in words:
        assert word in str(excinfo.value), f"{word!r} not in: {excinfo.value}"
    return excinfo.value


@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
def test_bad_arguments_are_refused(case):
    call, words = ARGUMENT_CASES[case]
    refused(call, words)


INPUT_CASES = {
    # a layer, an input shape it cannot take, and what the message says
    "channels_not_divisible_by_groups": (
        lambda: Conv2D(4, 3, groups=2),
        (6, 6, 3),
        ["3 channels", "groups=2", "(6, 6, 3)"],
    ),
    "dilated_kernel_larger_than_input": (
        lambda: Conv2D(2, 3, dilation_rate=3),
        (6, 6, 1),
        ["kernel (3, 3)", "dilated by (3, 3)", "spanning (7, 7)", "(6, 6)"],
    ),
    "depthwise_on_flat_input": (
        lambda: DepthwiseConv2D(3),
        (10,),
        ["(height, width, channels)", "(10,)"],
    ),
    "separable_kernel_larger_than_input": (
        lambda: SeparableConv2D(2, (5, 1)),
        (4, 6, 2),
        ["kernel (5, 1)", "(4, 6)"],
    ),
    "transpose_on_flat_input": (
        lambda: Conv2DTranspose(2, 3),
        (10,),
        ["(height, width, channels)", "(10,)"],
    ),
    "transpose_empty_output": (
        lambda: Conv2DTranspose(2, 2, strides=2, padding="same", output_padding=0),
        (1, 3, 2),
        ["empty output", "(1, 3, 2)", "output_padding (0, 0)"],
    ),
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
def test_inputs_a_layer_cannot_take_are_refused_and_nothing_is_built(case):
    make, shape, words = INPUT_CASES[case]
    layer = make()
    refused(lambda: Sequential([Input(shape), layer]), words)
    assert not layer.built and not layer.params


def test_keras_output_sizes_of_conv2d_transpose():
    """Keras's rule, per axis (keras/src/backend/common/backend_utils.py), span = the
    dilated kernel: 'valid' (H-1)*s + max(span, s), or + span + output_padding; 'same'
    H*s, or (H-1)*s + span % 2 + output_padding."""
    shape = (5, 4, 3)
    for args, expected in [
        ({"kernel_size": 3, "strides": 2}, (11, 9)),
        ({"kernel_size": 2, "strides": 3}, (15, 12)),
        ({"kernel_size": 3, "strides": 2, "padding": "same"}, (10, 8)),
        ({"kernel_size": 4, "strides": 3, "padding": "same", "output_padding": (2, 1)}, (14, 10)),
        ({"kernel_size": 3, "strides": 3, "output_padding": (2, 0)}, (17, 12)),
        ({"kernel_size": 3, "dilation_rate": 2}, (9, 8)),
    ]:
        assert Conv2DTranspose(2, **args).compute_output_shape(shape) == (*expected, 2), args


# -- saving ---------------------------------------------------------------------------


def family_model():
    utils.set_random_seed(0)
    inputs = Input((9, 9, 4))
    y = Conv2D(4, 3, padding="same", dilation_rate=2, groups=2, activation="relu")(inputs)
    y = DepthwiseConv2D(3, depth_multiplier=2, padding="same", depthwise_regularizer="l2")(y)
    y = SeparableConv2D(4, 3, strides=2, padding="same", activation="tanh")(y)
    y = Conv2DTranspose(3, 3, strides=2, output_padding=(0, 1), activation="relu")(y)
    outputs = Dense(3)(Flatten()(y))
    model = Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_model_file_round_trip_predicts_and_trains_on_identically(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 9, 9, 4)).astype("float32"), rng.integers(0, 3, 16)
    model = family_model()
    model.fit(x, y, batch_size=8, epochs=1, seed=0, verbose=0)
    model.save(tmp_path / "family.npz")
    loaded = engine.load_model(tmp_path / "family.npz")
    for ours, theirs in zip(model.layers, loaded.layers, strict=True):
        assert type(ours) is type(theirs) and ours.get_config() == theirs.get_config()
    assert np.array_equal(loaded.predict(x), model.predict(x))
    model.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    for w, v in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert np.array_equal(w, v)
