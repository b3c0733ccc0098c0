"""MNIST handwritten digits, as ``keras.datasets.mnist.load_data()`` returns them.

Where the data come from (first match wins):

1. ``path`` given to :func:`load_data`: a Keras-format ``mnist.npz`` file, or a
   folder holding the files, or a folder holding an ``mnist/`` subfolder with
   them;
2. ``$XPCNN_DATA_DIR/mnist``;
3. the user cache, ``$XDG_CACHE_HOME/xpcnn/mnist`` (default
   ``~/.cache/xpcnn/mnist``).

In the chosen folder the four original IDX files (``*-ubyte.gz``) are used when
all are there, else ``mnist.npz`` when it is there; otherwise the missing
``.gz`` files are downloaded into that folder from :data:`MIRRORS`. Every
``.gz`` file with its canonical name, local or downloaded, must match its
SHA-256 in :data:`SHA256`; downloads are written atomically, so an interrupted
one never leaves a file that looks complete.

Errors are :class:`~engine.datasets.DatasetNotFoundError` (missing, and the
download failed) and :class:`~engine.datasets.DatasetCorruptError` (checksum,
truncation, bad header, inconsistent arrays).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import struct
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from engine.datasets import DatasetCorruptError, DatasetNotFoundError
from engine.io_utils import atomic_write

__all__ = ["MIRRORS", "SHA256", "load_data", "read_idx"]

_log = logging.getLogger(__name__)

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
NPZ_NAME = "mnist.npz"

#: SHA-256 of the published original files (the values TensorFlow Datasets uses).
SHA256 = {
    TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

#: Tried in order; yann.lecun.com itself now refuses automated downloads.
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

#: Seconds a connection or a single read may stall (not a limit on the total).
DOWNLOAD_TIMEOUT_S = 60

_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_ROWS = _COLS = 28


def load_data(path: str | os.PathLike | None = None):
    """Load MNIST.

    Args:
        path: optional ``mnist.npz`` file or data folder (see the module
            docstring); ``None`` uses ``$XPCNN_DATA_DIR/mnist`` or the cache.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, all ``uint8``:
        ``x_train`` (60000, 28, 28), ``y_train`` (60000,),
        ``x_test`` (10000, 28, 28), ``y_test`` (10000,). Pixels are 0..255,
        labels 0..9. The arrays are writable and own their memory.

    Raises:
        DatasetNotFoundError: files missing and not downloadable.
        DatasetCorruptError: a file fails its checksum or is malformed.
    """
    source = _locate(path)
    if source.suffix == ".npz":
        return _load_npz(source)
    names = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
    if not all((source / n).is_file() for n in names) and (source / NPZ_NAME).is_file():
        return _load_npz(source / NPZ_NAME)
    for name in names:
        if not (source / name).is_file():
            _download(name, source)
    # Check all four checksums before the slow decompression, so a bad file
    # fails fast; the raw bytes are kept to avoid reading them twice.
    raw = [_read_verified(source / name) for name in names]
    x_train, y_train, x_test, y_test = (
        _parse_idx(data, source / name) for data, name in zip(raw, names)
    )
    return (
        _check_pair(x_train, y_train, source / TRAIN_IMAGES),
        _check_pair(x_test, y_test, source / TEST_IMAGES),
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one MNIST IDX file, gzipped or not (detected from its first bytes).

    Returns a ``uint8`` array: (n, 28, 28) for an image file (magic 2051) or
    (n,) for a label file (magic 2049). No checksum is checked here.

    Raises:
        DatasetNotFoundError: ``path`` does not exist.
        DatasetCorruptError: bad gzip stream, wrong magic number or image size,
            or a payload whose length does not match the header.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such file") from None
    return _parse_idx(data, path)


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    if data[:2] == b"\x1f\x8b":  # gzip magic
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetCorruptError(
                f"{path}: not a valid gzip file, probably truncated or damaged ({e}); "
                "delete it and retry, or replace it with the original file"
            ) from e
    if len(data) < 4:
        raise DatasetCorruptError(f"{path}: only {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic not in (_IMAGES_MAGIC, _LABELS_MAGIC):
        raise DatasetCorruptError(
            f"{path}: bad magic number {magic} (expected {_IMAGES_MAGIC} for images "
            f"or {_LABELS_MAGIC} for labels); not an MNIST IDX file"
        )
    ndim = magic & 0xFF  # the low byte of the magic number is the number of dimensions
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetCorruptError(f"{path}: file ends inside the IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if ndim == 3 and dims[1:] != (_ROWS, _COLS):
        raise DatasetCorruptError(
            f"{path}: images are {dims[1]}x{dims[2]}, expected {_ROWS}x{_COLS}"
        )
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise DatasetCorruptError(
            f"{path}: payload is {len(data) - header} bytes but the header "
            f"{dims} says {expected}; the file is truncated or corrupt"
        )
    # copy(): frombuffer on bytes is read-only; callers expect a normal array.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _check_pair(x: np.ndarray, y: np.ndarray, where: Path):
    """Check an (images, labels) pair and return it as a tuple."""
    if x.dtype != np.uint8 or y.dtype != np.uint8:
        raise DatasetCorruptError(f"{where}: expected uint8 arrays, got {x.dtype} and {y.dtype}")
    if x.ndim != 3 or x.shape[1:] != (_ROWS, _COLS) or y.ndim != 1:
        raise DatasetCorruptError(
            f"{where}: expected images (n, {_ROWS}, {_COLS}) and labels (n,), "
            f"got {x.shape} and {y.shape}"
        )
    if len(x) != len(y):
        raise DatasetCorruptError(f"{where}: {len(x)} images but {len(y)} labels")
    return x, y


def _load_npz(path: Path):
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        # allow_pickle=False: a data file must never be able to run code.
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise TypeError("it holds a single .npy array, not a .npz archive")
        with npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise ValueError(f"arrays {missing} are missing (expected {keys})")
            xtr, ytr, xte, yte = (npz[k] for k in keys)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such file") from None
    except (
        OSError,
        ValueError,
        TypeError,
        EOFError,
        zlib.error,
        zipfile.BadZipFile,
    ) as e:
        raise DatasetCorruptError(
            f"{path}: not a usable MNIST .npz file: {e}; replace it with a Keras "
            "mnist.npz, or remove it and use the four .gz files"
        ) from e
    return _check_pair(xtr, ytr, path), _check_pair(xte, yte, path)


def _locate(path: str | os.PathLike | None) -> Path:
    """Return the ``.npz`` file or the folder to load from (see module docstring)."""
    if path is None:
        env = os.environ.get("XPCNN_DATA_DIR")
        return Path(env).expanduser() / "mnist" if env else _cache_dir()
    p = Path(path).expanduser()
    if p.suffix == ".npz":
        return p
    if p.is_file():
        raise DatasetNotFoundError(
            f"{p}: expected a folder holding the MNIST files or a mnist.npz file"
        )
    holds_files = any((p / n).is_file() for n in (*SHA256, NPZ_NAME))
    return p / "mnist" if not holds_files and (p / "mnist").is_dir() else p


def _cache_dir() -> Path:
    # The XDG spec says relative values must be ignored.
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "xpcnn" / "mnist"


def _read_verified(path: Path) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[path.name]:
        raise DatasetCorruptError(
            f"{path}: SHA-256 mismatch (got {digest}, expected {SHA256[path.name]}); "
            "the file is truncated or corrupt. Delete it and retry (it will be "
            "downloaded again), or replace it with the original file."
        )
    return data


def _download(name: str, folder: Path) -> None:
    """Fetch ``name`` from the first mirror that serves the right bytes."""
    problems = []
    for base in MIRRORS:
        url = base + name
        _log.info("downloading %s", url)
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                data = response.read()
        except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets
            problems.append(f"{url}: {e}")
            continue
        # Verify before writing anything, so bad bytes never reach the disk.
        digest = hashlib.sha256(data).hexdigest()
        if digest != SHA256[name]:
            problems.append(f"{url}: SHA-256 mismatch (got {digest})")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(folder / name) as f:
            f.write(data)
        return
    raise DatasetNotFoundError(
        f"MNIST file {name} is missing from {folder} and could not be downloaded:\n  "
        + "\n  ".join(problems)
        + f"\nPlace the four files {', '.join(SHA256)} (or a Keras mnist.npz) in "
        f"{folder}, or set XPCNN_DATA_DIR to a folder whose mnist/ subfolder holds them."
    )
