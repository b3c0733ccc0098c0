"""DataParallel: what fit, evaluate and the callbacks ask of the ranks of one MPI job.

Every rank holds the whole model (Horovod's and PyTorch DDP's data parallelism):

    broadcast_state(model, seed)   rank 0's weights, optimizer state and seed to every rank
    sum_gradients(grads, weights)  one allreduce of one flat buffer per step; the buffer
                                   carries a status (a rank failed, Ctrl-C was pressed), so
                                   errors are agreed before the step is applied
    reduced_logs(model, logs)      the metrics' totals and counts summed over the ranks
    agreement(where)               a block whose error, on any rank, is raised on every rank
    on_chief(write)                rank 0 writes a file; every rank goes on once it is there

An exception that leaves fit on one rank only (outside these agreements) would leave the
others waiting in a collective: world.guarded prints it and aborts the whole job instead.
"""

import contextlib
import copy
import sys
import traceback

import numpy as np

from engine import backend
from engine.distribute.device_communicator import device_communicator


class RankError(RuntimeError):
    """Another rank of the job failed; the message names the rank and its error."""


def mark_agreed(error):
    """Flag ``error`` as raised on every rank alike (no need to abort the job for it)."""
    error.xpcnn_agreed = True
    return error


def is_agreed(error):
    return getattr(error, "xpcnn_agreed", False)


class DataParallel:
    def __init__(self, host, gpu_collectives="auto"):
        self.host = host
        self.rank, self.size = host.rank, host.size
        self.gpu_collectives = gpu_collectives
        self._device = None
        self._buffers = {}
        self.interrupt = None  # fit's Ctrl-C flag (this rank's) while fit runs
        self.interrupted = False  # agreed at the last step: some rank saw Ctrl-C

    @property
    def is_chief(self):
        return self.rank == 0

    def communicator(self):
        """The communicator for arrays of the active backend."""
        if backend.backend_name() == "numpy":
            return self.host
        if self._device is None:
            self._device = device_communicator(self.host, self.gpu_collectives)
        return self._device

    # -- agreeing on errors ----------------------------------------------------------

    def agree(self, error, where=""):
        """Return when no rank has an error; else raise on every rank: a failing rank its
        own ``error``, the others a RankError with the first failing rank's message."""
        described = None if error is None else f"{type(error).__name__}: {error}"
        messages = self.host.allgather_object(described)
        failed = [r for r, message in enumerate(messages) if message is not None]
        if not failed:
            return
        if error is not None:
            raise mark_agreed(error)
        first = failed[0]
        others = f" (ranks {failed[1:]} failed too)" if len(failed) > 1 else ""
        raise mark_agreed(
            RankError(f"rank {first} of {self.size} failed{where}: {messages[first]}{others}")
        )

    @contextlib.contextmanager
    def agreement(self, where=""):
        """Run the block on every rank; an Exception in it on any rank is raised on all."""
        try:
            yield
        except Exception as exc:
            self.agree(exc, where)
            raise
        self.agree(None, where)

    def on_chief(self, write):
        """Call ``write()`` on rank 0 only; every rank returns once it has (so the file is
        there for all of them), and raises its error if it failed."""
        error = None
        if self.is_chief:
            try:
                write()
            except Exception as exc:
                error = exc
        self.agree(error, " writing a file on rank 0")

    def agree_any(self, flag):
        """True on every rank when ``flag`` is true on any (a tiny host allreduce)."""
        return self.agree_flags([flag])[0]

    def agree_flags(self, flags):
        """Each flag true on every rank when it is true on any (one tiny host allreduce)."""
        summed = self.host.allreduce_sum(np.array([float(bool(f)) for f in flags]))
        return [bool(v) for v in summed]

    # -- the state every rank starts from ----------------------------------------------

    def broadcast_state(self, model, seed):
        """Rank 0's weights, optimizer slots and step count on every rank; rank 0's seed."""
        arrays = model._state_arrays()
        iterations = model.optimizer.iterations if model.optimizer is not None else 0
        layout = [(tuple(a.shape), a.dtype.str) for a in arrays]
        root_layout, iterations, seed = self.host.broadcast_object((layout, iterations, seed))
        error = None
        if root_layout != layout:
            error = ValueError(
                f"rank {self.rank} holds {len(layout)} weight and optimizer arrays that do "
                f"not match rank 0's {len(root_layout)} (shapes or dtypes differ): every "
                "rank must build the same model and load the same checkpoint."
            )
        self.agree(error, " before training")
        if arrays:
            buffer = self._flat(arrays)
            self.communicator().broadcast(buffer)
            self._unflatten(buffer, arrays, into=True)
        if model.optimizer is not None:
            model.optimizer.iterations = iterations
        return seed

    # -- a training step -----------------------------------------------------------------

    def sum_gradients(self, grads, weights, error, where="", averaged=()):
        """The gradients summed over the ranks (views of one flat buffer, valid until the
        next call). ``grads`` are this rank's share (scaled by its part of the global batch),
        or None when ``error`` (this rank's exception in the step) is set: then every rank
        raises (agree). Ctrl-C on any rank sets ``interrupted`` on all. ``averaged``:
        arrays (moving statistics) set to their mean over the ranks, in the same buffer."""
        comm = self.communicator()
        weights = [*weights, *averaged]
        grads = None if grads is None else [*grads, *averaged]
        total = sum(w.size for w in weights)
        in_buffer = comm is self.host  # on the CPU the status rides in the gradient buffer
        key = (backend.backend_name(), weights[0].dtype.str, total)
        buffer = self._buffers.get(key)
        if buffer is None:
            xp = backend.xp()
            buffer = self._buffers[key] = xp.empty(total + 2 * in_buffer, weights[0].dtype)
        if error is None:
            backend.xp().concatenate([g.reshape(-1) for g in grads], out=buffer[:total])
        else:
            buffer[:total] = 0
        interrupted = self.interrupt is not None and self.interrupt.raised
        if in_buffer:
            buffer[total:] = (error is not None, interrupted)
            comm.allreduce_sum(buffer)
            status = buffer[total:]
        else:
            comm.allreduce_sum(buffer[:total])
            status = self.host.allreduce_sum(np.array([error is not None, interrupted], float))
        failed, self.interrupted = bool(status[0]), bool(status[1])
        if failed:
            self.agree(error, where)
        parts = self._unflatten(buffer, weights)
        for a, part in zip(averaged, parts[len(parts) - len(averaged) :]):
            a[...] = part / self.size
        return parts[: len(parts) - len(averaged)]

    # -- logs --------------------------------------------------------------------------

    def reduced_logs(self, model, logs):
        """The logs as floats, each metric's from its totals and counts summed over the
        ranks (one small allreduce); values that no metric object holds stay this rank's."""
        metrics = [t for t in model._trackers]
        metrics += model.compiled_metrics.metrics if model.compiled_metrics else []
        names = [*(t.name for t in model._trackers), *model.compiled_metrics.names]
        states = [_state(m) for m in metrics]
        values = [
            backend.to_numpy(v).astype(np.float64).ravel() for s in states for v in s.values()
        ]
        summed = self.host.allreduce_sum(np.concatenate(values)) if values else np.zeros(0)
        results, at = {}, 0
        for name, metric, state in zip(names, metrics, states):
            twin = copy.copy(metric)
            for attribute, value in state.items():
                part = summed[at : at + value.size].reshape(value.shape)
                setattr(twin, attribute, backend.to_device(part.astype(value.dtype)))
                at += value.size
            results[name] = float(backend.to_numpy(twin.result()))
        keys = list(logs) or names
        return {k: results[k] if k in results else float(backend.to_numpy(logs[k])) for k in keys}

    # -- flat buffers ----------------------------------------------------------------------

    def _flat(self, arrays):
        xp = backend.xp()
        return xp.concatenate([a.reshape(-1) for a in arrays]).astype(arrays[0].dtype)

    def _unflatten(self, buffer, like, into=False):
        parts, at = [], 0
        for a in like:
            part = buffer[at : at + a.size].reshape(a.shape)
            if into:
                a[...] = part
            parts.append(part)
            at += a.size
        return parts

    # -- aborting ------------------------------------------------------------------------

    def abort_with(self, error):
        """Print this rank's error and end the whole job (the other ranks may be waiting
        in a collective this rank will never reach)."""
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        print(
            f"xpcnn: rank {self.rank} of {self.size} failed outside a step the ranks agree "
            f"on; aborting the MPI job.\n{text}",
            file=sys.stderr,
            flush=True,
        )
        self.host.abort(1)


def moving_statistics(model):
    """The arrays a training forward changes on each rank on its own: the declared
    non-trainable weights (BatchNormalization's moving statistics) of trainable layers
    that do not synchronize, nested models included."""
    found, seen = [], set()
    for layer in model._own_layers():
        if hasattr(layer, "_own_layers"):
            arrays = moving_statistics(layer) if layer.trainable else []
        elif layer.trainable and not getattr(layer, "synchronized", False):
            # in params' order: the same on every rank (a set's order is not)
            arrays = [a for name, a in layer.params.items() if name in layer._non_trainable]
        else:
            arrays = []
        for a in arrays:
            if id(a) not in seen:
                seen.add(id(a))
                found.append(a)
    return found


def synchronizes(model):
    """True when a layer of the model (nested ones too) synchronizes across the ranks."""
    for layer in model._own_layers():
        nested = hasattr(layer, "_own_layers")
        if synchronizes(layer) if nested else getattr(layer, "synchronized", False):
            return True
    return False


def _state(metric):
    """The arrays a metric object keeps (Mean: total and count; Precision: the counts)."""
    return {
        k: v
        for k, v in vars(metric).items()
        if isinstance(v, np.ndarray) or backend.is_gpu_array(v)
    }
