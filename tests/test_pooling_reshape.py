"""AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, UpSampling2D, ZeroPadding2D,
Cropping2D, Reshape, Permute and Rescaling: gradients against central differences (float64,
every backend), dtypes, bad arguments, and model.save / engine.load_model round trips."""

import numpy as np
import pytest

import engine
from engine import Model, Sequential, backend, utils
from layers import (
    AveragePooling2D,
    Conv2D,
    Cropping2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Input,
    Permute,
    Rescaling,
    Reshape,
    UpSampling2D,
    ZeroPadding2D,
)
from tests.gradient_check import check_layer_gradients, forward_backward
from tests.test_gradients import tie_free
from tests.test_reliability_errors import refused

# name -> (make the layer, per-sample input shape): every option the gradient checks cover.
CASES = {
    "avg 2x2": (lambda: AveragePooling2D(2), (6, 6, 2)),
    "avg 2x2 odd": (lambda: AveragePooling2D(2), (7, 5, 3)),  # the odd edge gets no gradient
    "avg 2x2 same": (lambda: AveragePooling2D(2, padding="same"), (5, 5, 1)),
    "avg 3x3/2 overlapping": (lambda: AveragePooling2D(3, strides=2), (7, 7, 2)),
    "avg 3x3/1 same": (lambda: AveragePooling2D(3, strides=1, padding="same"), (5, 4, 2)),
    "avg 2x3/(1,2)": (lambda: AveragePooling2D((2, 3), strides=(1, 2)), (5, 7, 2)),
    "avg 4x4/3 same": (lambda: AveragePooling2D(4, strides=3, padding="same"), (5, 7, 1)),
    "global avg": (GlobalAveragePooling2D, (4, 5, 3)),
    "global avg keepdims": (lambda: GlobalAveragePooling2D(keepdims=True), (3, 3, 2)),
    "global max": (GlobalMaxPooling2D, (4, 5, 3)),
    "global max keepdims": (lambda: GlobalMaxPooling2D(keepdims=True), (1, 3, 2)),
    "nearest 2x2": (UpSampling2D, (3, 4, 2)),
    "nearest 3x1": (lambda: UpSampling2D((3, 1)), (2, 3, 2)),
    "bilinear 2x2": (lambda: UpSampling2D(interpolation="bilinear"), (3, 4, 2)),
    "bilinear 3x2": (lambda: UpSampling2D((3, 2), interpolation="bilinear"), (4, 2, 1)),
    "bilinear 1x5 of one column": (lambda: UpSampling2D((1, 5), "bilinear"), (3, 1, 2)),
    "zero padding": (lambda: ZeroPadding2D(((1, 0), (2, 3))), (3, 4, 2)),
    "cropping": (lambda: Cropping2D(((1, 0), (2, 1))), (4, 5, 2)),
    "reshape": (lambda: Reshape((2, -1)), (3, 4, 2)),
    "permute": (lambda: Permute((3, 1, 2)), (2, 3, 4)),
    "rescaling": (lambda: Rescaling(0.5, offset=-1.0), (3, 4, 2)),
    "rescaling per channel": (lambda: Rescaling([2.0, -0.5], offset=[0.0, 1.0]), (3, 4, 2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gradients(backend_name, float64, rng, case):
    make, shape = CASES[case]
    layer = make()
    layer.build(shape)
    # Distinct values: the global maximum has one place, so central differences see it.
    check_layer_gradients(layer, backend.to_device(tie_free((2, *shape), rng)), rng)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_outputs_and_gradients_keep_the_dtype(backend_name, rng, case, dtype):
    make, shape = CASES[case]
    previous = backend.floatx()
    backend.set_floatx(dtype)
    try:
        layer = make()
        layer.build(shape)
        x = backend.to_device(rng.standard_normal((3, *shape)).astype(dtype))
        y = layer.forward(x, engine.context.Context())
        dy = backend.to_device(rng.standard_normal(y.shape).astype(dtype))
        y_train, dx, _ = forward_backward(layer, x, dy)
    finally:
        backend.set_floatx(previous)
    assert y.dtype == y_train.dtype == dx.dtype == dtype
    assert y.shape == (3, *layer.compute_output_shape(shape)) and dx.shape == x.shape
    np.testing.assert_array_equal(backend.to_numpy(y), backend.to_numpy(y_train))


def test_global_max_pooling_tie_goes_to_the_first_maximum(backend_name):
    """A map of equal values sends each channel's gradient to its first (top-left) cell."""
    x = backend.to_device(np.ones((2, 3, 4, 2)))
    dy = backend.to_device(np.array([[1.0, 2.0], [3.0, 4.0]]))
    _, dx, _ = forward_backward(GlobalMaxPooling2D(), x, dy)
    expected = np.zeros((2, 3, 4, 2))
    expected[:, 0, 0, :] = [[1.0, 2.0], [3.0, 4.0]]
    np.testing.assert_array_equal(backend.to_numpy(dx), expected)


def test_average_pooling_same_counts_only_the_real_cells():
    """A 2x2 'same' window over the last row of a 5x5 map of ones averages one or two real
    cells: 1, not 1/2 or 1/4 as a division by the full window would give."""
    y = AveragePooling2D(2, padding="same")(np.ones((1, 5, 5, 1)))
    np.testing.assert_array_equal(y, np.ones((1, 3, 3, 1)))


def test_shapes_in_a_functional_model():
    inputs = Input((6, 5, 3))
    x = ZeroPadding2D(1)(inputs)
    x = Cropping2D(((0, 1), (2, 0)))(x)
    x = UpSampling2D((1, 2), interpolation="bilinear")(x)
    x = AveragePooling2D(3, strides=2, padding="same")(x)
    x = Permute((2, 1, 3))(x)
    x = Reshape((-1, 3))(x)
    assert x.shape == (None, 5 * 4, 3)
    pooled = GlobalMaxPooling2D(keepdims=True)(Reshape((4, 5, 3))(x))
    assert pooled.shape == (None, 1, 1, 3)
    assert GlobalAveragePooling2D()(inputs).shape == (None, 3)
    assert Rescaling(2.0)(inputs).shape == (None, 6, 5, 3)


# -- bad arguments: a clear error naming the argument and the value ------------------------

BAD_ARGUMENTS = {
    "avg_pool_size_0": (lambda: AveragePooling2D(0), ["AveragePooling2D pool_size", "0"]),
    "avg_pool_size_negative": (lambda: AveragePooling2D((2, -2)), ["pool_size", "(2, -2)"]),
    "avg_pool_size_float": (lambda: AveragePooling2D(1.5), ["pool_size", "1.5"]),
    "avg_strides_0": (lambda: AveragePooling2D(2, strides=0), ["strides", "0"]),
    "avg_padding": (lambda: AveragePooling2D(2, padding="full"), ["'full'", "valid", "same"]),
    "avg_pool_larger_than_input": (
        lambda: Sequential([AveragePooling2D(7, input_shape=(6, 6, 1))]),
        ["AveragePooling2D", "(7, 7)", "larger than its padded input"],
    ),
    "avg_on_flat_input": (
        lambda: Sequential([AveragePooling2D(2, input_shape=(10,))]),
        ["(height, width, channels)", "(10,)"],
    ),
    "global_keepdims": (lambda: GlobalAveragePooling2D(keepdims="yes"), ["keepdims", "'yes'"]),
    "global_max_keepdims": (lambda: GlobalMaxPooling2D(keepdims=1), ["keepdims", "1"]),
    "global_on_flat_input": (
        lambda: Sequential([GlobalMaxPooling2D(input_shape=(4, 3))]),
        ["GlobalMaxPooling2D", "(height, width, channels)", "(4, 3)"],
    ),
    "upsampling_size_0": (lambda: UpSampling2D(0), ["UpSampling2D size", "0"]),
    "upsampling_size_float": (lambda: UpSampling2D(1.5), ["size", "1.5"]),
    "upsampling_size_three": (lambda: UpSampling2D((2, 2, 2)), ["size", "(2, 2, 2)"]),
    "upsampling_interpolation": (
        lambda: UpSampling2D(interpolation="bicubic"),
        ["'bicubic'", "nearest", "bilinear"],
    ),
    "upsampling_interpolation_none": (
        lambda: UpSampling2D(interpolation=None),
        ["interpolation", "None", "nearest"],
    ),
    "upsampling_on_flat_input": (
        lambda: Sequential([UpSampling2D(input_shape=(4,))]),
        ["UpSampling2D", "(4,)"],
    ),
    "padding_negative": (lambda: ZeroPadding2D(-1), ["ZeroPadding2D padding", "-1"]),
    "padding_three": (lambda: ZeroPadding2D((1, 2, 3)), ["padding", "(1, 2, 3)"]),
    "padding_bad_pair": (lambda: ZeroPadding2D(((1, 2), (3,))), ["padding", "((1, 2), (3,))"]),
    "padding_string": (lambda: ZeroPadding2D("same"), ["padding", "'same'"]),
    "padding_float": (lambda: ZeroPadding2D(1.5), ["padding", "1.5"]),
    "cropping_negative": (lambda: Cropping2D(((1, 2), (3, -1))), ["cropping", "-1"]),
    "cropping_bool": (lambda: Cropping2D(True), ["cropping", "True"]),
    "cropping_everything": (
        lambda: Sequential([Cropping2D((4, 1), input_shape=(8, 8, 1))]),
        ["Cropping2D", "((4, 4), (1, 1))", "(8, 8, 1)", "smaller"],
    ),
    "reshape_two_unknowns": (lambda: Reshape((3, -1, -1)), ["target_shape", "(3, -1, -1)"]),
    "reshape_zero": (lambda: Reshape((0, 5)), ["target_shape", "(0, 5)"]),
    "reshape_int": (lambda: Reshape(5), ["target_shape", "5"]),
    "reshape_float": (lambda: Reshape((2.5, 2)), ["target_shape", "2.5"]),
    "reshape_size_mismatch": (
        lambda: Sequential([Reshape((3, 5), input_shape=(4, 4, 1))]),
        ["Reshape", "(4, 4, 1)", "16 values", "(3, 5)"],
    ),
    "reshape_unknown_does_not_divide": (
        lambda: Sequential([Reshape((3, -1), input_shape=(4, 4, 1))]),
        ["(4, 4, 1)", "(3, -1)"],
    ),
    "permute_repeated": (lambda: Permute((1, 1)), ["Permute dims", "(1, 1)"]),
    "permute_zero_based": (lambda: Permute((0, 1)), ["dims", "(0, 1)", "from 1"]),
    "permute_empty": (lambda: Permute(()), ["dims", "()"]),
    "permute_rank": (
        lambda: Sequential([Permute((2, 1), input_shape=(4, 4, 1))]),
        ["Permute", "(2, 1)", "rank 2", "(4, 4, 1)"],
    ),
    "rescaling_string": (lambda: Rescaling("1/255"), ["Rescaling scale", "'1/255'"]),
    "rescaling_none": (lambda: Rescaling(None), ["scale", "None"]),
    "rescaling_nan": (lambda: Rescaling(float("nan")), ["scale", "nan"]),
    "rescaling_offset_inf": (lambda: Rescaling(1.0, offset=float("inf")), ["offset", "inf"]),
    "rescaling_empty": (lambda: Rescaling([]), ["scale", "[]"]),
    "rescaling_bool": (lambda: Rescaling(True), ["scale", "True"]),
    "rescaling_shape": (
        lambda: Sequential([Rescaling([1.0, 2.0, 3.0, 4.0], input_shape=(2, 2, 3))]),
        ["Rescaling", "scale of shape (4,)", "(2, 2, 3)", "trailing axes"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_bad_arguments_are_refused(case):
    call, words = BAD_ARGUMENTS[case]
    refused(call, ValueError, words)


def test_a_refused_shape_leaves_the_layer_unbuilt():
    layer = Cropping2D(3)
    refused(lambda: layer.build((6, 6, 1)), ValueError, ["(6, 6, 1)"])
    assert not layer.built and layer.input_shape is None
    layer.build((7, 7, 1))
    assert layer.built


# -- saving ---------------------------------------------------------------------------------


def _sequential():
    return Sequential(
        [
            Rescaling([0.5, 2.0], offset=0.1, input_shape=(9, 8, 2)),
            ZeroPadding2D(((1, 0), (0, 2))),
            Conv2D(3, 3, activation="relu"),
            AveragePooling2D(3, strides=2, padding="same"),
            UpSampling2D((2, 1), interpolation="bilinear"),
            UpSampling2D(2),
            Cropping2D(((1, 0), (0, 1))),
            Permute((2, 1, 3)),
            Reshape((-1, 3)),
            Reshape((3, -1, 3)),
            GlobalMaxPooling2D(keepdims=True),
            Flatten(),
            Dense(2),
        ]
    )


def _functional():
    inputs = Input((8, 8, 2))
    x = AveragePooling2D(2)(Conv2D(4, 3, padding="same")(inputs))
    a = GlobalAveragePooling2D()(x)
    b = GlobalMaxPooling2D()(x)
    return Model(inputs, Dense(3)(engine.layers.Concatenate()([a, b])))


@pytest.mark.parametrize("make", [_sequential, _functional], ids=["sequential", "functional"])
def test_save_and_load_model_round_trip(tmp_path, make):
    utils.set_random_seed(0)
    model = make()
    model.compile("adam", "mse")
    x = np.random.default_rng(1).random((6, *model.inputs[0].shape[1:])).astype("float32")
    y = np.random.default_rng(2).random((6, *model.outputs[0].shape[1:])).astype("float32")
    model.fit(x, y, batch_size=3, epochs=1, seed=0, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = engine.load_model(tmp_path / "model.npz")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    for ours, theirs in zip(model.layers, loaded.layers):
        assert ours.get_config() == theirs.get_config()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    h1 = model.fit(x, y, batch_size=3, epochs=1, seed=3, verbose=0)
    h2 = loaded.fit(x, y, batch_size=3, epochs=1, seed=3, verbose=0)
    assert h1.history == h2.history
