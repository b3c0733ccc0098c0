"""Collectives between the processes of an MPI job, through mpi4py on host arrays.

MPI is the proven engine underneath (MPICH from PyPI, or a system Open MPI / Intel MPI):
its Allreduce is a ring or a recursive-doubling reduction chosen by message size, as
Horovod and ChainerMN rely on. Buffers are NumPy arrays reduced in place.

    comm = MPICommunicator(MPI.COMM_WORLD)
    comm.allreduce_sum(buffer)        # every rank ends with the sum over ranks
    comm.broadcast(buffer, root=0)    # every rank ends with rank 0's values
"""


class MPICommunicator:
    def __init__(self, comm):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        # the ranks on this machine: the rank among them picks the GPU
        self.local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()

    def allreduce_sum(self, buffer):
        """Sum ``buffer`` (a contiguous array) over the ranks, in place."""
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        return buffer

    def iallreduce_sum(self, buffer):
        """Start summing ``buffer`` in place; returns the request to wait() on."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)

    def broadcast(self, buffer, root=0):
        """Give every rank ``root``'s values of ``buffer``, in place."""
        self.comm.Bcast(buffer, root=root)
        return buffer

    def broadcast_object(self, value, root=0):
        """``root``'s Python object (pickled), on every rank."""
        return self.comm.bcast(value, root=root)

    def allgather_object(self, value):
        """Every rank's object, as a list by rank."""
        return self.comm.allgather(value)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        """End every process of the job (mpiexec stops them all)."""
        self.comm.Abort(code)
