"""Super-resolution: 14 x 14 digits back to 28 x 28, better than bicubic interpolation.

The tutorial names super-resolution among the things a CNN does. Each MNIST digit is
shrunk to 14 x 14 (the mean of each 2 x 2 block); a small network enlarges it again: an
upsampling step (UpSampling2D with bilinear interpolation, or a learned Conv2DTranspose),
then three convolutions that learn the detail to add (a residual: the network predicts
the difference to the upsampled image), trained with the mean squared error. The program
reports the PSNR over the test set against bicubic interpolation (Pillow's, as an image
editor would enlarge) and draws low resolution / bicubic / ours / original side by side.

    python examples/super_resolution.py                          # 5 epochs
    python examples/super_resolution.py --upsampler transpose    # a learned upsampling
    python examples/super_resolution.py --epochs 1 --limit 5000  # a quick look
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

PROG = "super_resolution.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train a small network to enlarge 14x14 MNIST digits to 28x28 and compare "
        "its PSNR on the test set with bicubic interpolation.",
    )
    cli.add_common_options(
        parser,
        epochs=5,
        batch_size=64,
        out="runs/super_resolution",
        limit_help="train on the first N training images only (the test set stays whole)",
    )
    parser.add_argument(
        "--upsampler",
        choices=["bilinear", "transpose"],
        default="bilinear",
        help="UpSampling2D(interpolation='bilinear'), or a learned Conv2DTranspose "
        "(default: bilinear)",
    )
    return parser.parse_args(argv)


def shrink(images):
    """(N, 28, 28, 1) -> (N, 14, 14, 1): the mean of each 2 x 2 block."""
    n, h, w, c = images.shape
    return images.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def bicubic(images):
    """Pillow's bicubic enlargement by 2 of (N, 14, 14, 1) images in [0, 1]."""
    from PIL import Image

    out = [
        np.asarray(
            Image.fromarray(image[..., 0].astype(np.float32), mode="F").resize(
                (image.shape[1] * 2, image.shape[0] * 2), Image.Resampling.BICUBIC
            )
        )
        for image in images
    ]
    return np.clip(np.stack(out)[..., None], 0, 1)


def psnr(estimate, truth):
    """Peak signal-to-noise ratio in dB of images in [0, 1], over the whole set."""
    mse = float(np.mean((np.clip(estimate, 0, 1) - truth) ** 2))
    return 10 * np.log10(1.0 / mse)


def enlarger(upsampler):
    inputs = engine.Input((14, 14, 1), name="low_resolution")
    if upsampler == "transpose":
        coarse = layers.Conv2DTranspose(1, 4, strides=2, padding="same", name="upsample")(inputs)
    else:
        coarse = layers.UpSampling2D(2, interpolation="bilinear", name="upsample")(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(coarse)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    detail = layers.Conv2D(1, 3, padding="same")(x)
    return engine.Model(inputs, layers.Add(name="residual")([coarse, detail]), name="enlarger")


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    cli.start(PROG, args)
    (x_train, _), (x_test, _) = cli.load_images(PROG, mnist, args.data_dir, args.limit)
    low_train, low_test = shrink(x_train), shrink(x_test)
    model = enlarger(args.upsampler)
    model.summary()
    model.compile(optimizer=engine.optimizers.Adam(1e-3), loss="mse")
    model.fit(
        low_train,
        x_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(low_test[:1000], x_test[:1000]),
        seed=args.seed,
    )
    ours = model.predict(low_test, batch_size=256)
    baseline = bicubic(low_test)
    nearest = low_test.repeat(2, axis=1).repeat(2, axis=2)
    ours_db, bicubic_db = psnr(ours, x_test), psnr(baseline, x_test)
    print(f"PSNR on the test set: nearest {psnr(nearest, x_test):.2f} dB")
    print(f"PSNR on the test set: bicubic {bicubic_db:.2f} dB")
    print(f"PSNR on the test set: ours {ours_db:.2f} dB ({ours_db - bicubic_db:+.2f} dB)")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [[low_test[i], baseline[i], np.clip(ours[i], 0, 1), x_test[i]] for i in range(6)]
    path = plots.plot_super_resolution(
        rows,
        ["14x14 input", "bicubic", "ours", "original"],
        args.out / "super_resolution.png",
        psnr=[None, bicubic_db, ours_db, None],
    )
    model.save(args.out / "model.npz")
    print(f"saved {path}")
    print(f"saved {args.out / 'model.npz'}")
    print(f"total time: {time.perf_counter() - start:.1f}s")
    return ours_db, bicubic_db


if __name__ == "__main__":
    main()
