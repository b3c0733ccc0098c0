"""The program tests/test_distribute.py starts under ``mpiexec -n P``: one scenario of a
data-parallel run, each rank writing what it saw into --out (rank-<r>.npz, text files).

    mpiexec -n 2 python tests/distributed_worker.py fit --out DIR [--backend cupy-emulated]

Scenarios: fit (weights, history, evaluate, the sample ids each rank stepped on), files
(ModelCheckpoint and CSVLogger: which rank wrote), resume (continue from a checkpoint),
step-error (one rank's shard makes its step raise), nan (a NaN in one shard), abort (an
exception on one rank outside any step), stop (Ctrl-C or stop_training on one rank),
batchnorm (per-rank or synchronized statistics), moments (sum_across_replicas).
"""

import argparse
import builtins
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402
import optim  # noqa: E402
from engine import Sequential, backend, distribute, utils  # noqa: E402
from engine.callbacks import Callback, CSVLogger, ModelCheckpoint  # noqa: E402
from layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D  # noqa: E402
from layers.base import Layer  # noqa: E402

SAMPLES, BATCH, EPOCHS, SEED = 45, 8, 3, 3  # 45 = 5 batches of 8 and one of 5: uneven shares
SENTINEL = -999.0  # a pixel value that makes FailOnSentinel raise


class Recording(Sequential):
    """A Sequential that notes the ids (pixel [0, 0]) of the samples of each step."""

    def train_step(self, data):
        self.seen.append(backend.to_numpy(data[0][0])[:, 0, 0, 0].copy())
        return super().train_step(data)


class FailOnSentinel(Layer):
    """The identity, raising ValueError on a batch holding the SENTINEL value."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, ctx):
        if bool((x == SENTINEL).any()):
            raise ValueError(f"a sample holds the value {SENTINEL} (bad data)")
        return x

    def backward(self, ctx, dy):
        return dy


def data(n=SAMPLES):
    rng = np.random.default_rng(1)
    x = rng.random((n, 6, 6, 1))
    y = (x[:, :3].mean(axis=(1, 2, 3)) * 5).astype(int) % 3
    x[:, 0, 0, 0] = np.arange(n) / 100  # the sample's id
    return x, y


def model(first_layers=(), kind=Recording, middle_layers=()):
    utils.set_random_seed(0)
    net = kind(
        [
            *first_layers,
            Conv2D(3, 3, activation="relu", input_shape=(6, 6, 1)),
            *middle_layers,
            MaxPooling2D(2),
            Flatten(),
            Dense(3),
        ]
    )
    net.seen = []
    net.compile(
        optimizer=optim.Adam(learning_rate=0.01),
        loss=engine.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return net


def flat_weights(net):
    return np.concatenate([w.ravel() for w in net.get_weights()])


def save(out, **arrays):
    np.savez(out / f"rank-{distribute.rank()}.npz", **arrays)


def scenario_fit(out, args):
    x, y = data()
    net = model()
    try:  # refused on every rank alike, not a hang nor an abort
        net.fit(x, y, batch_size=0)
    except ValueError as exc:
        refused = str(exc)
    history = net.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=EPOCHS,
        seed=SEED,
        verbose=2,
        validation_data=(x[:13], y[:13]),
    )
    evaluated = net.evaluate(x, y, batch_size=7, verbose=0)
    replicas = distribute.current()
    save(
        out,
        communicator=type(replicas.communicator()).__name__ if replicas else "none",
        refused=refused,
        weights=flat_weights(net),
        loss=history.history["loss"],
        val_loss=history.history["val_loss"],
        accuracy=history.history["accuracy"],
        evaluated=evaluated,
        seen=np.concatenate(net.seen),
        seen_counts=[len(s) for s in net.seen],
    )


def record_writes(out):
    """Note every file this rank opens for writing or renames into place (atomic saves)."""
    log = []
    real_open, real_replace = builtins.open, os.replace

    def open_(file, mode="r", *rest, **kwargs):
        if any(c in mode for c in "wax"):
            log.append(os.fspath(file))
        return real_open(file, mode, *rest, **kwargs)

    def replace(src, dst, *rest, **kwargs):
        log.append(os.fspath(dst))
        return real_replace(src, dst, *rest, **kwargs)

    builtins.open, os.replace = open_, replace
    return log, real_open


def scenario_files(out, args):
    x, y = data()
    net = model(kind=Sequential)  # a class load_model knows
    log, real_open = record_writes(out)
    checkpoint = str(out / "ckpt-{epoch}.npz")
    net.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=2,
        seed=SEED,
        verbose=0,
        callbacks=[ModelCheckpoint(checkpoint, monitor="loss"), CSVLogger(str(out / "log.csv"))],
    )
    loaded = engine.load_model(str(out / "ckpt-2.npz"))  # every rank reads rank 0's file
    same = bool(np.array_equal(loaded.predict(x, verbose=0), net.predict(x, verbose=0)))
    with real_open(out / f"writes-{distribute.rank()}.json", "w") as f:
        json.dump({"writes": log, "loaded_equal": same}, f)


def scenario_resume(out, args):
    """Continue the 'files' run's checkpoint after epoch 1 up to epoch 2."""
    x, y = data()
    net = engine.load_model(args.checkpoint)
    net.fit(x, y, batch_size=BATCH, epochs=2, initial_epoch=1, seed=SEED, verbose=0)
    save(out, weights=flat_weights(net))


def scenario_step_error(out, args):
    x, y = data()
    x[41, 3, 3, 0] = SENTINEL  # in one rank's share of a batch of the first epoch
    net = model([FailOnSentinel(input_shape=(6, 6, 1))])
    try:
        net.fit(x, y, batch_size=BATCH, epochs=EPOCHS, seed=SEED, verbose=0)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
    else:
        message = "no error"
    (out / f"error-{distribute.rank()}.txt").write_text(message)
    save(out, weights=flat_weights(net))


def scenario_nan(out, args):
    x, y = data()
    x[41, 3, 3, 0] = np.nan
    net = model()
    try:
        net.fit(x, y, batch_size=BATCH, epochs=EPOCHS, seed=SEED, verbose=0)
    except engine.NonFiniteLossError as exc:
        message = f"{type(exc).__name__}: {exc}"
    else:
        message = "no error"
    (out / f"error-{distribute.rank()}.txt").write_text(message)
    save(out, weights=flat_weights(net), iterations=net.optimizer.iterations)


class FailOnRankOne(Callback):
    def on_epoch_end(self, epoch, logs=None):
        if distribute.rank() == 1:
            raise OSError("rank 1 cannot write its report (disk full)")


def scenario_abort(out, args):
    x, y = data()
    net = model()
    net.fit(x, y, batch_size=BATCH, epochs=50, seed=SEED, verbose=0, callbacks=[FailOnRankOne()])
    (out / f"finished-{distribute.rank()}.txt").write_text("the job was not aborted")


class StopOnOneRank(Callback):
    """At step 3 of epoch 1, on rank 1 only: Ctrl-C (SIGINT to itself), or stop_training."""

    def __init__(self, how):
        self.how = how

    def on_train_batch_end(self, batch, logs=None):
        if distribute.rank() != 1 or batch != 2 or self.model.optimizer.iterations > 3:
            return
        if self.how == "interrupt":
            os.kill(os.getpid(), signal.SIGINT)
        else:
            self.model.stop_training = True


def scenario_stop(out, args):
    """A Ctrl-C or a stop_training on one rank stops every rank after the same step."""
    x, y = data()
    net = model()
    callbacks = [StopOnOneRank(args.how)]
    history = net.fit(
        x, y, batch_size=BATCH, epochs=EPOCHS, seed=SEED, verbose=0, callbacks=callbacks
    )
    save(
        out,
        weights=flat_weights(net),
        iterations=net.optimizer.iterations,
        epochs=len(history.history["loss"]),
    )


def scenario_batchnorm(out, args):
    """BatchNormalization with per-rank statistics, or synchronized over the ranks."""
    x, y = data()
    net = model(middle_layers=[BatchNormalization(synchronized=args.synchronized == "yes")])
    try:
        net.fit(x, y, batch_size=args.batch, epochs=EPOCHS, seed=SEED, verbose=0)
        message = "no error"
    except ValueError as exc:
        message = str(exc)
    (out / f"error-{distribute.rank()}.txt").write_text(message)
    save(out, weights=flat_weights(net))


def scenario_moments(out, args):
    """Batch-normalization moments over the global batch from each rank's rows."""
    rows = np.random.default_rng(5).normal(3.0, 2.0, (37, 4))
    mine = rows[distribute.shard_slice(len(rows), distribute.rank(), distribute.size())]
    xp = backend.xp()
    local = xp.asarray(mine)
    sums = [local.sum(axis=0), xp.asarray([float(len(mine))])]
    distribute.sum_across_replicas(sums)
    mean = sums[0] / sums[1]
    squares = [((local - mean) ** 2).sum(axis=0)]
    distribute.sum_across_replicas(squares)
    var = squares[0] / sums[1]
    save(out, mean=backend.to_numpy(mean), var=backend.to_numpy(var), rows=rows)


def use_backend(name):
    if name == "cupy-emulated":
        from tests import emulated_cupy

        backend._cupy = emulated_cupy.EmulatedCupy()
        backend._cupy_error = None
        backend._elementwise_kernels = {}
        name = "cupy"
    backend.set_backend(name)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--gpu-collectives", default="auto")
    parser.add_argument("--checkpoint")
    parser.add_argument("--how", default="interrupt")
    parser.add_argument("--synchronized", default="no")
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    use_backend(args.backend)
    backend.set_floatx("float64")
    distribute.init(gpu_collectives=args.gpu_collectives)
    globals()[f"scenario_{args.scenario.replace('-', '_')}"](args.out, args)


if __name__ == "__main__":
    main()
