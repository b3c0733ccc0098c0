"""Tests for engine.datasets.mnist and engine.io_utils.atomic_write.

The real MNIST files are read from $XPCNN_DATA_DIR/mnist, else from
../shared/data/mnist relative to the repository root; tests needing them are
skipped when they are absent. Nothing here touches the network: downloads are
simulated by monkeypatching urllib.request.urlopen.
"""

import gzip
import hashlib
import io
import os
import shutil
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import (
    DatasetCorruptError,
    DatasetError,
    DatasetNotFoundError,
    mnist,
)
from engine.io_utils import atomic_write

GZ_NAMES = list(mnist.SHA256)
REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("XPCNN_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")
MNIST_DIR = DATA_ROOT / "mnist"
HAVE_DATA = all((MNIST_DIR / n).is_file() for n in GZ_NAMES)
SKIP_REASON = (
    f"MNIST files not found in {MNIST_DIR} (set XPCNN_DATA_DIR to a folder "
    "whose mnist/ subfolder holds the four .gz files)"
)
needs_data = pytest.mark.skipif(not HAVE_DATA, reason=SKIP_REASON)


@pytest.fixture(scope="module")
def real():
    """The real data set, loaded once for the whole module."""
    if not HAVE_DATA:
        pytest.skip(SKIP_REASON)
    return mnist.load_data(DATA_ROOT)  # also covers the "folder with mnist/" case


@pytest.fixture
def offline(monkeypatch):
    """Make every download attempt fail like a machine without network."""
    calls = []

    def urlopen(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


def serve(monkeypatch, content_for):
    """Patch urlopen to answer with content_for(url); return the list of calls."""
    calls = []

    def urlopen(url, *args, timeout=None, **kwargs):
        calls.append((url, timeout))
        return io.BytesIO(content_for(url))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


def idx_bytes(magic, dims, payload=None):
    """A hand-made IDX file (uncompressed)."""
    n = int(np.prod(dims))
    payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256)) if payload is None else payload
    return struct.pack(f">I{len(dims)}I", magic, *dims) + payload


def listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# --- real data ----------------------------------------------------------------


def test_shapes_and_dtypes(real):
    (x_train, y_train), (x_test, y_test) = real
    assert x_train.shape == (60000, 28, 28)
    assert y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28)
    assert y_test.shape == (10000,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8
        assert a.flags.writeable and a.flags.c_contiguous


def test_known_facts(real):
    (x_train, y_train), (_, y_test) = real
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert y_test[:5].tolist() == [7, 2, 1, 0, 4]
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_train, minlength=10).tolist() == counts
    assert x_train.max() == 255 and x_train.min() == 0


def test_npz_file_and_folder(real, tmp_path):
    (x_train, y_train), (x_test, y_test) = real
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for where in (npz, tmp_path, str(tmp_path)):
        (a, b), (c, d) = mnist.load_data(where)
        assert np.array_equal(a, x_train) and np.array_equal(b, y_train)
        assert np.array_equal(c, x_test) and np.array_equal(d, y_test)


@needs_data
def test_read_idx_on_real_labels():
    labels = mnist.read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels[:5].tolist() == [7, 2, 1, 0, 4]


# --- damaged local files ------------------------------------------------------


def copy_with(tmp_path, name, damage):
    """Copy the four real files into tmp_path, applying damage() to one."""
    for n in GZ_NAMES:
        shutil.copy(MNIST_DIR / n, tmp_path / n)
    target = tmp_path / name
    target.write_bytes(damage(target.read_bytes()))
    return target


def flip_middle_byte(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


@needs_data
@pytest.mark.parametrize(
    "damage",
    [lambda d: d[: len(d) // 2], flip_middle_byte],
    ids=["truncated", "flipped"],
)
def test_damaged_canonical_file_fails_checksum(tmp_path, offline, damage):
    bad = copy_with(tmp_path, "train-labels-idx1-ubyte.gz", damage)
    with pytest.raises(DatasetCorruptError, match="SHA-256 mismatch") as exc:
        mnist.load_data(tmp_path)
    assert str(bad) in str(exc.value)
    assert "Delete it and retry" in str(exc.value)
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, DatasetError)
    assert offline == []  # a present-but-bad file is reported, not re-downloaded


@needs_data
def test_read_idx_truncated_gzip(tmp_path):
    bad = tmp_path / "labels-copy.gz"
    data = (MNIST_DIR / "train-labels-idx1-ubyte.gz").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetCorruptError, match="not a valid gzip file") as exc:
        mnist.read_idx(bad)
    assert str(bad) in str(exc.value)


@needs_data
def test_read_idx_corrupt_gzip(tmp_path):
    bad = tmp_path / "labels-copy.gz"
    bad.write_bytes(flip_middle_byte((MNIST_DIR / "train-labels-idx1-ubyte.gz").read_bytes()))
    with pytest.raises(DatasetCorruptError, match="not a valid gzip file") as exc:
        mnist.read_idx(bad)
    assert str(bad) in str(exc.value)


# --- the IDX parser on hand-made files -----------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_read_idx_valid(tmp_path, compress):
    images = idx_bytes(2051, (3, 28, 28))
    labels = idx_bytes(2049, (3,), bytes([7, 0, 9]))
    wrap = gzip.compress if compress else (lambda b: b)
    (tmp_path / "i").write_bytes(wrap(images))
    (tmp_path / "l").write_bytes(wrap(labels))
    x = mnist.read_idx(tmp_path / "i")
    assert x.shape == (3, 28, 28) and x.dtype == np.uint8
    assert x.tobytes() == images[16:]
    assert mnist.read_idx(tmp_path / "l").tolist() == [7, 0, 9]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (idx_bytes(2050, (3,)), "bad magic number 2050"),
        (idx_bytes(2051, (3, 28, 27)), "images are 28x27, expected 28x28"),
        (idx_bytes(2051, (3, 28, 28))[:-1], "payload is 2351 bytes"),
        (idx_bytes(2049, (3,)) + b"\0", "payload is 4 bytes"),
        (idx_bytes(2051, (3, 28, 28))[:10], "ends inside the IDX header"),
        (b"\0\0", "too short"),
    ],
    ids=["magic", "dims", "short-payload", "long-payload", "short-header", "tiny"],
)
def test_read_idx_rejects_bad_files(tmp_path, content, message):
    bad = tmp_path / "hand-made-idx.gz"  # not a canonical name: no checksum applies
    bad.write_bytes(gzip.compress(content))
    with pytest.raises(DatasetCorruptError, match=message) as exc:
        mnist.read_idx(bad)
    assert str(bad) in str(exc.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        mnist.read_idx(tmp_path / "nope.gz")


# --- npz validation and folder resolution (small synthetic arrays) -----------------


def small_npz(path, n_train=5, n_test=3, **override):
    arrays = {
        "x_train": np.full((n_train, 28, 28), 1, np.uint8),
        "y_train": np.arange(n_train, dtype=np.uint8),
        "x_test": np.full((n_test, 28, 28), 2, np.uint8),
        "y_test": np.arange(n_test, dtype=np.uint8),
    }
    arrays.update(override)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"y_test": np.arange(4, dtype=np.uint8)}, "3 images but 4 labels"),
        ({"x_train": None}, r"arrays \['x_train'\] are missing"),
        ({"y_train": np.arange(5, dtype=np.int64)}, "expected uint8"),
        ({"x_test": np.zeros((3, 32, 32), np.uint8)}, r"expected images \(n, 28, 28\)"),
        ({"y_train": np.array([{}] * 5, dtype=object)}, "allow_pickle"),
    ],
    ids=["count", "missing-key", "dtype", "shape", "pickle"],
)
def test_bad_npz(tmp_path, override, message):
    npz = small_npz(tmp_path / "mnist.npz", **override)
    with pytest.raises(DatasetCorruptError, match=message) as exc:
        mnist.load_data(npz)
    assert str(npz) in str(exc.value)


def test_truncated_npz(tmp_path):
    npz = small_npz(tmp_path / "mnist.npz")
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(DatasetCorruptError, match="not a usable MNIST .npz") as exc:
        mnist.load_data(npz)
    assert str(npz) in str(exc.value)


def test_missing_npz_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        mnist.load_data(tmp_path / "mnist.npz")


def test_folder_resolution(tmp_path, monkeypatch, offline):
    npz = small_npz(tmp_path / "root" / "mnist" / "mnist.npz")
    # A folder holding the files, and a folder holding mnist/.
    for where in (npz.parent, tmp_path / "root"):
        assert mnist.load_data(where)[0][0].shape == (5, 28, 28)
    # $XPCNN_DATA_DIR/mnist when no path is given.
    monkeypatch.setenv("XPCNN_DATA_DIR", str(tmp_path / "root"))
    assert mnist.load_data()[1][0].shape == (3, 28, 28)
    assert offline == []


@pytest.mark.parametrize("xdg", ["abs", "relative", "unset"])
def test_cache_folder(tmp_path, monkeypatch, offline, xdg):
    monkeypatch.delenv("XPCNN_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if xdg == "abs":
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        expected = tmp_path / "xdg" / "xpcnn" / "mnist"
    else:  # the XDG spec says to ignore relative values
        if xdg == "relative":
            monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
        else:
            monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        expected = tmp_path / "home" / ".cache" / "xpcnn" / "mnist"
    with pytest.raises(DatasetNotFoundError) as exc:
        mnist.load_data()
    assert str(expected) in str(exc.value)


# --- downloads ----------------------------------------------------------------


def test_missing_files_offline(tmp_path, offline):
    folder = tmp_path / "empty"
    with pytest.raises(DatasetNotFoundError) as exc:
        mnist.load_data(folder)
    message = str(exc.value)
    assert isinstance(exc.value, FileNotFoundError)
    assert str(folder) in message and "XPCNN_DATA_DIR" in message
    assert "train-images-idx3-ubyte.gz" in message and "no network (test)" in message
    assert offline == [base + "train-images-idx3-ubyte.gz" for base in mnist.MIRRORS]
    assert not folder.exists()  # nothing was written


def test_download_into_cache(tmp_path, monkeypatch, real):
    monkeypatch.delenv("XPCNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def content_for(url):
        if url.startswith(mnist.MIRRORS[0]):  # the first mirror is down
            raise urllib.error.URLError("mirror 1 down (test)")
        return (MNIST_DIR / url.rsplit("/", 1)[1]).read_bytes()

    calls = serve(monkeypatch, content_for)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    cache = tmp_path / "cache" / "xpcnn" / "mnist"
    assert listing(cache) == sorted(GZ_NAMES)  # verified files, no temp files
    for name in GZ_NAMES:
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == mnist.SHA256[name]
    assert len(calls) == 8 and all(timeout for _, timeout in calls)
    for got, want in zip((x_train, y_train, x_test, y_test), (*real[0], *real[1])):
        assert np.array_equal(got, want)
    # Second call: everything is cached, so no network at all.
    calls.clear()
    assert np.array_equal(mnist.load_data()[1][1], y_test)
    assert calls == []


def test_download_with_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    calls = serve(monkeypatch, lambda url: b"not the file you want")
    folder = tmp_path / "data"
    with pytest.raises(DatasetNotFoundError, match="SHA-256 mismatch") as exc:
        mnist.load_data(folder)
    assert str(folder) in str(exc.value)
    assert len(calls) == len(mnist.MIRRORS)
    assert not folder.exists() or listing(folder) == []


@needs_data
def test_partial_download_failure_keeps_good_files(tmp_path, monkeypatch):
    def content_for(url):
        name = url.rsplit("/", 1)[1]
        if name == "t10k-images-idx3-ubyte.gz":
            raise urllib.error.URLError("gone (test)")
        return (MNIST_DIR / name).read_bytes()

    serve(monkeypatch, content_for)
    with pytest.raises(DatasetNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        mnist.load_data(tmp_path)
    # The files fetched before the failure stay (verified) for the next try.
    assert listing(tmp_path) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]


# --- atomic_write -------------------------------------------------------------


def test_atomic_write_success_binary_and_text(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as f:
        f.write(b"\x00\x01")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_bytes() == b"\x00\x01"
    with atomic_write(str(target), "w", encoding="utf-8") as f:
        f.write("héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert listing(tmp_path) == ["out.bin"]
    # Usual permissions (umask applied), not tempfile's 0600.
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    assert target.stat().st_mode == reference.stat().st_mode


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_failure_keeps_original(tmp_path, error):
    target = tmp_path / "model.npz"
    target.write_bytes(b"original")
    with pytest.raises(error), atomic_write(target) as f:
        f.write(b"half-written")
        raise error("boom")
    assert target.read_bytes() == b"original"
    assert listing(tmp_path) == ["model.npz"]


def test_atomic_write_failure_new_file(tmp_path):
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "new") as f:
        f.write(b"x")
        raise RuntimeError
    assert listing(tmp_path) == []


def test_atomic_write_rejects_read_modes(tmp_path):
    for mode in ("r", "ab", "w+b"):
        with (
            pytest.raises(ValueError, match="mode"),
            atomic_write(tmp_path / "f", mode),
        ):
            pass
    assert listing(tmp_path) == []
