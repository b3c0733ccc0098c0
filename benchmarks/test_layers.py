"""Forward and backward of each layer of the tutorial network, and of the other layers on
maps of its sizes, per backend and batch size.

Each call gets a Context as a model's graph gives it (engine/graph.py): a training call
that backward follows, with scratch buffers kept from call to call. The first
convolution's backward skips the input gradient, as in training (a model never asks its
first layer for it). The 'fused' cases are what the fusion pass runs on the CPU for a
Conv2D or a BatchNormalization followed by 2x2 max pooling (layers/conv_pool.py,
layers/batchnorm_pool.py); the GPU runs the layers one by one, so they skip there.
"""

import numpy as np
import pytest
from timing import BATCHES, run_timed

from engine import backend, fusion
from engine.context import Context
from engine.workspace import Workspace
from layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Conv2DTranspose,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    LayerNormalization,
    MaxPooling2D,
    RandomFlip,
    RandomRotation,
    SeparableConv2D,
    SpatialDropout2D,
    UpSampling2D,
)

# name -> (make the layer(s), per-sample input shape)
LAYERS = {
    "conv1 Conv2D(32, 3, relu)": (lambda: Conv2D(32, 3, activation="relu"), (28, 28, 1)),
    "pool1 MaxPooling2D(2)": (lambda: MaxPooling2D(2), (26, 26, 32)),
    "conv2 Conv2D(64, 3, relu)": (lambda: Conv2D(64, 3, activation="relu"), (13, 13, 32)),
    "pool2 MaxPooling2D(2)": (lambda: MaxPooling2D(2), (11, 11, 64)),
    "flatten Flatten()": (Flatten, (5, 5, 64)),
    "dense1 Dense(64, relu)": (lambda: Dense(64, activation="relu"), (1600,)),
    "dense2 Dense(10)": (lambda: Dense(10), (64,)),
    # Other layers, on maps of the tutorial network's sizes.
    "avgpool AveragePooling2D(2) 26x26x32": (lambda: AveragePooling2D(2), (26, 26, 32)),
    "avgpool AveragePooling2D(2) 11x11x64": (lambda: AveragePooling2D(2), (11, 11, 64)),
    "avgpool AveragePooling2D(3, 2, same) 26x26x32": (
        lambda: AveragePooling2D(3, strides=2, padding="same"),
        (26, 26, 32),
    ),
    "gap GlobalAveragePooling2D() 26x26x32": (GlobalAveragePooling2D, (26, 26, 32)),
    "gap GlobalAveragePooling2D() 11x11x64": (GlobalAveragePooling2D, (11, 11, 64)),
    "gmp GlobalMaxPooling2D() 11x11x64": (GlobalMaxPooling2D, (11, 11, 64)),
    "up UpSampling2D(2, nearest) 14x14x32": (UpSampling2D, (14, 14, 32)),
    "up UpSampling2D(2, bilinear) 14x14x32": (
        lambda: UpSampling2D(interpolation="bilinear"),
        (14, 14, 32),
    ),
    # The convolution family, on conv2's input (and a 2x upsampling of a 14x14 map).
    "dilated Conv2D(64, 3, dilation_rate=2, relu)": (
        lambda: Conv2D(64, 3, dilation_rate=2, activation="relu"),
        (13, 13, 32),
    ),
    "grouped Conv2D(64, 3, groups=4, relu)": (
        lambda: Conv2D(64, 3, groups=4, activation="relu"),
        (13, 13, 32),
    ),
    "depthwise DepthwiseConv2D(3, relu)": (
        lambda: DepthwiseConv2D(3, activation="relu"),
        (13, 13, 32),
    ),
    "separable SeparableConv2D(64, 3, relu)": (
        lambda: SeparableConv2D(64, 3, activation="relu"),
        (13, 13, 32),
    ),
    "upsample Conv2DTranspose(32, 3, strides=2, same, relu)": (
        lambda: Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
        (14, 14, 32),
    ),
    # Activations whose backward needs their input, on conv1's output map.
    "Activation('gelu')": (lambda: Activation("gelu"), (26, 26, 32)),
    "Activation('swish')": (lambda: Activation("swish"), (26, 26, 32)),
    # Augmentation in front of conv1 (training mode: a draw per call).
    "RandomFlip()": (RandomFlip, (28, 28, 1)),
    "RandomRotation(0.1)": (lambda: RandomRotation(0.1), (28, 28, 1)),
    # What the tutorial network with BatchNormalization after each Conv2D and Dropout(0.5)
    # before the last Dense adds (benchmarks/tutorial.py, with_bn_dropout=True).
    "bn1 BatchNormalization()": (BatchNormalization, (26, 26, 32)),
    "bn2 BatchNormalization()": (BatchNormalization, (11, 11, 64)),
    "dropout Dropout(0.5)": (lambda: Dropout(0.5), (64,)),
    "spatial SpatialDropout2D(0.5)": (lambda: SpatialDropout2D(0.5), (26, 26, 32)),
    "layernorm LayerNormalization()": (LayerNormalization, (26, 26, 32)),
}
FUSED = {
    "conv1+pool1 fused": (lambda: Conv2D(32, 3, activation="relu"), (28, 28, 1)),
    "conv2+pool2 fused": (lambda: Conv2D(64, 3, activation="relu"), (13, 13, 32)),
    "bn1+pool1 fused": (BatchNormalization, (26, 26, 32)),
    "bn2+pool2 fused": (BatchNormalization, (11, 11, 64)),
}
FIRST = "conv1"


def _build(name, input_shape):
    """The layer (or fused step) for ``name``, built for ``input_shape``."""
    if name in FUSED:
        first, pool = FUSED[name][0](), MaxPooling2D(2)
        first.build(input_shape)
        pool.build(first.compute_output_shape(input_shape))
        return fusion.fused_step_for(first, pool)
    layer = LAYERS[name][0]()
    layer.build(input_shape)
    return layer


def _input(batch, shape, seed=0):
    x = np.random.default_rng(seed).standard_normal((batch, *shape)).astype(backend.floatx())
    return backend.to_device(x)


def _case(name, batch, bench_backend):
    """(built layer or fused step, input batch) for a case; fused steps skip off the CPU."""
    if name in FUSED and bench_backend != "numpy":
        pytest.skip("the fused Conv2D + pooling step runs on the CPU only")
    shape = LAYERS[name][1] if name in LAYERS else FUSED[name][1]
    return _build(name, shape), _input(batch, shape)


def _contexts(first=False):
    """Training contexts sharing one workspace, as one node of a model's plan has."""
    workspace = Workspace()
    return lambda: Context(
        training=True, for_backward=True, needs_input_grad=(not first,), workspace=workspace
    )


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", [*LAYERS, *FUSED])
def test_forward(benchmark, bench_backend, name, batch):
    layer, x = _case(name, batch, bench_backend)
    context = _contexts()
    run_timed(
        benchmark,
        lambda: layer.forward(x, context()),
        group="layer",
        case=f"{name} forward",
        batch=batch,
        column=bench_backend,
    )


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", [*LAYERS, *FUSED])
def test_backward(benchmark, bench_backend, name, batch):
    layer, x = _case(name, batch, bench_backend)
    dy = _input(batch, layer.forward(x, Context()).shape[1:], seed=1)
    first = name.startswith(FIRST)
    context = _contexts(first)

    def setup():
        ctx = context()
        layer.forward(x, ctx)  # backward consumes what forward keeps
        backend.synchronize()
        return (ctx, dy), {}

    run_timed(
        benchmark,
        layer.backward,
        setup=setup,
        group="layer",
        case=f"{name} backward" + (" (no dx)" if first else ""),
        batch=batch,
        column=bench_backend,
    )
