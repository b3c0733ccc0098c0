"""The MPI job this process belongs to: init() joins it, the rest asks about it."""

import functools
import os
import sys

from engine import backend
from engine.distribute.data_parallel import DataParallel, is_agreed
from engine.distribute.device_communicator import GPU_COLLECTIVES

_current = None  # the DataParallel of a job with several processes, else None
_rank, _size, _local_rank = 0, 1, 0

# Set by the launchers in every process they start (Hydra: MPICH, Intel MPI; Open MPI).
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def init(comm=None, gpu_collectives="auto"):
    """Join the MPI job (``mpiexec -n 4 python train.py``): from here on fit and evaluate
    train and measure one model on all its processes. Returns the number of processes.

    Horovod's ``hvd.init()``, Keras's ``keras.distribution.initialize()`` and PyTorch's
    ``init_process_group()`` play this part. Call it once, after choosing the backend and
    before building the model (on the GPU each rank takes the device of its rank among the
    machine's ranks). Without mpiexec (and without mpi4py) it leaves the program a single
    process, so a script may always call it. ``comm``: an mpi4py communicator (default
    COMM_WORLD); ``gpu_collectives``: 'auto' (NCCL, else CUDA-aware MPI, else MPI through
    host copies), 'nccl', 'mpi' or 'host'.
    """
    global _current, _rank, _size, _local_rank
    if gpu_collectives not in GPU_COLLECTIVES:
        raise ValueError(
            f"gpu_collectives must be one of {', '.join(GPU_COLLECTIVES)}, got {gpu_collectives!r}."
        )
    try:
        from mpi4py import MPI
    except ImportError:
        launched = [v for v in _LAUNCHER_SIZE_VARIABLES if int(os.environ.get(v, "1") or 1) > 1]
        if launched:
            raise ImportError(
                f"engine.distribute.init: this process was started by an MPI launcher "
                f"({launched[0]}={os.environ[launched[0]]}) but mpi4py is not installed: "
                "pip install 'xpcnn[mpi]' (mpi4py and MPICH), or mpi4py built against "
                "your system MPI."
            ) from None
        return 1
    from engine.distribute.mpi_communicator import MPICommunicator

    host = MPICommunicator(MPI.COMM_WORLD if comm is None else comm)
    _rank, _size, _local_rank = host.rank, host.size, host.local_rank
    if backend.backend_name() == "cupy":
        cupy = backend.xp()
        cupy.cuda.Device(_local_rank % cupy.cuda.runtime.getDeviceCount()).use()
    _current = DataParallel(host, gpu_collectives) if _size > 1 else None
    if _current is not None:
        _install_excepthook(_current)
    return _size


def shutdown():
    """Leave distributed mode: this process trains on its own again (MPI stays up)."""
    global _current, _rank, _size, _local_rank
    _current, _rank, _size, _local_rank = None, 0, 1, 0
    if getattr(sys.excepthook, "xpcnn_previous", None) is not None:
        sys.excepthook = sys.excepthook.xpcnn_previous


def current():
    """The job's DataParallel when init() joined several processes, else None."""
    return _current


def rank():
    """This process's number in the job, 0 .. size() - 1 (0 without init)."""
    return _rank


def size():
    """How many processes train together (1 without init or mpiexec)."""
    return _size


def local_rank():
    """This process's number among those on its machine (it picks the GPU)."""
    return _local_rank


def is_chief():
    """True on rank 0, the process that prints progress and writes files."""
    return _rank == 0


def _install_excepthook(data_parallel):
    """An exception that ends the program on one rank ends the job: the others would wait
    for it in their next collective. An error every rank raised alike ends each normally
    (printed by rank 0 only)."""
    previous = getattr(sys.excepthook, "xpcnn_previous", sys.excepthook)

    def hook(kind, value, tb):
        if is_agreed(value):
            if data_parallel.is_chief:
                previous(kind, value, tb)
            return
        previous(kind, value, tb)
        print(
            f"xpcnn: rank {data_parallel.rank} of {data_parallel.size} ended with an "
            "uncaught exception; aborting the MPI job.",
            file=sys.stderr,
            flush=True,
        )
        data_parallel.host.abort(1)

    hook.xpcnn_previous = previous
    sys.excepthook = hook


def guarded(method):
    """Run ``method`` (fit, evaluate, ...); in a distributed run an exception that the
    ranks did not agree on aborts the job, as Horovod's elastic runs and mpi4py.run do."""

    @functools.wraps(method)
    def run(*args, **kwargs):
        data_parallel = current()
        if data_parallel is None:
            return method(*args, **kwargs)
        try:
            return method(*args, **kwargs)
        except BaseException as exc:
            if not is_agreed(exc):
                data_parallel.abort_with(exc)
            raise

    return run
