"""What the example programs share: argument types, the common options and the data.

Every example takes --epochs, --limit, --batch-size, --seed, --backend, --out and
--data-dir with the same meaning; each adds its own options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
if str(_HERE.parent) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(_HERE.parent))

import engine  # noqa: E402
from engine import backend  # noqa: E402
from engine.datasets import DatasetError  # noqa: E402


def whole_number(minimum):
    """argparse type: a whole number >= minimum (1 for counts, 0 for seeds)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


positive_int = whole_number(1)
non_negative_int = whole_number(0)


def positive_float(text):
    """argparse type: a number > 0 (for learning rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.001, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def add_common_options(parser, epochs, batch_size, out, limit_help):
    """The options every example has, with this example's defaults."""
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=epochs,
        metavar="N",
        help=f"passes over the training data (default: {epochs})",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=batch_size,
        metavar="N",
        help=f"samples per gradient step (default: {batch_size})",
    )
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N", help=limit_help)
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="random seed for weight initialisation and shuffling (default: 0)",
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
        "--out",
        type=Path,
        default=Path(out),
        metavar="DIR",
        help=f"folder for the results and figures, created if missing (default: {out})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "where the data sets are (a folder holding mnist/, fashion-mnist/, ...; default: "
            "$XPCNN_DATA_DIR, else ~/.cache/xpcnn, downloading the files there if needed)"
        ),
    )


def start(prog, args):
    """Select the backend and seed everything, or exit with a message naming the problem."""
    try:
        backend.set_backend(args.backend)
    except Exception as exc:  # e.g. --backend cupy on a machine without CuPy or a GPU
        raise SystemExit(f"{prog}: error: cannot use backend {args.backend!r}: {exc}") from None
    engine.utils.set_random_seed(args.seed)


def load_images(prog, loader, data_dir=None, limit=None):
    """((x_train, y_train), (x_test, y_test)) as float32 in [0, 1] with a channel axis
    (N, H, W, C); labels stay integers. ``limit`` keeps the first N training images."""
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data(data_dir)
    except DatasetError as exc:  # missing or damaged files: the message says what to do
        raise SystemExit(f"{prog}: error: cannot load the data: {exc}") from None
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]

    def scaled(x):
        x = x.astype(np.float32) / 255.0
        return x[..., None] if x.ndim == 3 else x

    return (scaled(x_train), y_train.reshape(-1)), (scaled(x_test), y_test.reshape(-1))
