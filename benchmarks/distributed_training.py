"""Data-parallel training speed (engine/distribute over MPI) on this machine.

    OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 python benchmarks/distributed_training.py
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 mpiexec -n 2 python benchmarks/distributed_training.py
    ... mpiexec -n 2 python benchmarks/distributed_training.py --overlap

fit on the first --images MNIST training images, global batch --batch, the tutorial
network (float32, Adam), after a warm-up; rank 0 prints images/s, ms per step, and the ms
per step spent in the collectives: the gradient allreduce (with its status) and the small
ones (the metrics' totals, the stop flag). --overlap sends each layer's gradients as
soon as its backward has produced them (non-blocking Iallreduce, one bucket per layer, as
PyTorch DDP's buckets) and waits for them all at the end of backward, instead of one
allreduce of the flat buffer after backward: the comparison of the two. The time in
sum_gradients includes waiting for the slower rank; "allreduce alone" times 100
allreduces of the same flat buffer with the ranks lined up (a barrier before).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tutorial import DATA_DIR, tutorial_model  # noqa: E402
from engine import backend, distribute  # noqa: E402
from engine.datasets import mnist  # noqa: E402


class Clock:
    """Time spent inside some methods of an object, per method name."""

    def __init__(self):
        self.seconds = {}

    def wrap(self, owner, name):
        method = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)


class LayerBuckets:
    """Each layer's weight gradients sent (Iallreduce) as soon as its backward returns;
    sum_gradients then only waits for them. Valid for a batch that runs as one piece."""

    def __init__(self, model, replicas):
        from mpi4py import MPI

        self.MPI, self.comm = MPI, replicas.host.comm
        weights = model._trained_weights()
        self.position = {id(w): i for i, w in enumerate(weights)}
        self.buckets = [np.empty(w.size, w.dtype) for w in weights]
        self.requests = []
        for step in model._plan().steps:
            if step.needs_weight_grads:
                step.layer.backward = self._sending(step.layer, step.layer.backward)
        replicas.sum_gradients = self.sum_gradients

    def _sending(self, layer, backward):
        def run(ctx, dy):
            dx = backward(ctx, dy)
            for name, g in ctx.grads.items():
                bucket = self.buckets[self.position[id(layer.params[name])]]
                bucket[...] = g.reshape(-1)
                self.requests.append(
                    self.comm.Iallreduce(self.MPI.IN_PLACE, bucket, op=self.MPI.SUM)
                )
            self.MPI.Request.Testall(self.requests)  # lets MPICH progress the sends
            return dx

        return run

    def sum_gradients(self, grads, weights, error, where="", averaged=()):
        self.MPI.Request.Waitall(self.requests)
        self.requests.clear()
        status = np.array([error is not None, 0.0])
        self.comm.Allreduce(self.MPI.IN_PLACE, status, op=self.MPI.SUM)
        return [b.reshape(w.shape) for b, w in zip(self.buckets, weights)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=6400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--overlap", action="store_true")
    args = parser.parse_args()
    backend.set_backend("numpy")
    distribute.init()
    (x, y), _ = mnist.load_data(DATA_DIR)
    x = (x[: args.images].reshape(-1, 28, 28, 1) / np.float32(255)).astype(np.float32)
    y = y[: args.images]
    model = tutorial_model()
    model.fit(x, y, batch_size=args.batch, epochs=1, steps_per_epoch=20, verbose=0, seed=1)
    replicas = distribute.current()
    clock = Clock()
    if replicas is not None:
        if args.overlap:
            LayerBuckets(model, replicas)
        for name in ("sum_gradients", "reduced_logs", "agree_any"):
            clock.wrap(replicas, name)
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0, seed=2)
    seconds = time.perf_counter() - start
    steps = -(-len(x) // args.batch)
    per_step = {k: 1e3 * v / steps for k, v in clock.seconds.items()}
    mode = "layer buckets (Iallreduce)" if args.overlap else "one flat allreduce"
    if replicas is not None:
        per_step["allreduce alone"] = 1e3 * allreduce_seconds(replicas, model)
    distribute.print_on_chief(
        f"{distribute.size()} process(es), batch {args.batch}, {mode}: "
        f"{len(x) / seconds:.0f} images/s, {1e3 * seconds / steps:.2f} ms/step; "
        + ", ".join(f"{k} {v:.3f} ms" for k, v in per_step.items())
    )


def allreduce_seconds(replicas, model, rounds=100):
    """Seconds per allreduce of the flat gradient buffer (and its status), ranks in step."""
    size = sum(w.size for w in model._trained_weights()) + 2
    buffer = np.zeros(size, np.float32)
    replicas.host.barrier()
    start = time.perf_counter()
    for _ in range(rounds):
        replicas.host.allreduce_sum(buffer)
    return (time.perf_counter() - start) / rounds


if __name__ == "__main__":
    main()
