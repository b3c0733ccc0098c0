"""Classify clothes: a small residual network on Fashion-MNIST, the tutorial's next step.

Functional API, BatchNormalization, augmentation (random flips and shifts, active in
training only), a cosine learning-rate schedule with warm-up, Dropout, global average
pooling, and EarlyStopping that keeps the best epoch's weights. The network is written
once against the Keras namespace (``build(k)`` with ``k`` = engine, or keras itself with
--keras), so the same program runs on both for a side-by-side comparison of accuracy and
time per epoch.

    python examples/fashion_train.py                       # 15 epochs (3 epochs: 89.2%)
    python examples/fashion_train.py --epochs 1 --limit 5000
    python examples/fashion_train.py --keras               # the same program on Keras

Fashion-MNIST is read from --data-dir, $XPCNN_DATA_DIR/fashion_mnist, Debian's
/usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist), or downloaded once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))
import cli  # noqa: E402  (makes the engine importable from a checkout)
import plots  # noqa: E402

import engine  # noqa: E402
from engine.datasets import fashion_mnist, files  # noqa: E402

PROG = "fashion_train.py"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train a small residual network with BatchNormalization, augmentation, "
        "a learning-rate schedule and early stopping on Fashion-MNIST.",
    )
    cli.add_common_options(
        parser,
        epochs=15,
        batch_size=128,
        out="runs/fashion",
        limit_help="train on the first N training images only (the test set stays whole)",
    )
    parser.add_argument(
        "--keras",
        action="store_true",
        help="run the same program on Keras 3 instead (if installed), for comparison",
    )
    parser.add_argument(
        "--patience",
        type=cli.positive_int,
        default=4,
        help="EarlyStopping: epochs without a better val_accuracy before stopping (default: 4)",
    )
    return parser.parse_args(argv)


def residual_block(k, x, filters, strides=1):
    """conv-BN-relu-conv-BN plus the shortcut (a 1x1 projection where the shape changes)."""
    layers = k.layers
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    if strides != 1 or x.shape[-1] != filters:
        x = layers.BatchNormalization()(
            layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        )
    return layers.ReLU()(layers.Add()([y, x]))


def build(k):
    """The network in the Keras namespace ``k`` (engine or keras)."""
    layers = k.layers
    inputs = k.Input((28, 28, 1))
    x = layers.RandomFlip("horizontal")(inputs)
    x = layers.RandomTranslation(0.1, 0.1, fill_mode="constant")(x)
    x = layers.Conv2D(32, 3, padding="same", use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = residual_block(k, x, 32)
    x = residual_block(k, x, 64, strides=2)
    x = residual_block(k, x, 64)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    return k.Model(inputs, layers.Dense(10)(x), name="fashion_resnet")


def compile_model(k, model, steps):
    schedule = k.optimizers.schedules.CosineDecay(
        1e-4, decay_steps=steps, warmup_target=2e-3, warmup_steps=max(1, steps // 20)
    )
    model.compile(
        optimizer=k.optimizers.Adam(schedule),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    cli.start(PROG, args)
    data_dir = args.data_dir
    if data_dir is None and DEBIAN.is_dir() and not files.dataset_dir("fashion_mnist").is_dir():
        data_dir = DEBIAN  # Debian's package, where the usual places have no copy
    (x_train, y_train), (x_test, y_test) = cli.load_images(
        PROG, fashion_mnist, data_dir, args.limit
    )
    if args.keras:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras as k

        k.utils.set_random_seed(args.seed)
    else:
        k = engine
    model = build(k)
    model.summary()
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    compile_model(k, model, steps)
    stop = k.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=args.patience, restore_best_weights=True
    )
    fit = {"seed": args.seed} if k is engine else {}
    epoch_start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_test, y_test),
        callbacks=[stop],
        **fit,
    )
    epochs_run = len(history.history["loss"])
    seconds = (time.perf_counter() - epoch_start) / epochs_run
    _, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    framework = "Keras" if k is not engine else "xpcnn"
    print(f"{framework}: {epochs_run} epochs, {seconds:.1f} s per epoch (with validation)")
    print(f"test accuracy: {accuracy:.4f} (the best epoch's weights)")
    args.out.mkdir(parents=True, exist_ok=True)
    scores = model.predict(x_test, batch_size=256, verbose=0)
    predicted = scores.argmax(axis=1)
    plots.plot_training_curves(history.history, args.out / "training_curves.png")
    matrix = plots.confusion_matrix(y_test, predicted, num_classes=10)
    plots.plot_confusion_matrix(
        matrix, args.out / "confusion_matrix.png", class_names=fashion_mnist.CLASS_NAMES
    )
    if k is engine:
        model.save(args.out / "model.keras")  # Keras's own format: Keras opens it too
    for name in ("training_curves.png", "confusion_matrix.png"):
        print(f"saved {args.out / name}")
    print(f"total time: {time.perf_counter() - start:.1f}s")
    return float(accuracy)


if __name__ == "__main__":
    main()
