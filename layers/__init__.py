"""Layers of xpcnn: each follows the protocol in layers/base.py."""

from layers.activations import Activation, ReLU, Sigmoid, Softmax, Tanh
from layers.base import Layer
from layers.conv import Conv2D
from layers.core import Dense, Flatten
from layers.pooling import MaxPooling2D

__all__ = [
    "Activation",
    "Conv2D",
    "Dense",
    "Flatten",
    "Layer",
    "MaxPooling2D",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
