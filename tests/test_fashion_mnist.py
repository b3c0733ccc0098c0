"""engine.datasets.fashion_mnist, and how the IDX loaders tell MNIST and Fashion-MNIST apart.

The real Fashion-MNIST is read where Debian's dataset-fashion-mnist package
installs it (apt-get install -y dataset-fashion-mnist), or from
$XPCNN_DATA_DIR/fashion_mnist; those tests skip with a reason where it is
absent. Downloads go to a local HTTP server serving small fake files
(tests/dataset_fakes.py).
"""

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import (
    DatasetCorruptError,
    DatasetNotFoundError,
    WrongDatasetError,
    fashion_mnist,
    files,
    idx,
    mnist,
)
from tests.dataset_fakes import idx_files, inject_sums, serving, sha256

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("XPCNN_DATA_DIR") or REPO.parent / "shared" / "data")
MNIST_DIR = DATA_ROOT / "mnist"
FASHION_DIRS = (Path("/usr/share/datasets/fashion-mnist"), DATA_ROOT / "fashion_mnist")
FASHION_DIR = next((d for d in FASHION_DIRS if (d / idx.TRAIN_IMAGES).is_file()), None)
needs_fashion = pytest.mark.skipif(
    FASHION_DIR is None,
    reason=f"Fashion-MNIST not found in {' or '.join(map(str, FASHION_DIRS))} "
    "(apt-get install dataset-fashion-mnist)",
)
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / idx.TRAIN_IMAGES).is_file(), reason=f"MNIST files not found in {MNIST_DIR}"
)


@pytest.fixture(scope="module")
def real():
    if FASHION_DIR is None:
        pytest.skip("Fashion-MNIST files not installed")
    return fashion_mnist.load_data(FASHION_DIR)


@pytest.fixture
def offline(monkeypatch):
    """Downloads fail fast: the mirrors point at a closed local port."""
    monkeypatch.setattr(fashion_mnist, "MIRRORS", ("http://127.0.0.1:9/",))
    monkeypatch.setenv("no_proxy", "127.0.0.1")


# --- the real files ---------------------------------------------------------------


@needs_fashion
def test_real_shapes_dtypes_and_labels(real):
    (x_train, y_train), (x_test, y_test) = real
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8 and a.flags.writeable and a.flags.c_contiguous
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert len(fashion_mnist.CLASS_NAMES) == 10


@needs_fashion
def test_real_known_checksums(real):
    (x_train, _), (_, y_test) = real
    # Measured once on the published data (the same for Debian's repacked copy).
    assert sha256(x_train.tobytes()) == (
        "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012"
    )
    assert sha256(y_test.tobytes()) == (
        "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"
    )
    for name in idx.IDX_FILES:  # each file is the published one, or its content is
        data = (FASHION_DIR / name).read_bytes()
        assert sha256(data) == fashion_mnist.SHA256[name] or (
            sha256(gzip.decompress(data)) == fashion_mnist.CONTENT_SHA256[name]
        )


@needs_fashion
@needs_mnist
@pytest.mark.parametrize(
    ("loader", "folder", "other", "module"),
    [
        (mnist.load_data, "fashion", "Fashion-MNIST", "fashion_mnist"),
        (fashion_mnist.load_data, "mnist", "MNIST", "mnist"),
    ],
    ids=["mnist-given-fashion", "fashion-given-mnist"],
)
def test_the_other_dataset_is_named(loader, folder, other, module, offline):
    where = FASHION_DIR if folder == "fashion" else MNIST_DIR
    with pytest.raises(WrongDatasetError) as exc:
        loader(where)
    message = str(exc.value)
    assert str(where / idx.TRAIN_IMAGES) in message
    assert f"these are the {other} files, not " in message
    assert f"use engine.datasets.{module}" in message
    assert "corrupt" not in message and "Delete" not in message
    assert isinstance(exc.value, DatasetCorruptError)


@needs_mnist
def test_repacked_gzip_is_accepted_and_swapped_files_are_named(tmp_path):
    # The same data under another gzip header (as Debian repacks): accepted by content.
    for name in idx.IDX_FILES:
        content = gzip.decompress((MNIST_DIR / name).read_bytes())
        (tmp_path / name).write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    assert sha256((tmp_path / idx.TRAIN_LABELS).read_bytes()) != mnist.SHA256[idx.TRAIN_LABELS]
    (x_train, y_train), _ = mnist.load_data(tmp_path)
    assert x_train.shape == (60000, 28, 28) and y_train[:5].tolist() == [5, 0, 4, 1, 9]
    # Two files swapped: named, not called corrupt.
    shutil.copy(MNIST_DIR / idx.TEST_LABELS, tmp_path / idx.TRAIN_LABELS)
    with pytest.raises(WrongDatasetError, match="renamed or swapped") as exc:
        mnist.load_data(tmp_path)
    assert f"this is the MNIST file {idx.TEST_LABELS}, not {idx.TRAIN_LABELS}" in str(exc.value)


# --- fake files: folders, downloads, checksums ---------------------------------------


def test_load_from_folder_env_and_subfolder(tmp_path, monkeypatch, offline):
    data, arrays = idx_files()
    inject_sums(monkeypatch, fashion_mnist, data)
    folder = tmp_path / "root" / "fashion_mnist"
    folder.mkdir(parents=True)
    for name, blob in data.items():
        (folder / name).write_bytes(blob)
    for where in (folder, tmp_path / "root", str(folder)):
        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(where)
        assert np.array_equal(x_train, arrays[idx.TRAIN_IMAGES])
        assert np.array_equal(y_test, arrays[idx.TEST_LABELS])
    monkeypatch.setenv("XPCNN_DATA_DIR", str(tmp_path / "root"))
    assert np.array_equal(fashion_mnist.load_data()[0][1], arrays[idx.TRAIN_LABELS])


def test_download_into_cache_from_a_local_server(tmp_path, monkeypatch):
    data, arrays = idx_files(n_train=5, n_test=3, seed=1)
    inject_sums(monkeypatch, fashion_mnist, data)
    monkeypatch.delenv("XPCNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with serving({f"/two/{name}": blob for name, blob in data.items()}) as server:
        # The first mirror answers 404 for everything; the second has the files.
        monkeypatch.setattr(
            fashion_mnist, "MIRRORS", (f"{server.base}/one/", f"{server.base}/two/")
        )
        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
        assert len(server.requests) == 8
        cache = tmp_path / "cache" / "xpcnn" / "fashion_mnist"
        assert sorted(p.name for p in cache.iterdir()) == sorted(idx.IDX_FILES)  # no temp files
        for name in idx.IDX_FILES:
            assert (cache / name).read_bytes() == data[name]
        assert np.array_equal(x_train, arrays[idx.TRAIN_IMAGES]) and x_test.shape == (3, 28, 28)
        assert np.array_equal(y_train, arrays[idx.TRAIN_LABELS])
        server.requests.clear()
        fashion_mnist.load_data()  # cached: no request at all
        assert server.requests == []


def test_download_with_wrong_bytes_leaves_nothing(tmp_path, monkeypatch):
    data, _ = idx_files()
    inject_sums(monkeypatch, fashion_mnist, data)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    served = {f"/{name}": b"not the file" for name in data}
    with serving(served) as server:
        monkeypatch.setattr(fashion_mnist, "MIRRORS", (f"{server.base}/",))
        with pytest.raises(DatasetNotFoundError, match="SHA-256 mismatch") as exc:
            fashion_mnist.load_data(tmp_path / "data")
    message = str(exc.value)
    assert "Fashion-MNIST file train-images-idx3-ubyte.gz is missing from" in message
    assert "XPCNN_DATA_DIR" in message and "fashion_mnist/" in message
    assert list((tmp_path / "data").iterdir()) == []  # the temporary file is gone


def test_download_serving_the_other_dataset_says_so(tmp_path, monkeypatch):
    data, _ = idx_files(seed=2)
    inject_sums(monkeypatch, mnist, data)  # these fakes are "MNIST"
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with serving({f"/{name}": blob for name, blob in data.items()}) as server:
        monkeypatch.setattr(fashion_mnist, "MIRRORS", (f"{server.base}/",))
        with pytest.raises(DatasetNotFoundError) as exc:
            fashion_mnist.load_data(tmp_path)
    assert f"that is the MNIST file {idx.TRAIN_IMAGES}" in str(exc.value)


def test_damaged_local_file(tmp_path, monkeypatch, offline):
    data, _ = idx_files()
    inject_sums(monkeypatch, fashion_mnist, data)
    for name, blob in data.items():
        (tmp_path / name).write_bytes(blob)
    bad = tmp_path / idx.TEST_IMAGES
    bad.write_bytes(data[idx.TEST_IMAGES][:-7])
    with pytest.raises(DatasetCorruptError, match="SHA-256 mismatch") as exc:
        fashion_mnist.load_data(tmp_path)
    assert str(bad) in str(exc.value) and "Delete it and retry" in str(exc.value)
    assert not isinstance(exc.value, WrongDatasetError)


def test_missing_offline_and_file_instead_of_folder(tmp_path, offline):
    with pytest.raises(DatasetNotFoundError) as exc:
        fashion_mnist.load_data(tmp_path / "none")
    assert str(tmp_path / "none") in str(exc.value) and "127.0.0.1:9" in str(exc.value)
    assert not (tmp_path / "none").exists()
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="expected a folder"):
        fashion_mnist.load_data(tmp_path / "f")


def test_cache_folder_name(tmp_path, monkeypatch):
    monkeypatch.delenv("XPCNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert files.dataset_dir("fashion_mnist") == tmp_path / "xpcnn" / "fashion_mnist"
    monkeypatch.setenv("XPCNN_DATA_DIR", str(tmp_path / "d"))
    assert files.dataset_dir("cifar10") == tmp_path / "d" / "cifar10"
