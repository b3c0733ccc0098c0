"""Read your own handwritten digit: a photo or scan (PNG, JPEG, ...) into a trained model.

The image is prepared as the MNIST digits were made: grayscale, inverted when the paper
is lighter than the ink (MNIST digits are light on black), cropped to the ink, scaled to
fit a 20 x 20 box (keeping its aspect ratio, with anti-aliasing), and placed on a 28 x 28
canvas so that its centre of mass is at the centre. Then the model (a file written by
mnist_train.py, or any model taking 28 x 28 x 1 images) prints the class and its scores.

    python examples/mnist_train.py                      # writes runs/mnist/model.npz
    python examples/predict.py my_digit.png another.jpg
    python examples/predict.py --model runs/mnist/model.npz --out runs/predict digit.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))
import cli  # noqa: E402, F401  (makes the engine importable from a checkout)

import engine  # noqa: E402

PROG = "predict.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Predict the digit in your own images with a trained MNIST model, "
        "preparing each image as the MNIST digits were prepared.",
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    parser.add_argument(
        "--model",
        type=Path,
        default=Path("runs/mnist/model.npz"),
        metavar="FILE",
        help="the trained model (default: runs/mnist/model.npz, from mnist_train.py)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write each prepared 28 x 28 image there as a PNG, to see what the model saw",
    )
    return parser.parse_args(argv)


def prepare(image):
    """A PIL image -> the (28, 28, 1) float32 MNIST-style digit in [0, 1]."""
    from PIL import Image

    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0

    def border():
        return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])

    if border().mean() > 0.5:  # dark ink on light paper: MNIST has light ink on black
        gray = 1.0 - gray
    gray = np.clip(gray - np.median(border()), 0, None)  # the paper's tone is not ink
    if gray.max() <= 0:
        raise ValueError("the image is blank: no ink was found")
    gray /= gray.max()
    rows, cols = np.nonzero(gray > 0.1)
    crop = gray[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    digit = Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
    digit = np.asarray(digit, dtype=np.float32) / 255.0
    canvas = np.zeros((28, 28), np.float32)
    top, left = (28 - digit.shape[0]) // 2, (28 - digit.shape[1]) // 2
    canvas[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    # Centre of mass to the centre, as MNIST's preparation did (whole-pixel shifts).
    total = canvas.sum()
    cy = (canvas.sum(axis=1) * np.arange(28)).sum() / total
    cx = (canvas.sum(axis=0) * np.arange(28)).sum() / total
    shifted = np.zeros_like(canvas)
    dy, dx = int(round(13.5 - cy)), int(round(13.5 - cx))
    src = canvas[max(0, -dy) : 28 - max(0, dy), max(0, -dx) : 28 - max(0, dx)]
    shifted[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return shifted[..., None]


def main(argv=None):
    args = parse_args(argv)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise SystemExit(
            f"{PROG}: error: reading images needs Pillow: pip install Pillow"
        ) from None
    try:
        model = engine.load_model(args.model)
    except (engine.WeightFileError, OSError) as exc:
        raise SystemExit(
            f"{PROG}: error: cannot load the model {str(args.model)!r}: {exc} "
            "(train one first: python examples/mnist_train.py)"
        ) from None
    prepared = []
    for path in args.images:
        try:
            with Image.open(path) as image:
                prepared.append(prepare(image))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise SystemExit(
                f"{PROG}: error: cannot read {str(path)!r} as a digit: {exc}"
            ) from None
    scores = model.predict(np.stack(prepared))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    for path, digit, row in zip(args.images, prepared, scores):
        probabilities = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        if np.all(row >= 0) and abs(row.sum() - 1) < 1e-3:  # the model outputs probabilities
            probabilities = row
        shown = " ".join(f"{d}:{p:.2f}" for d, p in enumerate(probabilities))
        print(f"{path}: {int(row.argmax())}   ({shown})")
        if args.out is not None:
            target = args.out / f"{path.stem}_28x28.png"
            Image.fromarray((digit[..., 0] * 255).astype(np.uint8)).save(target)
    return scores.argmax(axis=1)


if __name__ == "__main__":
    main()
