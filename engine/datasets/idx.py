"""The IDX format of MNIST and Fashion-MNIST: four gzipped files per dataset.

    train-images-idx3-ubyte.gz  (60000, 28, 28) uint8
    train-labels-idx1-ubyte.gz  (60000,) uint8
    t10k-images-idx3-ubyte.gz   (10000, 28, 28) uint8
    t10k-labels-idx1-ubyte.gz   (10000,) uint8

An IDX file is a big-endian header (magic number, then one uint32 per
dimension) followed by the raw uint8 payload.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from engine.datasets import DatasetCorruptError, DatasetNotFoundError, files

__all__ = ["IDX_FILES", "load_idx_folder", "read_idx"]

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
#: In the order load_idx_folder reads them.
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_ROWS = _COLS = 28


def load_idx_folder(folder: Path, dataset: str, what: str | None = None):
    """Load the four IDX files of ``dataset`` (``"mnist"``, ``"fashion_mnist"``) from
    ``folder``, downloading the missing ones first (see :mod:`engine.datasets.files`).

    ``what`` names the files in the message when they cannot be downloaded.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` as :func:`read_idx` reads them.
    """
    what = what or "the four files " + ", ".join(IDX_FILES)
    for name in IDX_FILES:
        if not (folder / name).is_file():
            files.download(name, folder, dataset, what)
    # Check all four checksums before the slow decompression, so a bad file
    # fails fast; the bytes are kept to avoid reading them twice.
    raw = [files.read_verified(folder / name, dataset) for name in IDX_FILES]
    x_train, y_train, x_test, y_test = (
        parse_idx(data, folder / name) for data, name in zip(raw, IDX_FILES)
    )
    return (
        check_pair(x_train, y_train, folder / TRAIN_IMAGES),
        check_pair(x_test, y_test, folder / TEST_IMAGES),
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file of 28x28 images or of labels, gzipped or not (detected from its
    first bytes).

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
    return parse_idx(data, path)


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    """:func:`read_idx` on bytes already read from ``path`` (named in the errors)."""
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
            f"or {_LABELS_MAGIC} for labels); not an IDX image or label file"
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


def check_pair(x: np.ndarray, y: np.ndarray, where: Path):
    """Check an (images (n, 28, 28), labels (n,)) uint8 pair and return it as a tuple."""
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
