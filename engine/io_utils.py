"""Small file-system helpers shared across the engine."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["KerasFileError", "WeightFileError", "WeightFileNotFoundError", "atomic_write"]


class WeightFileError(ValueError):
    """A weights or model file is unreadable or does not match the model."""


class WeightFileNotFoundError(WeightFileError, FileNotFoundError):
    """The weights or model file does not exist."""


class KerasFileError(WeightFileError):
    """A Keras file (.keras archive, .weights.h5) that cannot be read into, or written from,
    this model."""


_WRITE_MODES = ("w", "wt", "wb")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO]:
    """Write ``path`` so that it is either fully written or left untouched.

    Yields a file object opened on a temporary file in the same folder as
    ``path``. When the ``with`` block ends normally the data are flushed and
    fsynced and the temporary file is renamed over ``path`` (``os.replace``,
    atomic on POSIX and Windows). If the block raises anything, including
    ``KeyboardInterrupt``, the temporary file is removed and ``path`` keeps its
    previous content (or stays absent).

    ``mode`` is ``"wb"`` (default), ``"w"`` or ``"wt"``; ``open_kwargs`` (e.g.
    ``encoding``, ``newline``) go to ``open``.

    Example::

        with atomic_write("model.npz") as f:
            np.savez(f, **weights)
    """
    if mode not in _WRITE_MODES:
        raise ValueError(f"atomic_write: mode must be one of {_WRITE_MODES}, got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    # Same folder, so os.replace never crosses a file-system boundary. We create
    # the file ourselves (not tempfile.mkstemp) so it gets the usual umask-based
    # permissions instead of mkstemp's 0600.
    while True:
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                0o666,
            )
            break
        except FileExistsError:  # name clash with another writer: pick another name
            continue
    try:
        try:
            f = os.fdopen(fd, mode, **open_kwargs)
        except BaseException:
            # e.g. bad open_kwargs; io.open may or may not have closed fd already.
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # The file object is already closed here (the inner ``with`` exited),
        # so removal also works on Windows.
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    # Make the rename itself durable; not possible on every platform (Windows).
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
