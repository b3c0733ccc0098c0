"""Reading the pickles of dataset archives without letting them run code.

A pickle is a program: unpickling calls whatever importable function the file
names (``os.system`` included). The CIFAR batches are Python 2 pickles of a
dict of bytes, ints, lists and NumPy arrays, and rebuilding a NumPy array
needs exactly three globals: ``numpy.ndarray``, ``numpy.dtype`` and
``numpy.core.multiarray._reconstruct`` (the same allowlist as Keras's
``keras/src/datasets/npz_utils.py``). :func:`loads` allows those three and
refuses every other global, so a tampered file fails instead of running code.
"""

from __future__ import annotations

import io
import pickle

import numpy as np

try:  # NumPy 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1
    from numpy.core.multiarray import _reconstruct

__all__ = ["loads"]

# Mapped to the objects themselves, so that a NumPy 1 pickle ("numpy.core") loads on
# NumPy 2 without importing its deprecated alias, and the reverse.
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a dataset pickle may only hold "
                "NumPy arrays, dicts, lists, numbers and strings"
            ) from None


def loads(data: bytes):
    """Unpickle ``data`` allowing only NumPy arrays besides the built-in types.

    Python 2 strings come back as ``bytes`` (``encoding="bytes"``, as Keras
    reads CIFAR). Raises ``pickle.UnpicklingError`` for a refused global;
    damaged data can raise other exceptions too.
    """
    return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
