"""engine.datasets.image_dataset_from_directory on small PNG/JPEG folders made here.

Keras parity (file order, split, decoding and resizing against Keras's own
functions) is in tests/keras/test_keras_datasets.py.
"""

import sys

import numpy as np
import pytest

from engine.datasets import (
    DatasetCorruptError,
    DatasetDependencyError,
    DatasetError,
    DatasetNotFoundError,
    image_dataset_from_directory,
)
from engine.datasets.image_dataset import ImageDataset, load_image

Image = pytest.importorskip("PIL.Image", reason="Pillow is needed to write the test images")

COUNTS = {"cats": 5, "dogs": 3, "owls": 4}


def write_image(path, rng, size=(12, 9), mode="RGB", fmt=None):
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (size[0], size[1], channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path, fmt)
    return pixels


@pytest.fixture
def folder(tmp_path):
    """cats/ (5 PNG, one in a nested folder), dogs/ (3 JPEG), owls/ (4 PNG of other sizes),
    a hidden class folder, a text file and a class-less image that must all be ignored."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pets"
    for name, count in COUNTS.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            where = root / name / ("nested" if name == "cats" and i == 4 else "")
            where.mkdir(exist_ok=True)
            ext = ".JPG" if name == "dogs" else ".png"
            size = (10 + i, 20 - i) if name == "owls" else (12, 9)
            write_image(where / f"{name}_{i}{ext}", rng, size)
    (root / ".hidden").mkdir()
    write_image(root / ".hidden" / "h.png", rng)
    (root / "cats" / "notes.txt").write_text("not an image")
    write_image(root / "top.png", rng)
    return root


def test_batches_shapes_dtypes_and_classes(folder, capsys):
    ds = image_dataset_from_directory(folder, image_size=(8, 6), batch_size=5, seed=1)
    assert "Found 12 files belonging to 3 classes." in capsys.readouterr().out
    assert isinstance(ds, ImageDataset) and ds.class_names == ["cats", "dogs", "owls"]
    assert len(ds) == ds.num_batches == 3  # 5 + 5 + 2
    images, labels = ds[0]
    assert images.shape == (5, 8, 6, 3) and images.dtype == np.float32
    assert labels.shape == (5,) and labels.dtype == np.int32
    assert ds[2][0].shape == (2, 8, 6, 3) and ds[-1][1].shape == (2,)
    assert 0 <= images.min() and images.max() <= 255
    with pytest.raises(IndexError, match="out of range for 3 batches"):
        ds[3]
    with pytest.raises(TypeError, match="must be ints"):
        ds["0"]


def test_every_file_once_per_epoch_and_reshuffled(folder):
    ds = image_dataset_from_directory(folder, image_size=(4, 4), batch_size=5, seed=3)
    # Tell the files apart by their decoded pixels (each image is random).
    signatures = {tuple(load_image(p, 3, (4, 4)).ravel()[:6]): p for p in ds.file_paths}
    assert len(signatures) == 12
    orders = []
    for _ in range(3):
        seen = []
        for images, labels in ds:  # the sequence protocol: stops at IndexError
            for image, label in zip(images, labels):
                path = signatures[tuple(image.ravel()[:6])]
                assert ds.class_names[label] in path  # the label goes with its file
                seen.append(path)
        assert sorted(seen) == sorted(ds.file_paths)  # each file exactly once
        orders.append(seen)
        ds.on_epoch_end()
    assert orders[0] == ds.file_paths  # the first epoch follows file_paths
    assert orders[0] != orders[1] != orders[2]  # then a new order every epoch
    again = image_dataset_from_directory(folder, image_size=(4, 4), batch_size=5, seed=3)
    again.on_epoch_end()
    assert [p for b in range(len(again)) for p in _paths(again, b, signatures)] == orders[1]


def _paths(ds, b, signatures):
    return [signatures[tuple(image.ravel()[:6])] for image in ds[b][0]]


def test_no_shuffle_is_sorted_and_stays(folder):
    ds = image_dataset_from_directory(folder, shuffle=False, image_size=(4, 4), verbose=False)
    names = [p.split("pets/")[1] for p in ds.file_paths]
    assert names == [
        "cats/cats_0.png", "cats/cats_1.png", "cats/cats_2.png", "cats/cats_3.png",
        "cats/nested/cats_4.png", "dogs/dogs_0.JPG", "dogs/dogs_1.JPG", "dogs/dogs_2.JPG",
        "owls/owls_0.png", "owls/owls_1.png", "owls/owls_2.png", "owls/owls_3.png",
    ]  # fmt: skip
    assert ds.labels.tolist() == [0] * 5 + [1] * 3 + [2] * 4
    first = ds[0][0]
    ds.on_epoch_end()
    assert np.array_equal(ds[0][0], first)


def test_pixels_of_a_png_are_exact(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "a").mkdir()
    pixels = write_image(tmp_path / "a" / "x.png", rng, (5, 7))
    ds = image_dataset_from_directory(tmp_path, image_size=(5, 7), shuffle=False, verbose=False)
    images, labels = ds[0]
    assert np.array_equal(images[0], pixels.astype(np.float32)) and labels.tolist() == [0]


def test_label_modes(folder):
    common = dict(image_size=(4, 4), shuffle=False, verbose=False, batch_size=12)
    _, onehot = image_dataset_from_directory(folder, label_mode="categorical", **common)[0]
    assert onehot.dtype == np.float32 and onehot.shape == (12, 3)
    assert onehot.argmax(1).tolist() == [0] * 5 + [1] * 3 + [2] * 4 and onehot.sum() == 12
    two = image_dataset_from_directory(
        folder, label_mode="binary", class_names=["owls", "dogs"], **common
    )
    _, binary = two[0]
    assert two.class_names == ["owls", "dogs"]  # the given order, a subset
    assert binary.dtype == np.float32 and binary.shape == (7, 1)
    assert binary.ravel().tolist() == [0] * 4 + [1] * 3
    images_only = image_dataset_from_directory(folder, label_mode=None, **common)
    assert isinstance(images_only[0], np.ndarray) and images_only[0].shape == (12, 4, 4, 3)
    assert images_only.class_names is None
    no_labels = image_dataset_from_directory(folder / "cats", labels=None, **common)
    assert no_labels[0].shape == (5, 4, 4, 3)


def test_explicit_labels_follow_the_sorted_files(folder):
    labels = [1, 0, 1, 1, 0]
    ds = image_dataset_from_directory(
        folder / "cats", labels=labels, image_size=(4, 4), shuffle=False, verbose=False
    )
    assert ds.class_names == ["0", "1"] and ds[0][1].tolist() == labels
    with pytest.raises(ValueError, match="labels has 2 entries but .* holds 5 image files"):
        image_dataset_from_directory(folder / "cats", labels=[0, 1], verbose=False)


def test_color_modes_and_single_samples(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "a").mkdir()
    gray = write_image(tmp_path / "a" / "g.png", rng, (6, 6), "L")
    write_image(tmp_path / "a" / "rgba.png", rng, (6, 6), "RGBA")
    for mode, channels in (("grayscale", 1), ("rgb", 3), ("rgba", 4)):
        ds = image_dataset_from_directory(
            tmp_path, color_mode=mode, image_size=6, batch_size=None, shuffle=False, verbose=False
        )
        assert len(ds) == 2
        image, label = ds[0]
        assert image.shape == (6, 6, channels) and image.dtype == np.float32
        assert label.shape == () and label == 0
    gray_ds = image_dataset_from_directory(
        tmp_path, color_mode="grayscale", image_size=6, shuffle=False, verbose=False
    )
    assert np.array_equal(gray_ds[0][0][0], gray.astype(np.float32))


def test_validation_split_is_disjoint_and_complete(folder, capsys):
    common = dict(image_size=(4, 4), validation_split=0.25, seed=7)
    train = image_dataset_from_directory(folder, subset="training", **common)
    val = image_dataset_from_directory(folder, subset="validation", **common)
    out = capsys.readouterr().out
    assert "Using 9 files for training." in out and "Using 3 files for validation." in out
    assert len(train.file_paths) == 9 and len(val.file_paths) == 3
    assert sorted(train.file_paths + val.file_paths) == sorted(
        image_dataset_from_directory(folder, shuffle=False, verbose=False).file_paths
    )
    both = image_dataset_from_directory(folder, subset="both", verbose=False, **common)
    assert both[0].file_paths == train.file_paths and both[1].file_paths == val.file_paths
    assert both[0].shuffle and not both[1].shuffle  # as Keras: validation is not shuffled


def test_crop_and_pad_to_aspect_ratio(tmp_path):
    (tmp_path / "a").mkdir()
    pixels = np.zeros((4, 8, 3), np.uint8)
    pixels[:, 2:6] = 200  # a bright centre square in a wide image
    Image.fromarray(pixels).save(tmp_path / "a" / "wide.png")
    common = dict(image_size=(4, 4), shuffle=False, verbose=False, interpolation="nearest")
    cropped = image_dataset_from_directory(tmp_path, crop_to_aspect_ratio=True, **common)[0][0]
    assert (cropped == 200).all()
    padded = image_dataset_from_directory(tmp_path, pad_to_aspect_ratio=True, **common)[0][0][0]
    assert padded[0, 0].tolist() == [0, 0, 0] and padded[2, 2].tolist() == [200, 200, 200]


def test_damaged_and_vanished_files(tmp_path):
    rng = np.random.default_rng(3)
    (tmp_path / "a").mkdir()
    write_image(tmp_path / "a" / "ok.png", rng)
    write_image(tmp_path / "a" / "cut.jpg", rng, fmt="JPEG")
    (tmp_path / "a" / "fake.png").write_bytes(b"not a png")
    cut = tmp_path / "a" / "cut.jpg"
    cut.write_bytes(cut.read_bytes()[:200])
    ds = image_dataset_from_directory(
        tmp_path, batch_size=1, shuffle=False, image_size=4, verbose=False
    )
    assert [p.rsplit("/", 1)[1] for p in ds.file_paths] == ["cut.jpg", "fake.png", "ok.png"]
    for i, name in enumerate(["cut.jpg", "fake.png"]):
        with pytest.raises(DatasetCorruptError, match="cannot be read as an image") as exc:
            ds[i]
        assert str(tmp_path / "a" / name) in str(exc.value)
    (tmp_path / "a" / "ok.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        ds[2]


def test_missing_folder_and_no_images(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such folder") as exc:
        image_dataset_from_directory(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(exc.value)
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "empty_class" / "a.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError, match=r"No images found .*one subfolder per class"):
        image_dataset_from_directory(tmp_path, verbose=False)


def test_without_pillow(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now raises ImportError
    with pytest.raises(DatasetDependencyError, match=r"xpcnn\[images\]") as exc:
        image_dataset_from_directory(folder)
    assert isinstance(exc.value, ImportError) and isinstance(exc.value, DatasetError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": "folders"}, 'labels must be "inferred", None, or a list'),
        ({"labels": [0, -1]}, "labels must be non-negative ints"),
        ({"labels": [0, 1], "class_names": ["a"]}, "class_names can only be given with"),
        ({"labels": None, "class_names": ["cats"]}, "class_names cannot be given with"),
        ({"class_names": "cats"}, "class_names must be a list"),
        ({"class_names": ["cats", "bats"]}, r"class_names \['cats', 'bats'\] must name"),
        ({"label_mode": "sparse"}, "label_mode must be one of"),
        ({"label_mode": "binary"}, "needs exactly 2 classes"),
        ({"color_mode": "bgr"}, "color_mode must be one of"),
        ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
        ({"image_size": (8, 0)}, "image_size must be positive"),
        ({"image_size": "big"}, "image_size must be an int or a pair"),
        ({"interpolation": "area"}, "'area' is not supported"),
        ({"interpolation": "cubic"}, "interpolation must be one of"),
        ({"crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True}, "Only one of"),
        ({"data_format": "channels_first"}, "xpcnn is channels-last"),
        ({"validation_split": 1.5, "subset": "training", "seed": 1}, "between 0 and 1"),
        ({"validation_split": 0.2}, "subset and validation_split go together"),
        ({"subset": "training"}, "subset and validation_split go together"),
        ({"validation_split": 0.2, "subset": "train", "seed": 1}, "subset must be"),
        ({"validation_split": 0.2, "subset": "training"}, "give a seed"),
        ({"validation_split": 0.01, "subset": "training", "seed": 1}, "leaves no file"),
        ({"seed": 1.5}, "seed must be an int or None, got 1.5"),
    ],
)
def test_bad_arguments(folder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        image_dataset_from_directory(folder, verbose=False, **kwargs)
