"""The networks the speed comparisons use, each in xpcnn and, the same, in PyTorch.

    tutorial            the tutorial CNN (Sequential)
    functional          the same network built with the functional API
    bn_dropout          the tutorial with BatchNormalization after each Conv2D and
                        Dropout(0.5) before the last Dense
    residual            a small residual network: a 3x3 conv stem of 32 filters, a residual
                        block of two 3x3 convolutions with BatchNormalization at 32 filters,
                        one at 64 (stride 2, 1x1 projection), global average pooling, Dense(10)
    basic               TensorFlow's "basic classification" network: Flatten, Dense(128, relu),
                        Dense(10), where the engine's fixed cost per step is what is measured

All train with Adam and sparse crossentropy from logits (and the accuracy metric for
xpcnn, as a Keras user compiles them). PyTorch is a benchmark-only tool.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tutorial import torch_tutorial, tutorial_model  # noqa: E402

import engine  # noqa: E402
from engine import layers  # noqa: E402


def _compiled(model):
    model.compile(
        optimizer=engine.optimizers.Adam(1e-3),
        loss=engine.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def functional():
    inputs = engine.Input((28, 28, 1))
    x = layers.MaxPooling2D(2)(layers.Conv2D(32, 3, activation="relu")(inputs))
    x = layers.MaxPooling2D(2)(layers.Conv2D(64, 3, activation="relu")(x))
    x = layers.Dense(64, activation="relu")(layers.Flatten()(x))
    return _compiled(engine.Model(inputs, layers.Dense(10)(x)))


def _block(x, filters, strides=1):
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    if strides != 1 or x.shape[-1] != filters:
        x = layers.BatchNormalization()(
            layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        )
    return layers.ReLU()(layers.Add()([y, x]))


def residual():
    inputs = engine.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = _block(_block(x, 32), 64, strides=2)
    return _compiled(engine.Model(inputs, layers.Dense(10)(layers.GlobalAveragePooling2D()(x))))


def basic():
    return _compiled(
        engine.Sequential(
            [
                layers.Input((28, 28, 1)),
                layers.Flatten(),
                layers.Dense(128, activation="relu"),
                layers.Dense(10),
            ]
        )
    )


OURS = {
    "tutorial": tutorial_model,
    "functional": functional,
    "bn_dropout": lambda: tutorial_model(with_bn_dropout=True),
    "residual": residual,
    "basic": basic,
}


def _torch_residual(torch):
    nn = torch.nn

    def bn(c):  # Keras's BatchNormalization defaults (PyTorch's momentum is 1 - Keras's)
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.a = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), bn(cout), nn.ReLU()
            )
            self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), bn(cout))
            self.shortcut = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x):
            return torch.relu(self.b(self.a(x)) + self.shortcut(x))

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1, 1, bias=False),
        bn(32),
        nn.ReLU(),
        Block(32, 32, 1),
        Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def _torch_basic(torch):
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def theirs(torch, name):
    """(model, optimizer, loss function) of network ``name`` in PyTorch (NCHW inputs)."""
    if name in ("tutorial", "functional", "bn_dropout"):
        return torch_tutorial(torch, with_bn_dropout=name == "bn_dropout")
    model = _torch_residual(torch) if name == "residual" else _torch_basic(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    return model, optimizer, torch.nn.CrossEntropyLoss()
