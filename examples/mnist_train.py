"""Train the classic MNIST convolutional network with xpcnn, Keras style.

This is the "MNIST CNN" tutorial (two convolution + max-pooling blocks, then
two dense layers) written against xpcnn's public API. It loads MNIST, builds
and trains the network, reports the test accuracy, prints the scores for the
first five test digits, and writes the trained model plus five figures into
the output folder.

Run from the repository root:

    python examples/mnist_train.py                      # 10 epochs, Adam, GPU if present
    python examples/mnist_train.py --limit 2000 --epochs 1 --backend numpy   # quick look
    mpiexec -n 4 python examples/mnist_train.py         # one model trained on 4 processes

Under mpiexec every process runs this program; engine.distribute.init() makes them train
one model together (--batch-size is the global batch), and rank 0 alone prints and
writes the files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # cli.py and plots.py sit next to this file
    sys.path.insert(0, str(_HERE))
import cli  # noqa: E402, F401  (makes the engine importable from a checkout)
import plots  # noqa: E402
from cli import non_negative_int, positive_float, positive_int  # noqa: E402

import engine  # noqa: E402
from engine import Model, Sequential, backend, distribute, losses  # noqa: E402
from engine.datasets import DatasetError, mnist  # noqa: E402
from layers import Conv2D, Dense, Flatten, MaxPooling2D  # noqa: E402
from optim import SGD, Adagrad, Adam, RMSprop  # noqa: E402

# optimizer name -> (default learning rate, factory taking the learning rate)
OPTIMIZERS = {
    "adam": (1e-3, lambda lr: Adam(learning_rate=lr)),
    "sgd": (0.01, lambda lr: SGD(learning_rate=lr)),
    "momentum": (0.01, lambda lr: SGD(learning_rate=lr, momentum=0.9)),
    "nesterov": (0.01, lambda lr: SGD(learning_rate=lr, momentum=0.9, nesterov=True)),
    "rmsprop": (1e-3, lambda lr: RMSprop(learning_rate=lr)),
    "adagrad": (0.01, lambda lr: Adagrad(learning_rate=lr)),
}

FIGURES = (
    "training_curves.png",
    "predictions.png",
    "confusion_matrix.png",
    "filters.png",
    "feature_maps.png",
)

EPILOG = """\
examples:
  python examples/mnist_train.py
      the full tutorial: 10 epochs of Adam on all 60,000 images (about 99% test accuracy)
  python examples/mnist_train.py --limit 2000 --epochs 1 --backend numpy
      a one-minute check on the CPU (about 90%)
  python examples/mnist_train.py --optimizer momentum --learning-rate 0.05 --out runs/momentum
      another optimizer, results in their own folder
  mpiexec -n 4 python examples/mnist_train.py
      the same training on 4 processes (MPI, pip install 'xpcnn[mpi]'); rank 0 prints

Outputs in --out: model.npz (load it again with engine.load_model), training_curves.png,
predictions.png, confusion_matrix.png, filters.png and feature_maps.png.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="mnist_train.py",
        description=(
            "Train a small convolutional network (the classic Keras MNIST tutorial) on the\n"
            "MNIST handwritten digits with xpcnn, report its accuracy on the 10,000 test\n"
            "images, and save the trained model and figures of what it learned."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=10,
        metavar="N",
        help="passes over the training images (default: 10)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        metavar="N",
        help="images per gradient step (default: 32)",
    )
    parser.add_argument(
        "--optimizer",
        choices=sorted(OPTIMIZERS),
        default="adam",
        help="update rule (default: adam); momentum and nesterov are SGD with momentum 0.9",
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=None,
        metavar="LR",
        help=(
            "step size (default depends on the optimizer: adam 0.001, sgd 0.01, "
            "momentum 0.01, nesterov 0.01, rmsprop 0.001, adagrad 0.01)"
        ),
    )
    parser.add_argument(
        "--backend",
        choices=["auto", "numpy", "cupy"],
        default="auto",
        help=(
            "where to compute: auto uses the GPU (CuPy) when there is one, "
            "else the CPU (default: auto)"
        ),
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="random seed for weight initialisation and shuffling (default: 0)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/mnist"),
        metavar="DIR",
        help="folder for model.npz and the PNG figures, created if missing (default: runs/mnist)",
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="train on the first N training images only, for quick runs (the test set stays whole)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "where MNIST is: a folder with the four original .gz files, its parent "
            "holding mnist/, or a Keras mnist.npz (default: $XPCNN_DATA_DIR/mnist, "
            "else ~/.cache/xpcnn/mnist, downloading the files there if needed)"
        ),
    )
    return parser.parse_args(argv)


def load_mnist(data_dir=None, limit=None):
    """MNIST as float32 in [0, 1], shaped (N, 28, 28, 1); labels stay integers."""
    (x_train, y_train), (x_test, y_test) = mnist.load_data(data_dir)
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    x_train = x_train.reshape((-1, 28, 28, 1)).astype(np.float32) / 255.0
    x_test = x_test.reshape((-1, 28, 28, 1)).astype(np.float32) / 255.0
    return (x_train, y_train), (x_test, y_test)


def build_model():
    """The tutorial's network: 121,930 parameters."""
    return Sequential(
        [
            Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D((2, 2)),
            Conv2D(64, (3, 3), activation="relu"),
            MaxPooling2D((2, 2)),
            Flatten(),
            Dense(64, activation="relu"),
            Dense(10),  # logits: the loss applies the softmax
        ]
    )


def make_optimizer(name, learning_rate=None):
    default_lr, factory = OPTIMIZERS[name]
    lr = default_lr if learning_rate is None else learning_rate
    return factory(lr), lr


def feature_map_stages(model, image):
    """Each layer's output for one image, for the layers up to Flatten (4-D outputs).

    One feature extractor computes them all: a Model from the trained model's input to
    those layers' outputs, sharing its weights (Keras's functional API).
    Shapes: image (28, 28, 1) -> list of (name, (H', W', C) numpy array).
    """
    layers = []
    for layer in model.layers:
        if len(layer.output.shape) != 4:
            break
        layers.append(layer)
    extractor = Model(model.inputs, [layer.output for layer in layers])
    maps = extractor.predict(image[None], verbose=0)
    stages = []
    for layer, feature_map in zip(layers, maps if isinstance(maps, list) else [maps]):
        name = layer.name
        activation = getattr(getattr(layer, "activation", None), "name", None)  # e.g. 'relu'
        if activation and activation != "linear":
            name = f"{name}\n({activation})"
        stages.append((name, feature_map[0]))
    return stages


def save_figures(out, history, model, x_test, y_test, predicted):
    """Write the five PNG figures into `out`; returns their paths."""
    plots.plot_training_curves(history, out / "training_curves.png")
    plots.plot_predictions(x_test[:20], predicted[:20], y_test[:20], out / "predictions.png")
    matrix = plots.confusion_matrix(y_test, predicted, num_classes=10)
    plots.plot_confusion_matrix(matrix, out / "confusion_matrix.png")
    kernel = backend.to_numpy(model.layers[0].params["kernel"])
    plots.plot_filters(kernel, out / "filters.png")
    stages = feature_map_stages(model, x_test[0])
    plots.plot_feature_maps(
        x_test[0],
        stages,
        out / "feature_maps.png",
        title=f"Feature maps of test image 0 (label {int(y_test[0])}), first 8 channels per stage",
    )
    return [out / name for name in FIGURES]


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()

    # The backend comes first: layers create their weights on the active device.
    try:
        backend.set_backend(args.backend)
    except Exception as exc:  # e.g. --backend cupy on a machine without CuPy or a GPU
        raise SystemExit(
            f"mnist_train.py: error: cannot use backend {args.backend!r}: {exc}"
        ) from None
    # Under mpiexec the processes train one model together (a no-op in one process).
    distribute.init()
    say = distribute.print_on_chief
    engine.utils.set_random_seed(args.seed)

    # Data: (N, 28, 28, 1) float32 images in [0, 1], integer labels 0-9.
    try:
        (x_train, y_train), (x_test, y_test) = load_mnist(args.data_dir, args.limit)
    except DatasetError as exc:  # missing or damaged files: the message says what to do
        raise SystemExit(f"mnist_train.py: error: cannot load MNIST: {exc}") from None
    say(f"training images: {x_train.shape}, test images: {x_test.shape}")

    # The network, and where it runs.
    model = build_model()
    model.summary(print_fn=say)
    say(f"backend: {backend.backend_name()} - {backend.device_description()}")

    # Training; fit prints a progress bar and a summary line per epoch.
    optimizer, lr = make_optimizer(args.optimizer, args.learning_rate)
    say(
        f"optimizer: {args.optimizer} (learning rate {lr:g}), "
        f"batch size {args.batch_size}, epochs {args.epochs}"
    )
    model.compile(
        optimizer=optimizer,
        loss=losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    try:
        history = model.fit(
            x_train,
            y_train,
            batch_size=args.batch_size,
            epochs=args.epochs,
            verbose=1,
            validation_data=(x_test, y_test),
            seed=args.seed,
        )
    except engine.NonFiniteLossError as exc:  # diverged, e.g. a too large --learning-rate
        raise SystemExit(f"mnist_train.py: error: {exc}") from None

    # Accuracy on the 10,000 test images.
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    say(f"test loss: {float(test_loss):.4f}")
    say(f"test accuracy: {float(test_acc):.4f}")

    # Scores (logits) of the first five test digits: the largest one is the prediction.
    scores = np.asarray(backend.to_numpy(model.predict(x_test, batch_size=256)))
    predicted = scores.argmax(axis=1)
    say("scores of the first five test images (digits 0-9, higher = more likely):")
    with np.printoptions(precision=2, suppress=True, linewidth=120):
        for row in scores[:5]:
            say(row)
    say("first five predictions: " + " ".join(str(int(p)) for p in predicted[:5]))
    say("first five true labels: " + " ".join(str(int(t)) for t in y_test[:5]))

    # The trained model and the figures.
    out = args.out

    def write_outputs():
        out.mkdir(parents=True, exist_ok=True)
        model.save(str(out / "model.npz"))
        for path in save_figures(out, history.history, model, x_test, y_test, predicted):
            say(f"saved {path}")

    distribute.on_chief(write_outputs)  # rank 0 writes; the others wait for it
    say(f"saved {out / 'model.npz'}")
    say(f"total time: {time.perf_counter() - start:.1f}s")
    return test_acc


if __name__ == "__main__":
    main()
