"""Layers of xpcnn: each follows the protocol in layers/base.py.

Also seen as ``engine.layers`` (the same classes), as Keras's ``keras.layers``.
"""

# The CPU's fused steps (engine/fusion.py): Conv2D + pooling, BatchNormalization + pooling.
from layers import batchnorm_pool, conv_pool  # noqa: F401
from layers.activations import ELU, Activation, LeakyReLU, PReLU, ReLU, Sigmoid, Softmax, Tanh
from layers.augmentation import RandomContrast, RandomFlip
from layers.base import Layer
from layers.conv import Conv2D
from layers.conv_transpose import Conv2DTranspose
from layers.core import Dense, Flatten
from layers.depthwise_conv import DepthwiseConv2D
from layers.dropout import Dropout, SpatialDropout2D
from layers.global_pooling import GlobalAveragePooling2D, GlobalMaxPooling2D
from layers.input_layer import Input, InputLayer
from layers.merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from layers.normalization import BatchNormalization, LayerNormalization
from layers.padding import Cropping2D, ZeroPadding2D
from layers.pooling import AveragePooling2D, MaxPooling2D
from layers.random_affine import RandomRotation, RandomTranslation, RandomZoom
from layers.rescaling import Rescaling
from layers.reshape import Permute, Reshape
from layers.separable_conv import SeparableConv2D
from layers.upsampling import UpSampling2D

__all__ = [
    "Activation",
    "Add",
    "Average",
    "AveragePooling2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Cropping2D",
    "Conv2DTranspose",
    "Dense",
    "DepthwiseConv2D",
    "ELU",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "Layer",
    "LeakyReLU",
    "LayerNormalization",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "PReLU",
    "RandomContrast",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "Multiply",
    "Permute",
    "ReLU",
    "Rescaling",
    "Reshape",
    "SeparableConv2D",
    "Sigmoid",
    "Softmax",
    "SpatialDropout2D",
    "Subtract",
    "Tanh",
    "UpSampling2D",
    "ZeroPadding2D",
]
