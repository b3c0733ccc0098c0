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
SHA-256 in :data:`SHA256` (a local file may instead hold the same data
gzipped differently: :data:`CONTENT_SHA256`); downloads are written
atomically, so an interrupted one never leaves a file that looks complete.
A valid file of another known dataset (Fashion-MNIST's files have the same
names) is reported as such.

Errors are :class:`~engine.datasets.DatasetNotFoundError` (missing, and the
download failed), :class:`~engine.datasets.WrongDatasetError` (another
dataset's file) and :class:`~engine.datasets.DatasetCorruptError` (checksum,
truncation, bad header, inconsistent arrays).
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from engine.datasets import DatasetCorruptError, DatasetNotFoundError, files, idx
from engine.datasets.idx import read_idx

__all__ = ["CONTENT_SHA256", "MIRRORS", "SHA256", "TITLE", "load_data", "read_idx"]

TITLE = "MNIST"
NPZ_NAME = "mnist.npz"

#: SHA-256 of the published original files (the values TensorFlow Datasets uses).
SHA256 = {
    idx.TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    idx.TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    idx.TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    idx.TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

#: SHA-256 of the same files decompressed (computed from the files above).
CONTENT_SHA256 = {
    idx.TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    idx.TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    idx.TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    idx.TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Tried in order; yann.lecun.com itself now refuses automated downloads.
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)


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
        WrongDatasetError: a file is another dataset's (e.g. Fashion-MNIST's).
        DatasetCorruptError: a file fails its checksum or is malformed.
    """
    source = _locate(path)
    if source.suffix == ".npz":
        return _load_npz(source)
    if not all((source / n).is_file() for n in idx.IDX_FILES) and (source / NPZ_NAME).is_file():
        return _load_npz(source / NPZ_NAME)
    what = f"the four files {', '.join(idx.IDX_FILES)} (or a Keras {NPZ_NAME})"
    return idx.load_idx_folder(source, "mnist", what)


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
    return idx.check_pair(xtr, ytr, path), idx.check_pair(xte, yte, path)


def _locate(path: str | os.PathLike | None) -> Path:
    """Return the ``.npz`` file or the folder to load from (see module docstring)."""
    if path is not None:
        p = Path(path).expanduser()
        if p.suffix == ".npz":
            return p
        if p.is_file():
            raise DatasetNotFoundError(
                f"{p}: expected a folder holding the MNIST files or a mnist.npz file"
            )
    return files.resolve_folder("mnist", path, (*idx.IDX_FILES, NPZ_NAME))
