"""Where dataset files live, how they are downloaded, and how they are checked.

A dataset is named by its module, ``engine.datasets.<name>`` (``"mnist"``,
``"fashion_mnist"``, ``"cifar10"``), whose constants describe its files:
``TITLE`` ("MNIST"), ``MIRRORS`` (base URLs tried in order), ``SHA256`` (file
name -> SHA-256 of the published file) and ``CONTENT_SHA256`` (file name ->
SHA-256 of a ``.gz`` file's decompressed content). The functions here read
those constants at call time (so a test can point them at a local server and
its own files), and :func:`describe_digest` looks a digest up in all of them,
so that a valid file of another known dataset is named as such instead of
being called corrupt.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import importlib
import logging
import os
import urllib.request
import zlib
from pathlib import Path

from engine.datasets import (
    DatasetCorruptError,
    DatasetError,
    DatasetNotFoundError,
    WrongDatasetError,
)
from engine.io_utils import atomic_write

__all__ = [
    "DATASETS",
    "DOWNLOAD_TIMEOUT_S",
    "cache_dir",
    "check_file",
    "dataset_dir",
    "dataset_module",
    "describe_digest",
    "download",
    "read_verified",
    "resolve_folder",
]

_log = logging.getLogger(__name__)

#: Seconds a connection or a single read may stall (not a limit on the total).
DOWNLOAD_TIMEOUT_S = 60

#: The dataset modules (engine.datasets.<name>) whose files describe_digest recognises.
DATASETS = ("mnist", "fashion_mnist", "cifar10")

_CHUNK = 1 << 20


def cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/xpcnn/<name>``, default ``~/.cache/xpcnn/<name>``."""
    # The XDG spec says relative values must be ignored.
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "xpcnn" / name


def dataset_dir(name: str) -> Path:
    """``$XPCNN_DATA_DIR/<name>`` when that variable is set, else :func:`cache_dir`."""
    env = os.environ.get("XPCNN_DATA_DIR")
    return Path(env).expanduser() / name if env else cache_dir(name)


def resolve_folder(name: str, path: str | os.PathLike | None, markers) -> Path:
    """The folder to load ``name`` from.

    ``None`` gives :func:`dataset_dir`; a folder holding none of ``markers``
    (file or folder names) but a ``<name>/`` subfolder gives that subfolder
    (so ``$XPCNN_DATA_DIR`` itself can be passed); any other folder is used
    as it is, the missing files being downloaded into it.
    """
    if path is None:
        return dataset_dir(name)
    p = Path(path).expanduser()
    holds_files = any((p / m).exists() for m in markers)
    return p / name if not holds_files and (p / name).is_dir() else p


def dataset_module(name: str):
    """The module ``engine.datasets.<name>``, whose constants describe its files."""
    # Imported at call time: the dataset modules import this one.
    return importlib.import_module(f"engine.datasets.{name}")


def describe_digest(digest: str):
    """``(title, module name, file name)`` of the known dataset file with this SHA-256, or
    None. The published files' digests and their decompressed contents' both count."""
    for name in DATASETS:
        module = dataset_module(name)
        for table in (module.SHA256, module.CONTENT_SHA256):
            for file_name, known in table.items():
                if known == digest:
                    return module.TITLE, name, file_name
    return None


def read_verified(path: Path, dataset: str, file_name: str | None = None) -> bytes:
    """The bytes of ``path`` once they are known to be ``dataset``'s file ``file_name``
    (default: the file's own name).

    A file with the published SHA-256 is returned as it is. Otherwise, if the
    dataset lists a content digest for it, its decompressed content (the file
    itself if not gzipped) is returned when that content matches: the same
    data in another gzip wrapper, as Debian's packages repack them.

    Raises:
        WrongDatasetError: the file, or its content, is another known dataset file.
        DatasetCorruptError: anything else that does not match.
    """
    module = dataset_module(dataset)
    file_name = file_name or path.name
    with _reading(path):
        data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest == module.SHA256[file_name]:
        return data
    if file_name in module.CONTENT_SHA256 and describe_digest(digest) is None:
        content = _content(data)
        if content is not None:
            content_digest = hashlib.sha256(content).hexdigest()
            if content_digest == module.CONTENT_SHA256[file_name]:
                return content
            if describe_digest(content_digest) is not None:
                digest = content_digest
    raise _mismatch(path, digest, dataset, module.SHA256[file_name])


def check_file(path: Path, dataset: str, file_name: str | None = None) -> None:
    """Check ``path``'s SHA-256 as :func:`read_verified` does, reading it in chunks (for
    large archives); raises the same errors."""
    module = dataset_module(dataset)
    expected = module.SHA256[file_name or path.name]
    h = hashlib.sha256()
    with _reading(path), open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    if h.hexdigest() != expected:
        raise _mismatch(path, h.hexdigest(), dataset, expected)


def download(file_name: str, folder: Path, dataset: str, what: str) -> None:
    """Fetch ``dataset``'s ``file_name`` into ``folder`` from the first of its mirrors that
    serves the right bytes.

    The download streams into a hidden temporary file that becomes
    ``folder/file_name`` only once its SHA-256 matched (``atomic_write``), so
    neither bad bytes nor an interrupted download ever look like the file.

    Raises:
        DatasetNotFoundError: no mirror served the file. The message lists why,
            and asks to place ``what`` (the files, in words) in the folder.
    """
    module = dataset_module(dataset)
    target = folder / file_name
    problems = []
    for base in module.MIRRORS:
        url = base + file_name
        _log.info("downloading %s", url)
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                folder.mkdir(parents=True, exist_ok=True)
                with atomic_write(target) as f:
                    digest = _copy_hashing(response, f)
                    if digest != module.SHA256[file_name]:
                        # Raised inside the block, so atomic_write removes the temporary file.
                        raise DatasetCorruptError(
                            f"{url}: SHA-256 mismatch (got {digest}{_known_as(digest)})"
                        )
        except DatasetCorruptError as e:
            problems.append(str(e))
        except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets
            problems.append(f"{url}: {e}")
        else:
            return
    raise DatasetNotFoundError(
        f"{module.TITLE} file {file_name} is missing from {folder} and could not be "
        "downloaded:\n  " + "\n  ".join(problems) + f"\nPlace {what} in {folder}, or set "
        f"XPCNN_DATA_DIR to a folder whose {dataset}/ subfolder holds them."
    )


@contextlib.contextmanager
def _reading(path: Path):
    """Turn the OSError of reading ``path`` into a DatasetError that names it."""
    try:
        yield
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such file") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot be read ({e})") from e


def _copy_hashing(source, destination) -> str:
    h = hashlib.sha256()
    while chunk := source.read(_CHUNK):
        h.update(chunk)
        destination.write(chunk)
    return h.hexdigest()


def _content(data: bytes) -> bytes | None:
    """A gzip file's decompressed content, the data itself if not gzipped, None if damaged."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return None


def _known_as(digest: str) -> str:
    known = describe_digest(digest)
    return f": that is the {known[0]} file {known[2]}" if known else ""


def _mismatch(path: Path, digest: str, dataset: str, expected: str) -> DatasetCorruptError:
    """The error for a file that is not ``dataset``'s: named if known, else corrupt."""
    known = describe_digest(digest)
    if known is None:
        return DatasetCorruptError(
            f"{path}: SHA-256 mismatch (got {digest}, expected {expected}); "
            "the file is truncated or corrupt. Delete it and retry (it will be "
            "downloaded again), or replace it with the original file."
        )
    title = dataset_module(dataset).TITLE
    other_title, other, file_name = known
    if other == dataset:
        return WrongDatasetError(
            f"{path}: this is the {title} file {file_name}, not {path.name}: the files "
            "were renamed or swapped; give each file its original name."
        )
    return WrongDatasetError(
        f"{path}: these are the {other_title} files, not {title} (this is the "
        f"{other_title} file {file_name}): use engine.datasets.{other} to load them, "
        f"and give engine.datasets.{dataset} the {title} files."
    )
