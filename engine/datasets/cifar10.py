"""CIFAR-10, as ``keras.datasets.cifar10.load_data()`` returns it.

60,000 32x32 colour images of 10 classes (:data:`CLASS_NAMES`), from the
"python version" archive ``cifar-10-python.tar.gz``: its
``cifar-10-batches-py/`` folder holds ``data_batch_1`` .. ``data_batch_5``
(10,000 training images each) and ``test_batch``, each a pickled dict whose
``data`` is a (10000, 3072) uint8 array (1024 red, 1024 green, then 1024 blue
values per image, rows top to bottom) and whose ``labels`` is a list of ints.

Where the data come from (first match wins):

1. ``path`` given to :func:`load_data`: the archive itself, or a folder holding
   it, or a folder holding the extracted batches (directly or in
   ``cifar-10-batches-py/``), or a folder holding a ``cifar10/`` subfolder
   with any of these;
2. ``$XPCNN_DATA_DIR/cifar10``;
3. the user cache, ``$XDG_CACHE_HOME/xpcnn/cifar10`` (default
   ``~/.cache/xpcnn/cifar10``).

When none is there the archive is downloaded into that folder from
:data:`MIRRORS` (Keras's URL), written atomically once it matched its SHA-256.
The archive, local or downloaded, must match :data:`SHA256` (Keras's value);
the batches are read from it in memory, never extracted to disk. Extracted
batches have no published checksums: they are checked for structure only.

The pickles are read with a restricted unpickler (:mod:`engine.datasets.safe_pickle`)
that allows NumPy arrays, dicts, lists, numbers and strings and nothing else:
a tampered file cannot run code.

Errors are :class:`~engine.datasets.DatasetNotFoundError`,
:class:`~engine.datasets.WrongDatasetError` and
:class:`~engine.datasets.DatasetCorruptError`, as for MNIST.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

import numpy as np

from engine.datasets import DatasetCorruptError, DatasetNotFoundError, files, safe_pickle

__all__ = ["CLASS_NAMES", "CONTENT_SHA256", "MIRRORS", "SHA256", "TITLE", "load_data"]

TITLE = "CIFAR-10"
ARCHIVE = "cifar-10-python.tar.gz"
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
BATCHES = (*TRAIN_BATCHES, TEST_BATCH)

#: Label i is CLASS_NAMES[i] (the archive's batches.meta, Keras's table).
CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

#: SHA-256 of the published archive (the value keras.datasets.cifar10 checks).
SHA256 = {ARCHIVE: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"}
#: No gzip-repacked variants are known.
CONTENT_SHA256 = {}

MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)

_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE
_NUM_CLASSES = len(CLASS_NAMES)


def load_data(path: str | os.PathLike | None = None):
    """Load CIFAR-10.

    Args:
        path: optional archive or data folder (see the module docstring);
            ``None`` uses ``$XPCNN_DATA_DIR/cifar10`` or the cache.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, all ``uint8``:
        ``x_train`` (50000, 32, 32, 3), ``y_train`` (50000, 1),
        ``x_test`` (10000, 32, 32, 3), ``y_test`` (10000, 1): Keras's
        channels-last layout. Pixels are 0..255, labels 0..9
        (:data:`CLASS_NAMES`). The arrays are C-contiguous, writable and own
        their memory.

    Raises:
        DatasetNotFoundError: files missing and not downloadable.
        WrongDatasetError: the archive is another dataset's file.
        DatasetCorruptError: the archive fails its checksum, or a batch is
            malformed or holds anything but arrays, lists, numbers and strings.
    """
    source = _locate(path)
    if source.is_dir():
        batches = {name: _read_batch_file(source / name) for name in BATCHES}
    else:
        if not source.exists():
            what = f"{ARCHIVE} (or the {BATCHES_DIR} folder extracted from it)"
            files.download(ARCHIVE, source.parent, "cifar10", what)
        files.check_file(source, "cifar10", ARCHIVE)
        batches = _read_archive(source)
    train = [batches[name] for name in TRAIN_BATCHES]
    return (
        _images_and_labels([x for x, _ in train], [y for _, y in train]),
        _images_and_labels([batches[TEST_BATCH][0]], [batches[TEST_BATCH][1]]),
    )


def _locate(path: str | os.PathLike | None) -> Path:
    """The archive (present or to be downloaded) or a folder of extracted batches."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        if p.name.endswith(".tar.gz"):
            raise DatasetNotFoundError(f"{p}: no such file")
    folder = files.resolve_folder("cifar10", path, (ARCHIVE, BATCHES_DIR, *BATCHES))
    if (folder / ARCHIVE).is_file():
        return folder / ARCHIVE
    for candidate in (folder, folder / BATCHES_DIR):
        if any((candidate / name).is_file() for name in BATCHES):
            return candidate
    return folder / ARCHIVE


def _read_archive(archive: Path):
    """{batch name: (data, labels)} read from the archive's members in one pass."""
    wanted = {f"{BATCHES_DIR}/{name}": name for name in BATCHES}
    batches = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # Members in archive order: the gzip stream is never rewound.
            for member in tar:
                if member.name in wanted and member.isfile():
                    data = tar.extractfile(member).read()
                    where = f"{archive}, member {member.name}"
                    batches[wanted[member.name]] = _parse_batch(data, where, archive)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DatasetCorruptError(
            f"{archive}: not a readable tar.gz archive ({e}); delete it and retry "
            "(it will be downloaded again), or replace it with the original file"
        ) from e
    missing = [name for name in wanted if wanted[name] not in batches]
    if missing:
        raise DatasetCorruptError(
            f"{archive}: the archive lacks {missing}; replace it with the original {ARCHIVE}"
        )
    return batches


def _read_batch_file(path: Path):
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetNotFoundError(
            f"{path}: no such file; the folder {path.parent} must hold all of "
            f"{', '.join(BATCHES)} (extract {ARCHIVE} again, or put the archive there)"
        ) from None
    return _parse_batch(data, str(path), path.parent)


def _parse_batch(data: bytes, where: str, replace: Path):
    """(data (n, 3072) uint8, labels (n,) uint8) of one pickled batch; ``replace`` is what
    the error message asks to replace."""
    advice = f"replace {replace} with the original {ARCHIVE} (or a fresh extraction of it)"
    try:
        batch = safe_pickle.loads(data)
    except Exception as e:  # a damaged pickle can raise almost any exception type
        raise DatasetCorruptError(f"{where}: not a CIFAR batch pickle ({e}); {advice}") from e
    if not isinstance(batch, dict):
        raise DatasetCorruptError(
            f"{where}: holds a {type(batch).__name__}, expected a dict; {advice}"
        )
    # Python 2 str keys come back as bytes.
    batch = {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    x, labels = batch.get("data"), batch.get("labels")
    if (
        not isinstance(x, np.ndarray)
        or x.dtype != np.uint8
        or x.ndim != 2
        or (x.shape[1] != _PIXELS)
    ):
        described = (
            f"a {x.dtype} array of shape {x.shape}"
            if isinstance(x, np.ndarray)
            else type(x).__name__
        )
        raise DatasetCorruptError(
            f"{where}: 'data' is {described}, expected a uint8 array (n, {_PIXELS}); {advice}"
        )
    try:
        y = np.asarray(labels)
    except (TypeError, ValueError):
        y = np.asarray(None)
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x):
        raise DatasetCorruptError(
            f"{where}: 'labels' must be a list of {len(x)} ints, one per image; {advice}"
        )
    if len(y) and (y.min() < 0 or y.max() >= _NUM_CLASSES):
        raise DatasetCorruptError(
            f"{where}: labels range over {y.min()}..{y.max()}, expected 0..9; {advice}"
        )
    return x, y.astype(np.uint8)


def _images_and_labels(xs, ys):
    """Stacked batches as Keras returns them: (n, 32, 32, 3) and (n, 1) uint8."""
    x = np.concatenate(xs).reshape(-1, 3, _SIDE, _SIDE)
    # Channels last, as Keras's default image_data_format; contiguous for speed later.
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.concatenate(ys).reshape(-1, 1)
