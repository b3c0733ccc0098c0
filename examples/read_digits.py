"""Read text at MNIST scale: strips of four digits side by side, read by one network with
four outputs (the "OCR" application the tutorial names).

Each strip (28 x 112 pixels) joins four random MNIST digits. A functional model runs one
convolutional trunk over the whole strip and has four softmax heads, digit_1 ... digit_4,
one per position, each with its own loss and accuracy. Training strips are made from the
training images afresh every epoch, test strips from the test images. The program reports
each position's accuracy and the whole-strip accuracy (all four digits right), and draws
test strips with what was read.

    python examples/read_digits.py                         # 5 epochs
    python examples/read_digits.py --epochs 1 --limit 5000 # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))
import cli  # noqa: E402  (makes the engine importable from a checkout)
import plots  # noqa: E402

import engine  # noqa: E402
from engine import layers  # noqa: E402
from engine.datasets import mnist  # noqa: E402

PROG = "read_digits.py"
DIGITS = 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train a four-output network to read strips of four MNIST digits and "
        "report per-digit and whole-strip accuracy on strips of test digits.",
    )
    cli.add_common_options(
        parser,
        epochs=5,
        batch_size=64,
        out="runs/read_digits",
        limit_help="make training strips from the first N training images only",
    )
    parser.add_argument(
        "--strips",
        type=cli.positive_int,
        default=20000,
        metavar="N",
        help="training strips per epoch (default: 20000)",
    )
    return parser.parse_args(argv)


def make_strips(images, labels, count, rng):
    """``count`` strips (count, 28, 28 * DIGITS, 1) of random digits, and their labels
    (count, DIGITS)."""
    picks = rng.integers(0, len(images), (count, DIGITS))
    strips = np.concatenate([images[picks[:, d]] for d in range(DIGITS)], axis=2)
    return strips, labels[picks]


def strip_reader():
    """One trunk over the strip, one softmax head per digit position."""
    inputs = engine.Input((28, 28 * DIGITS, 1), name="strip")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dense(128, activation="relu")(layers.Flatten()(x))
    heads = [
        layers.Dense(10, activation="softmax", name=f"digit_{d + 1}")(x) for d in range(DIGITS)
    ]
    return engine.Model(inputs, heads, name="strip_reader")


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    cli.start(PROG, args)
    (x_train, y_train), (x_test, y_test) = cli.load_images(PROG, mnist, args.data_dir, args.limit)
    rng = np.random.default_rng(args.seed)
    test_strips, test_labels = make_strips(x_test, y_test, 10000, rng)

    model = strip_reader()
    model.summary()
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",  # one per head, each weighted 1
        metrics=[["accuracy"]] * DIGITS,
    )
    for epoch in range(args.epochs):  # fresh strips every epoch
        strips, labels = make_strips(x_train, y_train, args.strips, rng)
        model.fit(
            strips,
            list(labels.T),
            batch_size=args.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            seed=args.seed,
        )
    scores = model.predict(test_strips, batch_size=256)
    read = np.stack([s.argmax(axis=1) for s in scores], axis=1)
    for d in range(DIGITS):
        print(f"digit {d + 1} accuracy: {np.mean(read[:, d] == test_labels[:, d]):.4f}")
    print(f"per-digit accuracy: {np.mean(read == test_labels):.4f}")
    strip_accuracy = float(np.mean(np.all(read == test_labels, axis=1)))
    print(f"whole-strip accuracy: {strip_accuracy:.4f} (all {DIGITS} digits right)")
    args.out.mkdir(parents=True, exist_ok=True)
    path = plots.plot_strips(test_strips[:10], read[:10], test_labels[:10], args.out / "strips.png")
    model.save(args.out / "model.npz")
    print(f"saved {path}")
    print(f"saved {args.out / 'model.npz'}")
    print(f"total time: {time.perf_counter() - start:.1f}s")
    return strip_accuracy


if __name__ == "__main__":
    main()
