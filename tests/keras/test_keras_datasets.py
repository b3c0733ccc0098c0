"""Keras parity of engine.datasets: fashion_mnist and cifar10 load_data against Keras's own
loaders reading the same files (Keras's get_file patched to return them), and
image_dataset_from_directory's file order, split, decoding and resizing against the
Keras functions it follows (keras.ops.image.resize and the grain path's image loader).
"""

import os
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src.datasets import cifar10 as keras_cifar10
from keras.src.datasets import fashion_mnist as keras_fashion_mnist
from keras.src.utils import dataset_utils, image_dataset_utils
from keras_helpers import assert_close

from engine.datasets import cifar10, fashion_mnist, idx, image_dataset_from_directory
from engine.datasets.image_dataset import ALLOWLIST_FORMATS, load_image
from engine.datasets.image_resize import INTERPOLATIONS, resize
from tests.dataset_fakes import cifar_batch, python2_pickle

pytestmark = pytest.mark.keras
Image = pytest.importorskip("PIL.Image", reason="Pillow is needed for the image tests")

RTOL = {"float64": 1e-10, "float32": 1e-5}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# --- load_data -----------------------------------------------------------------------


@pytest.mark.skipif(
    not (FASHION_DIR / idx.TRAIN_IMAGES).is_file(),
    reason=f"Fashion-MNIST not installed in {FASHION_DIR} (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_equals_keras(monkeypatch):
    monkeypatch.setattr(
        keras_fashion_mnist, "get_file", lambda fname, **_: str(FASHION_DIR / fname)
    )
    for ours, theirs in zip(fashion_mnist.load_data(FASHION_DIR), keras_fashion_mnist.load_data()):
        for a, b in zip(ours, theirs):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def test_cifar10_equals_keras(monkeypatch, tmp_path):
    # Keras's loader insists on 10,000 images per batch, so this fake is full size.
    folder = tmp_path / "target" / cifar10.BATCHES_DIR
    folder.mkdir(parents=True)
    for seed, name in enumerate(cifar10.BATCHES):
        (folder / name).write_bytes(python2_pickle(cifar_batch(10000, seed)))
    monkeypatch.setattr(keras_cifar10, "get_file", lambda **_: str(tmp_path / "target"))
    for ours, theirs in zip(cifar10.load_data(folder), keras_cifar10.load_data()):
        for a, b in zip(ours, theirs):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


# --- resizing ------------------------------------------------------------------------

# (input (H, W) or (N, H, W), size): up, down, mixed, one axis unchanged; each distinct
# shape costs Keras a JAX compilation, so the grid is kept small.
STRETCH = [((7, 9), (13, 5)), ((20, 30), (8, 8)), ((5, 5), (5, 11)), ((2, 64, 48), (17, 29))]
ASPECT = [((7, 12), (8, 8)), ((20, 9), (6, 10))]


@pytest.mark.parametrize(
    ("interpolation", "aspect"),
    [(method, "stretch") for method in INTERPOLATIONS]
    + [(method, aspect) for method in ("bilinear", "bicubic") for aspect in ("crop", "pad")],
)
def test_resize_matches_keras(floatx, interpolation, aspect):
    rng = np.random.default_rng(0)
    options = dict(crop_to_aspect_ratio=aspect == "crop", pad_to_aspect_ratio=aspect == "pad")
    for shape, size in STRETCH if aspect == "stretch" else ASPECT:
        x = (rng.random((*shape, 3)) * 255).astype(floatx)
        ref = keras.ops.image.resize(x, size, interpolation=interpolation, **options)
        ours = resize(x, size, interpolation, **options)
        assert ours.dtype == x.dtype
        # atol: negative kernel lobes make some outputs near 0 a cancellation of
        # terms near 255, accurate to the rounding of 255, not of themselves.
        assert_close(
            ours, np.asarray(ref), RTOL[floatx], atol=RTOL[floatx] * 255,
            what=f"{shape}->{size}", group=f"image resize {floatx}",
        )  # fmt: skip


# --- image_dataset_from_directory ---------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of 3 classes of PNG/JPEG/BMP/GIF files in several modes and sizes."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(5)
    specs = {
        "b_dogs": [("RGB", "d1.jpg", (21, 17)), ("L", "d0.png", (9, 9)), ("P", "d2.gif", (8, 6))],
        "a_cats": [("RGBA", "c0.png", (12, 30)), ("RGB", "C1.PNG", (40, 40)),
                   ("RGB", "sub/c2.bmp", (5, 7)), ("I;16", "c3.png", (10, 12))],
        "c_owls": [("RGB", f"o{i}.jpeg", (16 + i, 16)) for i in range(5)],
    }  # fmt: skip
    for folder, files in specs.items():
        for mode, name, (h, w) in files:
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if mode == "I;16":
                img = Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16))
            else:
                channels = {"RGB": 3, "RGBA": 4, "L": 1, "P": 3}[mode]
                pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
                img = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels)
                if mode == "P":
                    img = img.convert("P")
            img.save(path)
    return root


# One file per decoder and mode (each distinct shape costs Keras a JAX compilation).
DECODED = ["b_dogs/d1.jpg", "b_dogs/d0.png", "b_dogs/d2.gif", "a_cats/c0.png",
           "a_cats/sub/c2.bmp", "a_cats/c3.png"]  # fmt: skip
DECODE_CASES = [  # (color_mode, interpolation, image_size, crop_to_aspect_ratio, pad_...)
    ("rgb", "bilinear", (16, 16), False, False),
    ("rgb", "bicubic", (8, 12), False, False),
    ("rgb", "nearest", (8, 12), True, False),
    ("rgb", "bilinear", (8, 12), False, True),
    ("grayscale", "bilinear", (16, 16), False, False),
    ("rgba", "bilinear", (16, 16), False, False),
]


@pytest.mark.parametrize("case", DECODE_CASES, ids=lambda c: "-".join(map(str, c[:2])) + (
    "-crop" if c[3] else "-pad" if c[4] else ""
))  # fmt: skip
def test_decoded_images_match_keras(images, keras_float32, case):
    color_mode, interpolation, size, crop, pad = case
    channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[color_mode]
    for name in DECODED:
        path = str(images / name)
        args = (size, channels, interpolation, "channels_last", crop, pad)
        ref = image_dataset_utils._load_image_grain(path, *args)
        ours = load_image(path, channels, size, interpolation, crop, pad)
        assert ours.dtype == np.float32
        assert_close(
            ours, np.asarray(ref), RTOL["float32"], atol=RTOL["float32"] * 255, what=name,
            group="image files float32",
        )  # fmt: skip


def keras_files(directory, split=None, subset=None, **kwargs):
    paths, labels, class_names = dataset_utils.index_directory(
        str(directory), formats=ALLOWLIST_FORMATS, verbose=False, **kwargs
    )
    paths, labels = dataset_utils.get_training_or_validation_split(paths, labels, split, subset)
    return paths, None if labels is None else list(labels), class_names


@pytest.mark.parametrize(
    "options",
    [
        dict(shuffle=False),
        dict(shuffle=True, seed=1),
        dict(shuffle=True, seed=1234, validation_split=0.3, subset="training"),
        dict(shuffle=True, seed=1234, validation_split=0.3, subset="validation"),
        dict(shuffle=False, validation_split=0.5, subset="validation"),
        dict(shuffle=True, seed=9, class_names=["c_owls", "a_cats"]),
        dict(shuffle=True, seed=4, labels=None),
        dict(shuffle=True, seed=4, labels=[i % 3 for i in range(12)]),
    ],
    ids=["sorted", "shuffled", "training", "validation", "unshuffled-split", "class-names",
         "no-labels", "explicit-labels"],
)  # fmt: skip
def test_files_labels_and_split_match_keras(images, options, capsys):
    options = dict(options)
    split, subset = options.pop("validation_split", None), options.pop("subset", None)
    labels = options.pop("labels", "inferred")
    ours = image_dataset_from_directory(
        images, labels=labels, validation_split=split, subset=subset, image_size=8, **options
    )
    capsys.readouterr()
    paths, their_labels, class_names = keras_files(images, split, subset, labels=labels, **options)
    capsys.readouterr()
    assert ours.file_paths == paths
    assert ours.class_names == class_names
    assert (None if ours.labels is None else ours.labels.tolist()) == their_labels


def test_follow_links_matches_keras(tmp_path, images):
    root = tmp_path / "linked"
    (root / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "a" / "x.png")
    os.symlink(images / "c_owls", root / "a" / "more")
    for follow in (False, True):
        ours = image_dataset_from_directory(root, follow_links=follow, shuffle=False, verbose=False)
        theirs = keras_files(root, labels="inferred", shuffle=False, follow_links=follow)
        assert ours.file_paths == theirs[0]
        assert len(ours.file_paths) == (6 if follow else 1)
