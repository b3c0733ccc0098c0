"""Layers of xpcnn: each follows the protocol in layers/base.py.

Also seen as ``engine.layers`` (the same classes), as Keras's ``keras.layers``.
"""

# The CPU's fused steps (engine/fusion.py): Conv2D + pooling, BatchNormalization + pooling.
from layers import batchnorm_pool, conv_pool  # noqa: F401
from layers.activations import Activation, ReLU, Sigmoid, Softmax, Tanh
from layers.base import Layer
from layers.conv import Conv2D
from layers.core import Dense, Flatten
from layers.dropout import Dropout, SpatialDropout2D
from layers.input_layer import Input, InputLayer
from layers.merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from layers.normalization import BatchNormalization, LayerNormalization
from layers.pooling import MaxPooling2D

__all__ = [
    "Activation",
    "Add",
    "Average",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "InputLayer",
    "Layer",
    "LayerNormalization",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "Multiply",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "SpatialDropout2D",
    "Subtract",
    "Tanh",
]
