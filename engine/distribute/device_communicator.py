"""Collectives on device (CuPy) arrays: NCCL, CUDA-aware MPI, or MPI through host copies.

One GPU per rank (the rank among the machine's ranks picks it, engine.distribute.init).

    NCCLCommunicator(host)        NCCL's ring allreduce between GPUs (cupy.cuda.nccl); the
                                  unique id that joins the ranks goes over MPI from rank 0
    CudaAwareMPICommunicator(host)  MPI built with CUDA takes device buffers directly
    HostStagedCommunicator(host)  any MPI: device -> host, reduce, host -> device

NCCL calls are queued on the current CUDA stream, after the backward that produced the
gradients and before the optimizer step that reads them, so no device sync is added.
"""

import numpy as np

from engine import backend


class NCCLCommunicator:
    def __init__(self, host):
        cupy = backend.xp()
        self.cupy, self.nccl = cupy, cupy.cuda.nccl
        unique_id = host.broadcast_object(self.nccl.get_unique_id() if host.rank == 0 else None)
        self.comm = self.nccl.NcclCommunicator(host.size, unique_id, host.rank)
        self.types = {
            np.dtype("float32"): self.nccl.NCCL_FLOAT32,
            np.dtype("float64"): self.nccl.NCCL_FLOAT64,
        }

    def _stream(self):
        return self.cupy.cuda.get_current_stream().ptr

    def allreduce_sum(self, buffer):
        ptr = buffer.data.ptr
        dtype = self.types[buffer.dtype]
        self.comm.allReduce(ptr, ptr, buffer.size, dtype, self.nccl.NCCL_SUM, self._stream())
        return buffer

    def broadcast(self, buffer, root=0):
        dtype = self.types[buffer.dtype]
        self.comm.bcast(buffer.data.ptr, buffer.size, dtype, root, self._stream())
        return buffer


class CudaAwareMPICommunicator:
    """MPI on device buffers (an MPI built with CUDA support, via mpi4py's DLPack/CUDA
    array interface); MPI does not know CuPy's stream, so the queued work is waited for."""

    def __init__(self, host):
        self.host = host

    def allreduce_sum(self, buffer):
        backend.synchronize()
        return self.host.allreduce_sum(buffer)

    def broadcast(self, buffer, root=0):
        backend.synchronize()
        return self.host.broadcast(buffer, root)


class HostStagedCommunicator:
    """MPI on host copies of device buffers, where neither NCCL nor CUDA-aware MPI exists."""

    def __init__(self, host):
        self.host = host

    def allreduce_sum(self, buffer):
        buffer[...] = backend.to_device(self.host.allreduce_sum(backend.to_numpy(buffer)))
        return buffer

    def broadcast(self, buffer, root=0):
        buffer[...] = backend.to_device(self.host.broadcast(backend.to_numpy(buffer), root))
        return buffer


GPU_COLLECTIVES = ("auto", "nccl", "mpi", "host")


def device_communicator(host, choice):
    """The communicator for device arrays: ``choice`` one of GPU_COLLECTIVES ('auto': NCCL
    when CuPy has it, else CUDA-aware MPI when mpi4py reports it, else host copies)."""
    if choice == "auto":
        nccl = getattr(backend.xp().cuda, "nccl", None)
        if nccl is not None and getattr(nccl, "available", True):
            choice = "nccl"
        elif _cuda_aware(host):
            choice = "mpi"
        else:
            choice = "host"
    if choice == "nccl":
        return NCCLCommunicator(host)
    if choice == "mpi":
        return CudaAwareMPICommunicator(host)
    return HostStagedCommunicator(host)


def _cuda_aware(host):
    query = getattr(host.MPI, "Query_cuda_support", None)
    try:
        return bool(query and query())
    except Exception:  # an MPI without the MPIX extension
        return False
