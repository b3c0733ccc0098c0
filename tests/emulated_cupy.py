"""A stand-in for CuPy that runs the engine's GPU code path on the CPU, for machines
without a GPU.

What it checks: everything the CuPy backend runs that is ours. The engine's CUDA
ElementwiseKernel sources (engine/im2col.py, engine/maxpool.py, engine/special.py,
engine/affine.py) are compiled with g++ as plain C++ loops (one iteration per CUDA
thread, ``i`` the thread's index, as CuPy numbers them) and called on the arrays; the
layers, losses, optimizers and the fit loop take their GPU branches (``xp`` is this
module, arrays are "device" arrays). Array functions are NumPy's, so it checks our use of
them, not CuPy's implementations.

Strict where CuPy is: mixing host (NumPy) arrays into device operations raises
TypeError; kernels check the dtype of every argument against their declaration.
What it cannot check: the CUDA compiler, launch configuration, cuBLAS, and CuPy
functions that NumPy has and CuPy lacks (the GPU run of the suite covers those).

``cuda.nccl`` is a stand-in for CuPy's NCCL bindings that carries out the same calls
(unique id, NcclCommunicator, allReduce, bcast on device pointers) over MPI on the
emulated device memory, so engine/distribute's NCCL path runs under mpiexec on a CPU.

    fake = EmulatedCupy()   # raises CompilerUnavailable without a C++ compiler
"""

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
import types
from pathlib import Path

import numpy as np

_CTYPES = {"float32": "float", "float64": "double", "int32": "int"}
_COMPILED_DIR = Path(tempfile.gettempdir()) / "xpcnn-emulated-cupy"


class CompilerUnavailable(RuntimeError):
    """No C++ compiler to build the kernels with."""


class DeviceArray(np.ndarray):
    """A NumPy array that plays a CuPy array: device operations refuse host arrays."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host_arrays(ufunc.__name__, inputs)
        if out is not None:
            _refuse_host_arrays(ufunc.__name__, out)
            kwargs["out"] = tuple(_host_view(o) for o in out)
        result = getattr(ufunc, method)(*map(_host_view, inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _to_device_view(result)

    def get(self):
        """The host copy, as cupy.ndarray.get()."""
        return np.array(self.view(np.ndarray))

    @property
    def data(self):
        """The device memory, as cupy.ndarray.data: a pointer whose .ptr is its address."""
        return types.SimpleNamespace(ptr=self.ctypes.data)


def _host_view(a):
    return a.view(np.ndarray) if isinstance(a, DeviceArray) else a


def _to_device_view(result):
    if isinstance(result, tuple):
        return tuple(map(_to_device_view, result))
    if isinstance(result, np.ndarray) and not isinstance(result, DeviceArray):
        return result.view(DeviceArray)
    return result


def _refuse_host_arrays(what, arrays):
    for a in arrays:
        if isinstance(a, np.ndarray) and not isinstance(a, DeviceArray) and a.ndim > 0:
            raise TypeError(
                f"{what}: a host (NumPy) array of shape {a.shape} was mixed into a device "
                "operation; CuPy refuses that (move it with backend.to_device first)."
            )


class _Device:
    id = 0

    def __init__(self, device=0):
        pass

    def synchronize(self):
        pass

    def use(self):
        pass


class _NcclStandIn(types.ModuleType):
    """cupy.cuda.nccl's calls that engine/distribute makes, done by MPI (mpi4py) on the
    memory behind the device pointers: NCCL's constants, one communicator per rank."""

    available = True
    NCCL_SUM = 0  # ncclSum
    NCCL_FLOAT32, NCCL_FLOAT64 = 7, 8  # ncclFloat32, ncclFloat64
    _CTYPES = {7: ctypes.c_float, 8: ctypes.c_double}

    def __init__(self):
        super().__init__("cupy.cuda.nccl")

    def get_unique_id(self):
        """128 random bytes as a tuple of ints, as NCCL's ncclUniqueId through CuPy."""
        return tuple(int(b) for b in np.random.default_rng().integers(0, 256, 128))

    def NcclCommunicator(self, ndev, comm_id, rank):  # noqa: N802 (CuPy's name)
        return _NcclCommunicator(self, ndev, comm_id, rank)


class _NcclCommunicator:
    def __init__(self, nccl, ndev, comm_id, rank):
        from mpi4py import MPI

        self.MPI, self.comm, self.nccl = MPI, MPI.COMM_WORLD, nccl
        ids = self.comm.allgather(tuple(comm_id))
        if len(set(ids)) != 1 or ndev != self.comm.Get_size() or rank != self.comm.Get_rank():
            raise RuntimeError(
                "NcclCommunicator: every rank needs the same unique id, ndev = the number "
                f"of ranks and its own rank; got ndev={ndev}, rank={rank}"
            )

    def _array(self, ptr, count, datatype):
        memory = (self.nccl._CTYPES[datatype] * count).from_address(ptr)
        return np.frombuffer(memory, dtype=np.dtype(self.nccl._CTYPES[datatype]))

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):  # noqa: N802
        if op != self.nccl.NCCL_SUM:
            raise NotImplementedError("the stand-in sums only")
        received = self._array(recvbuf, count, datatype)
        if sendbuf == recvbuf:
            self.comm.Allreduce(self.MPI.IN_PLACE, received, op=self.MPI.SUM)
        else:
            self.comm.Allreduce(self._array(sendbuf, count, datatype), received, op=self.MPI.SUM)

    def bcast(self, buff, count, datatype, root, stream):
        self.comm.Bcast(self._array(buff, count, datatype), root=root)


# Functions that copy host data to the device, as CuPy's do.
_TRANSFERS = {"asarray", "array", "asanyarray", "ascontiguousarray"}


class EmulatedCupy(types.ModuleType):
    """The parts of the cupy module the engine uses, on NumPy plus compiled kernels."""

    ndarray = DeviceArray
    __version__ = "emulated on the CPU"

    def __init__(self):
        super().__init__("cupy")
        self._compiler = shutil.which("g++") or shutil.which("c++")
        if self._compiler is None:
            raise CompilerUnavailable("no C++ compiler (g++ or c++) found on PATH")
        self.cuda = types.SimpleNamespace(
            Device=_Device,
            nccl=_NcclStandIn(),
            get_current_stream=lambda: types.SimpleNamespace(ptr=0),
            runtime=types.SimpleNamespace(
                getDeviceCount=lambda: 1,
                getDeviceProperties=lambda device: {"name": b"CuPy emulated on the CPU"},
            ),
        )

    def __getattr__(self, name):
        value = getattr(np, name)
        if not callable(value) or isinstance(value, type):
            return value  # dtypes, constants

        def device_function(*args, **kwargs):
            if name not in _TRANSFERS:
                _refuse_host_arrays(f"cupy.{name}", [*args, *kwargs.values()])
            out = kwargs.get("out")
            result = value(*map(_host_view, args), **{k: _host_view(v) for k, v in kwargs.items()})
            return out if out is not None else _to_device_view(result)

        return device_function

    def ElementwiseKernel(self, in_params, out_params, operation, name):  # noqa: N802 (CuPy's)
        return _Kernel(self._compiler, in_params, out_params, operation, name)


class _Kernel:
    """One ElementwiseKernel: raw array and scalar inputs, elementwise array outputs
    (the forms the engine's kernels use), one compiled C++ function per dtype of T."""

    def __init__(self, compiler, in_params, out_params, operation, name):
        self.compiler, self.operation, self.name = compiler, operation, name
        self.inputs = [_parse(p, output=False) for p in in_params.split(",")]
        self.outputs = [_parse(p, output=True) for p in out_params.split(",")]
        self._functions = {}

    def __call__(self, *args):
        params = self.inputs + self.outputs
        if len(args) != len(params):
            raise TypeError(f"{self.name}: {len(params)} arguments expected, got {len(args)}")
        arrays = [a for a, p in zip(args, params) if p["array"]]
        _refuse_host_arrays(self.name, arrays)
        t = next(a.dtype.name for a, p in zip(args, params) if p["type"] == "T")
        sizes = {a.size for a, p in zip(args, self.inputs + self.outputs) if p["output"]}
        if len(sizes) != 1:
            raise ValueError(f"{self.name}: outputs of different sizes {sorted(sizes)}")
        c_args = [ctypes.c_longlong(sizes.pop())]
        for a, p in zip(args, params):
            dtype = t if p["type"] == "T" else p["type"]
            if p["array"]:
                if a.dtype.name != dtype or not a.flags.c_contiguous:
                    raise TypeError(
                        f"{self.name}: argument {p['name']!r} must be a C-contiguous {dtype} "
                        f"array, got {a.dtype.name} (contiguous: {a.flags.c_contiguous})"
                    )
                c_args.append(ctypes.c_void_p(a.ctypes.data))
            elif dtype == "int32":
                if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
                    raise TypeError(f"{self.name}: scalar {p['name']!r} must be an int, got {a!r}")
                c_args.append(ctypes.c_int(int(a)))
            else:
                raise NotImplementedError(f"{self.name}: scalar of type {dtype}")
        self._function(t)(*c_args)
        outputs = [a for a, p in zip(args, params) if p["output"]]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _function(self, t):
        if t not in self._functions:
            source = self._source(_CTYPES[t])
            digest = hashlib.sha256(f"{self.compiler}\n{source}".encode()).hexdigest()[:16]
            library = _COMPILED_DIR / f"{self.name}-{digest}.so"
            if not library.exists():
                _COMPILED_DIR.mkdir(parents=True, exist_ok=True)
                cpp = library.with_suffix(".cpp")
                cpp.write_text(source)
                partial = library.with_suffix(f".{id(self)}.tmp")  # atomic: parallel runs
                subprocess.run(
                    [self.compiler, "-O1", "-shared", "-fPIC", "-o", str(partial), str(cpp)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                partial.replace(library)
            self._functions[t] = getattr(ctypes.CDLL(str(library)), self.name)
        return self._functions[t]

    def _source(self, t):
        declarations, bindings = ["long long size"], []
        for p in self.inputs + self.outputs:
            ctype = t if p["type"] == "T" else _CTYPES[p["type"]]
            if p["output"]:
                declarations.append(f"{ctype}* {p['name']}_")
                bindings.append(f"{ctype}& {p['name']} = {p['name']}_[i];")
            elif p["array"]:
                declarations.append(f"const {ctype}* {p['name']}")
            else:
                declarations.append(f"{ctype} {p['name']}")
        return (
            "#include <cmath>\n#include <cstddef>\n"
            f"typedef {t} T;\n"
            f'extern "C" void {self.name}({", ".join(declarations)}) {{\n'
            "  for (ptrdiff_t i = 0; i < size; ++i) {\n"
            f"    {' '.join(bindings)}\n{self.operation}\n  }}\n}}\n"
        )


def _parse(declaration, output):
    """'raw T x' / 'int32 h' / 'T y' -> what the kernel's argument is."""
    words = declaration.split()
    raw = words[0] == "raw"
    type_, name = words[-2], words[-1]
    if type_ not in ("T", *_CTYPES):
        raise NotImplementedError(f"parameter type {type_!r}")
    if output and raw:
        raise NotImplementedError("raw outputs")
    return {"name": name, "type": type_, "array": raw or output, "output": output}
