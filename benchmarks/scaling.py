"""How the cost of a training step grows: batch size 8 to 1024 at 28x28, and image size 28, 56
and 112 at batch 32, xpcnn beside PyTorch, with the FLOP-rate limit as a line.

The tutorial network (benchmarks/tutorial.py; for larger images its Dense layer takes the
larger flattened map) trains with Adam on real MNIST, the larger images made by repeating each
pixel. A point is the time per step of the whole fit loop (ours: ``model.fit``, verbose=0;
PyTorch: zero_grad / forward / backward / step) after a warm-up, in steps enough for about a
second. Each framework sweeps in a process of its own, the two alternating, and the fastest of
``--repeats`` sweeps counts per point. The limit line is the step's matrix-product FLOPs (the
forward products and both backward ones, but the first layer's input gradient) over the
float32 product rate NumPy reaches on a large square product on the same machine.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. .venv/bin/python \
        benchmarks/scaling.py --repeats 3 --png benchmarks/scaling.png

PyTorch is a benchmark-only tool (pip install torch), never a dependency of the engine.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_torch import THREADS, load_mnist  # noqa: E402
from tutorial import DATA_DIR, torch_tutorial, tutorial_model  # noqa: E402

BATCHES = (8, 16, 32, 64, 128, 256, 512, 1024)
SIZES = (28, 56, 112)
SIZE_BATCH = 32
SECONDS_PER_POINT = 1.0


def points():
    """(batch, image size) of every point: the batch sweep, then the image-size sweep."""
    return [(b, 28) for b in BATCHES] + [(SIZE_BATCH, s) for s in SIZES if s != 28]


def training_flops(batch, size):
    """Matrix-product FLOPs of one training step of the tutorial network."""
    side, macs = size, []
    for cin, cout in ((1, 32), (32, 64)):  # valid 3x3 convolution, then 2x2 pooling
        side -= 2
        macs.append(side * side * 9 * cin * cout)
        side //= 2
    macs += [side * side * 64 * 64, 64 * 10]  # Dense(64), Dense(10)
    per_image = 2 * (2 * macs[0] + 3 * sum(macs[1:]))  # no input gradient for the first layer
    return batch * per_image


def product_rate():
    """FLOP/s of NumPy's float32 product on a large square matrix, the best of a few."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    np.matmul(a, a)
    best = min(_seconds(lambda: np.matmul(a, a)) for _ in range(5))
    return 2 * 2048**3 / best


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _images(x, size, count):
    """The first ``count`` images, enlarged to ``size`` by repeating pixels."""
    x = x[:count]
    factor = size // 28
    return np.ascontiguousarray(x.repeat(factor, axis=1).repeat(factor, axis=2))


def _seconds_per_step(fit, available):
    """Seconds per step of ``fit(steps, seed)`` (which returns its seconds): a warm-up (buffers
    allocated, caches filled), a short run to size the timed one to about a second."""
    fit(2, 0)
    estimate = fit(3, 1) / 3
    steps = int(np.clip(SECONDS_PER_POINT / estimate, 3, available))
    return fit(steps, 2) / steps


def ours_seconds_per_step(x, y, batch, size):
    model = tutorial_model(image_size=size)

    def fit(steps, seed):
        n = steps * batch
        return _seconds(
            lambda: model.fit(x[:n], y[:n], batch_size=batch, epochs=1, verbose=0, seed=seed)
        )

    return _seconds_per_step(fit, len(x) // batch)


def torch_seconds_per_step(torch, x, y, batch, size):
    model, optimizer, loss_fn = torch_tutorial(torch, image_size=size)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y)

    def fit(steps, seed):
        order = torch.randperm(steps * batch, generator=torch.Generator().manual_seed(seed))
        start = time.perf_counter()
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            optimizer.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            optimizer.step()
        return time.perf_counter() - start

    return _seconds_per_step(fit, len(x) // batch)


def worker(framework, data):
    x, y = load_mnist(data)
    result = {}
    if framework == "torch":
        import torch

        torch.set_num_threads(THREADS)
    else:
        result["product_rate"] = product_rate()
    for batch, size in points():
        images = x if size == 28 else _images(x, size, 40 * batch)
        if framework == "torch":
            seconds = torch_seconds_per_step(torch, images, y[: len(images)], batch, size)
        else:
            seconds = ours_seconds_per_step(images, y[: len(images)], batch, size)
        result[f"{batch}x{size}"] = seconds
    print(json.dumps(result))


def sweep(framework, data):
    command = [sys.executable, __file__, "--worker", framework, "--data", data]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def plot(best, rate, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_batch, by_size) = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, keys, xs, label in (
        (by_batch, [(b, 28) for b in BATCHES], BATCHES, "batch size (28x28 images)"),
        (by_size, [(SIZE_BATCH, s) for s in SIZES], SIZES, f"image side (batch {SIZE_BATCH})"),
    ):
        for framework, style in (("xpcnn", "o-"), ("torch", "s-")):
            if framework in best:
                ms = [1e3 * best[framework][f"{b}x{s}"] for b, s in keys]
                axis.plot(
                    xs, ms, style, label="PyTorch 2.13 (CPU)" if framework == "torch" else framework
                )
        limit = [1e3 * training_flops(b, s) / rate for b, s in keys]
        axis.plot(xs, limit, "k--", label=f"FLOP-rate limit ({rate / 1e9:.0f} GFLOP/s)")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(xs, [str(v) for v in xs])
        axis.set_xlabel(label)
        axis.set_ylabel("ms per training step")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.suptitle("The tutorial network, one training step (Adam), 2 threads")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="sweeps per framework; best counts")
    parser.add_argument("--data", default=DATA_DIR)
    parser.add_argument("--no-torch", action="store_true", help="measure xpcnn only")
    parser.add_argument("--png", help="write the figure here")
    parser.add_argument("--json", help="write the times per step here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.data)
        return

    frameworks = ("xpcnn",) if args.no_torch else ("xpcnn", "torch")
    sweeps = {name: [] for name in frameworks}
    for _ in range(args.repeats):
        for name in frameworks:
            sweeps[name].append(sweep(name, args.data))
    rate = max(s["product_rate"] for s in sweeps["xpcnn"])
    best = {
        name: {key: min(s[key] for s in runs) for key in runs[0] if key != "product_rate"}
        for name, runs in sweeps.items()
    }
    print(f"float32 product rate: {rate / 1e9:.0f} GFLOP/s")
    print(
        f"{'batch':>5} {'image':>5} | {'xpcnn ms':>9} | {'torch ms':>9} | {'torch/xpcnn':>11} | "
        f"{'limit ms':>8} | {'xpcnn GFLOP/s':>13}"
    )
    for batch, size in points():
        key = f"{batch}x{size}"
        ours = best["xpcnn"][key]
        theirs = best.get("torch", {}).get(key, float("nan"))
        flops = training_flops(batch, size)
        print(
            f"{batch:>5} {size:>5} | {1e3 * ours:>9.2f} | {1e3 * theirs:>9.2f} | "
            f"{theirs / ours:>10.2f}x | {1e3 * flops / rate:>8.2f} | {flops / ours / 1e9:>13.0f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"product_rate": rate, "best": best}, indent=1))
    if args.png:
        plot(best, rate, args.png)


if __name__ == "__main__":
    main()
