"""Layers of xpcnn: each follows the protocol in layers/base.py.

Also seen as ``engine.layers`` (the same classes), as Keras's ``keras.layers``.
"""

from layers import conv_pool  # noqa: F401  (registers the CPU's fused Conv2D + pooling step)
from layers.activations import ELU, Activation, LeakyReLU, PReLU, ReLU, Sigmoid, Softmax, Tanh
from layers.augmentation import RandomContrast, RandomFlip
from layers.base import Layer
from layers.conv import Conv2D
from layers.core import Dense, Flatten
from layers.input_layer import Input, InputLayer
from layers.merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from layers.pooling import MaxPooling2D
from layers.random_affine import RandomRotation, RandomTranslation, RandomZoom

__all__ = [
    "Activation",
    "Add",
    "Average",
    "Concatenate",
    "Conv2D",
    "Dense",
    "ELU",
    "Flatten",
    "Input",
    "InputLayer",
    "Layer",
    "LeakyReLU",
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
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Subtract",
    "Tanh",
]
