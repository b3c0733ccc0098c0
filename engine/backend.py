"""The array-backend switch: NumPy on the CPU, CuPy on the GPU.

Layers, losses and optimizers are written once against the array module this
module hands out (``xp``); only this module and the kernel modules
(``engine.im2col``, ``engine.maxpool``, ``engine.special``, ``engine.affine``) know
that CuPy exists. Importing it never needs CuPy.
"""

import os

import numpy as np

BACKENDS = ("numpy", "cupy", "auto")
FLOATX = ("float32", "float64")


class BackendUnavailableError(ValueError, RuntimeError):
    """The requested backend cannot run here (e.g. 'cupy' without CuPy or a CUDA device)."""


_cupy = None  # the cupy module once imported successfully, else None
_cupy_error = None  # why importing CuPy or finding a device failed
_name = "numpy"
_floatx = "float32"
_fusion = True


def _import_cupy():
    """Import CuPy and check a device is present; remember why if not."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("CuPy found no CUDA device")
        _cupy = cupy
    except Exception as exc:  # ImportError, CUDA driver errors, ...
        _cupy_error = f"{type(exc).__name__}: {exc}"
    return _cupy


def gpu_available():
    """True when CuPy imports and sees at least one CUDA device."""
    return _import_cupy() is not None


def set_backend(name):
    """Select 'numpy', 'cupy' or 'auto' (the GPU when CuPy and a device exist).

    Raises ValueError for an unknown name and BackendUnavailableError (a ValueError
    and a RuntimeError) for 'cupy' where CuPy or a CUDA device is missing; the
    active backend is unchanged then.
    """
    global _name
    if not isinstance(name, str) or name.strip().lower() not in BACKENDS:
        raise ValueError(f"Unknown backend {name!r}; expected one of {', '.join(BACKENDS)}.")
    name = name.strip().lower()
    if name == "auto":
        name = "cupy" if gpu_available() else "numpy"
    elif name == "cupy" and not gpu_available():
        raise BackendUnavailableError(
            "Backend 'cupy' was requested but CuPy is not usable "
            f"({_cupy_error}). Install the GPU extra (pip install 'xpcnn[gpu]') "
            "on a machine with an NVIDIA GPU, or use set_backend('numpy')."
        )
    _name = name
    return _name


def backend_name():
    """The active backend: 'numpy' or 'cupy'."""
    return _name


def xp():
    """The active array module (numpy or cupy)."""
    return _cupy if _name == "cupy" else np


def get_array_module(x):
    """numpy or cupy, whichever owns array ``x`` (DeZero's get_array_module)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy
    return np


def is_gpu_array(x):
    return _cupy is not None and isinstance(x, _cupy.ndarray)


def floatx():
    """The default float dtype name, 'float32' unless set_floatx changed it."""
    return _floatx


def set_floatx(dtype):
    """Set the default float dtype: 'float32' or 'float64' (as keras.config)."""
    global _floatx
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in FLOATX:
        raise ValueError(f"Unknown floatx {dtype!r}; expected one of {', '.join(FLOATX)}.")
    _floatx = name


# -- policy: what the engine does differently per backend, decided here only ----------


def set_fusion(enabled):
    """Turn the fusion pass (engine/fusion.py) on or off; False runs every layer on its
    own (to compare, or to debug a layer). On by default."""
    global _fusion
    _fusion = bool(enabled)


def fusion_enabled():
    return _fusion


def keeps_training_data_on_device():
    """On the GPU the training set moves to the device once; batches are gathered there."""
    return _name == "cupy"


def sync_interval():
    """Training steps between reads of the loss and metrics on the host (each a device
    sync): every step on the CPU, every 50th on the GPU, whose queue must stay full."""
    return 1 if _name == "numpy" else 50


def training_chunk_bytes():
    """On the CPU a training batch goes forward and backward in pieces whose layer outputs
    take at most this many bytes, so they stay in the caches (the figures are in
    benchmarks/README.md); 0 (the GPU) keeps batches whole."""
    return _CPU_CHUNK_BYTES if _name == "numpy" else 0


_CPU_CHUNK_BYTES = 5 * 2**19
# Never fewer samples per piece: on large images, pieces of a few samples lose more to
# per-call overhead and thin products than the caches give back.
MIN_PIECE_SAMPLES = 8


def to_device(a, dtype=None):
    """Move a host array to the active backend (no copy on NumPy when possible)."""
    module = xp()
    if module is np:
        return to_numpy(a) if dtype is None else np.asarray(to_numpy(a), dtype=dtype)
    return module.asarray(a, dtype=dtype)


def to_numpy(a):
    """A NumPy array for any backend array (copies from the GPU)."""
    if is_gpu_array(a):
        return a.get()
    return np.asarray(a)


_elementwise_kernels = {}


def elementwise_kernel(name, source):
    """The CuPy ElementwiseKernel for ``source`` (in_params, out_params, body), compiled once.

    The kernel modules (engine/im2col.py, engine/maxpool.py, engine/special.py,
    engine/affine.py) keep their CUDA sources and get them compiled and cached here.
    """
    if name not in _elementwise_kernels:
        _elementwise_kernels[name] = _import_cupy().ElementwiseKernel(*source, name=name)
    return _elementwise_kernels[name]


def synchronize():
    """Wait for queued GPU work (a no-op on the CPU); needed for honest timings."""
    if _name == "cupy":
        _cupy.cuda.Device().synchronize()


def device_description():
    """A one-line description of where computation runs."""
    if _name == "cupy":
        props = _cupy.cuda.runtime.getDeviceProperties(_cupy.cuda.Device().id)
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"GPU {gpu} (CuPy {_cupy.__version__})"
    return f"CPU (NumPy {np.__version__}, {os.cpu_count()} cores)"


set_backend(os.environ.get("XPCNN_BACKEND", "auto"))
