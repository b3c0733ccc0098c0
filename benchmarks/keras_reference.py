"""Keras's own run of the tutorial, for comparison with examples/mnist_train.py.

The same network, Adam, sparse crossentropy from logits, batch 32, 10 epochs, the test set as
validation data, on the same MNIST files; Keras 3 with JAX on the CPU (the test extra).

    XPCNN_DATA_DIR=../shared/data PYTHONPATH=. python benchmarks/keras_reference.py --seed 0
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

from engine.datasets import mnist  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    (x, y), (x_test, y_test) = mnist.load_data()
    x = x.reshape(-1, 28, 28, 1).astype("float32") / 255
    x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10),
        ]
    )
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(
        x, y, batch_size=32, epochs=args.epochs, validation_data=(x_test, y_test), verbose=2
    )
    accuracies = " ".join(f"{a:.4f}" for a in history.history["val_accuracy"])
    print(f"keras seed {args.seed}: test accuracy per epoch {accuracies}")
    print(f"total time: {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
