"""The tutorial network in xpcnn and, for comparisons, the same network in PyTorch.

Conv2D(32, 3, relu) - MaxPool 2 - Conv2D(64, 3, relu) - MaxPool 2 - Flatten -
Dense(64, relu) - Dense(10), trained with Adam and sparse crossentropy from logits.
With ``with_bn_dropout=True``: a BatchNormalization after each Conv2D (before its pooling)
and Dropout(0.5) before the last Dense.
PyTorch is a benchmark-only tool, never a dependency of the engine.
"""

import itertools
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Sequential, backend, losses  # noqa: E402
from engine.datasets import DatasetError, mnist  # noqa: E402
from layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D  # noqa: E402
from optim import Adam  # noqa: E402

DATA_DIR = os.environ.get(
    "XPCNN_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared/data")
)


def mnist_batches(batch):
    """Endless successive (x (batch, 28, 28, 1) float32 in [0, 1], y) batches of real MNIST
    training images, or of random images where the data is missing. A benchmark must not
    train on one batch over and over: the model would fit it, and the vanishing gradients
    (denormal floats) would make the step slower than real training."""
    try:
        (x, y), _ = mnist.load_data(DATA_DIR)
        x = x.reshape(-1, 28, 28, 1)
    except DatasetError:
        rng = np.random.default_rng(0)
        x, y = rng.integers(0, 256, (8192, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 8192)
    for start in itertools.cycle(range(0, len(x) - batch + 1, batch)):
        part = slice(start, start + batch)
        yield (x[part] / np.float32(255)).astype(np.float32), y[part].astype(np.int64)


def next_device_batch(batches):
    """A benchmark setup: the next (x, y) of ``batches`` moved to the device, outside the clock.
    A new batch every round, for the reason given in mnist_batches."""

    def setup():
        x, y = next(batches)
        return (backend.to_device(x), backend.to_device(y)), {}

    return setup


def tutorial_model(metrics=("accuracy",), with_bn_dropout=False, image_size=28):
    """The compiled xpcnn model, its weights on the active backend; ``image_size`` x
    ``image_size`` x 1 inputs (the scaling benchmark's larger images)."""
    model = Sequential(
        [
            Conv2D(32, 3, activation="relu", input_shape=(image_size, image_size, 1)),
            *_only_if(with_bn_dropout, BatchNormalization),
            MaxPooling2D(2),
            Conv2D(64, 3, activation="relu"),
            *_only_if(with_bn_dropout, BatchNormalization),
            MaxPooling2D(2),
            Flatten(),
            Dense(64, activation="relu"),
            *_only_if(with_bn_dropout, lambda: Dropout(0.5)),
            Dense(10),
        ]
    )
    model.compile(
        optimizer=Adam(learning_rate=1e-3),
        loss=losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=list(metrics),
    )
    return model


def torch_tutorial(torch, device="cpu", with_bn_dropout=False, image_size=28):
    """(model, optimizer, loss function) of the same network in PyTorch (NCHW inputs)."""
    nn = torch.nn

    def batch_norm(channels):  # Keras's defaults: PyTorch's momentum is 1 - Keras's
        return lambda: nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)

    model = nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        *_only_if(with_bn_dropout, batch_norm(32)),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        *_only_if(with_bn_dropout, batch_norm(64)),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * _flat_side(image_size) ** 2, 64),
        nn.ReLU(),
        *_only_if(with_bn_dropout, lambda: nn.Dropout(0.5)),
        nn.Linear(64, 10),
    ).to(device)
    # eps as Keras's Adam (1e-7); where it is added differs (keras issue 17391), which
    # changes nothing in the cost of a step.
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    return model, optimizer, nn.CrossEntropyLoss()


def _flat_side(image_size):
    """The side of the last feature map: two rounds of a valid 3x3 convolution and 2x2 pooling."""
    for _ in range(2):
        image_size = (image_size - 2) // 2
    return image_size


def _only_if(enabled, make):
    """[make()] when ``enabled``, else []: a layer the with_bn_dropout variant adds."""
    return [make()] if enabled else []
