"""Where a training step's time goes: per layer forward and backward, loss, optimizer, rest.

Wraps the forward/backward of each step the model's plan runs (a layer, or a Conv2D and
its max pooling fused: layers/conv_pool.py), the loss and the optimizer of the tutorial network
with timers, trains ``--images`` real MNIST images through ``model.fit`` and prints
milliseconds per step for each part (the "rest" is fit's own loop: batching, metrics).

    PYTHONPATH=. .venv/bin/python benchmarks/profile_layers.py --batch 32 128
    PYTHONPATH=. .venv/bin/python benchmarks/profile_layers.py --with-bn-dropout
"""

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compare_torch import load_mnist  # noqa: E402
from tutorial import tutorial_model  # noqa: E402

from engine import backend  # noqa: E402


def _timed(fn, totals, key):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        backend.synchronize()
        totals[key] += time.perf_counter() - start
        return out

    return wrapper


def _one_run(x, y, batch, images, warmup, with_bn_dropout):
    model = tutorial_model(with_bn_dropout=with_bn_dropout)
    model.fit(x[:warmup], y[:warmup], batch_size=batch, epochs=1, verbose=0, seed=0)
    totals = defaultdict(float)
    # The steps fit runs: layers, or fused Conv2D + pooling pairs (layers/conv_pool.py).
    for i, step in enumerate(model._plan().steps):
        name = f"{i} {type(step.layer).__name__}"
        step.layer.forward = _timed(step.layer.forward, totals, f"{name} forward")
        step.layer.backward = _timed(step.layer.backward, totals, f"{name} backward")
    model.loss.value_and_gradient = _timed(model.loss.value_and_gradient, totals, "loss")
    model.optimizer.apply = _timed(model.optimizer.apply, totals, "optimizer (Adam)")
    start = time.perf_counter()
    model.fit(x[:images], y[:images], batch_size=batch, epochs=1, verbose=0, seed=1)
    total = time.perf_counter() - start
    totals["rest of fit"] = total - sum(totals.values())
    return total, totals


def profile(x, y, batch, images, repeats, with_bn_dropout=False, warmup=512):
    # The least disturbed of a few runs: other processes only ever add time.
    total, totals = min(
        (_one_run(x, y, batch, images, warmup, with_bn_dropout) for _ in range(repeats)),
        key=lambda run: run[0],
    )
    steps = -(-images // batch)
    print(f"\nbatch {batch}: {1000 * total / steps:.2f} ms/step, {images / total:.0f} images/s")
    for key, seconds in totals.items():
        print(f"  {key:<28} {1000 * seconds / steps:7.3f} ms  {100 * seconds / total:5.1f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--images", type=int, default=6400)
    parser.add_argument("--repeats", type=int, default=3, help="runs; the fastest is shown")
    parser.add_argument("--unfused", action="store_true", help="run every layer on its own")
    parser.add_argument(
        "--with-bn-dropout",
        action="store_true",
        help="BatchNormalization after each Conv2D, Dropout(0.5) before the last Dense",
    )
    parser.add_argument("--data", default=str(Path(__file__).parents[2] / "shared/data"))
    args = parser.parse_args()
    backend.set_backend("numpy")
    backend.set_fusion(not args.unfused)
    x, y = load_mnist(args.data)
    for batch in args.batch:
        profile(x, y, batch, args.images, args.repeats, args.with_bn_dropout)


if __name__ == "__main__":
    main()
