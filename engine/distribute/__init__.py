"""Data-parallel training on several processes, cores, machines or GPUs, over MPI.

The same program runs on every process (``mpiexec -n 4 python train.py``) and opts in
with one call, as with Horovod's ``hvd.init()``:

    import engine
    engine.distribute.init()              # after set_backend, before building the model
    model = build_model()
    model.compile(...)
    model.fit(x, y, batch_size=128)       # 128 is the global batch: 32 per process

What fit then does (PyTorch DDP's and Keras's DataParallel conventions):
    - every rank starts from rank 0's weights, optimizer state and seed (a broadcast);
    - each global batch (the shuffle depends only on (seed, epoch)) is split into
      disjoint contiguous shares, one per rank (engine/distribute/sharding.py);
    - each rank's gradient is scaled by its share of the global batch, and one allreduce
      of one flat buffer sums them: every rank applies the global batch's mean gradient
      and holds the same weights after every step;
    - the loss and metrics are reduced across ranks from their totals and counts,
      validation and evaluate are sharded the same way; predict runs whole on each rank;
    - only rank 0 prints progress and writes files (ModelCheckpoint, CSVLogger); every
      rank goes on once the file is written, so every rank can load it;
    - an error on one rank (an exception in its step, a bad shard) stops every rank with
      that error, agreed in the step's allreduce; a NaN rolls every rank back alike; an
      exception outside the agreed steps on one rank aborts the job, printing it.
    - random layers (Dropout, augmentation) draw from (seed, epoch, step, rank).

BatchNormalization normalises with per-rank statistics (as DDP), its moving statistics
averaged over the ranks at every step; with ``synchronized=True`` it takes the global
batch's, through ``sum_across_replicas`` and ``global_count``.

On the GPU (CuPy backend) each rank takes one device and the gradients are summed on the
devices through NCCL (cupy.cuda.nccl; its unique id goes over MPI), or CUDA-aware MPI, or
MPI through host copies (init's ``gpu_collectives``). Install with
``pip install 'xpcnn[mpi]'`` (mpi4py and MPICH) or mpi4py built against a system MPI.

Several machines: the same environment, code and data on each (or a shared file system,
which also lets every rank load rank 0's checkpoints), ssh between them without a
password, and a host file naming them: ``mpiexec -f hosts -n 8 python train.py`` with
MPICH (lines ``node1:4``), ``mpirun --hostfile hosts -np 8 python train.py`` with Open
MPI (lines ``node1 slots=4``).
"""

import numpy as np

from engine.distribute.data_parallel import (
    DataParallel,
    RankError,
    mark_agreed,
    moving_statistics,
    synchronizes,
)
from engine.distribute.sharding import ShardedBatches, shard_batch, shard_slice
from engine.distribute.world import (
    current,
    guarded,
    init,
    is_chief,
    local_rank,
    rank,
    shutdown,
    size,
)


def print_on_chief(*args, **kwargs):
    """print, on rank 0 only (every process in a single-process run)."""
    if is_chief():
        print(*args, **kwargs)


def on_chief(write):
    """Call ``write()`` on rank 0 only (it writes a file). Distributed, every rank returns
    once rank 0 has, so the file is there for all of them, and all raise rank 0's error
    if it failed. In one process it is just ``write()``."""
    replicas = current()
    if replicas is None:
        return write()
    replicas.on_chief(write)


def global_count(n):
    """The sum of the int ``n`` over the ranks (a host allreduce); ``n`` in one process."""
    replicas = current()
    if replicas is None:
        return n
    return int(replicas.host.allreduce_sum(np.array([float(n)]))[0])


def sum_across_replicas(arrays):
    """Sum small arrays of the active backend over the ranks, in place (one allreduce):
    the hook for statistics that must span the global batch, such as synchronized batch
    normalization's sums. A no-op in a single process. Every rank must call it alike."""
    data_parallel = current()
    if data_parallel is None or not arrays:
        return arrays
    buffer = data_parallel._flat(arrays)
    data_parallel.communicator().allreduce_sum(buffer)
    data_parallel._unflatten(buffer, arrays, into=True)
    return arrays


__all__ = [
    "DataParallel",
    "RankError",
    "ShardedBatches",
    "current",
    "global_count",
    "guarded",
    "init",
    "is_chief",
    "local_rank",
    "mark_agreed",
    "moving_statistics",
    "on_chief",
    "print_on_chief",
    "rank",
    "shard_batch",
    "shard_slice",
    "shutdown",
    "size",
    "sum_across_replicas",
    "synchronizes",
]
