"""Training throughput of xpcnn against PyTorch on the CPU, on real MNIST.

Both train the tutorial network (Conv2D(32, 3, relu) - MaxPool 2 - Conv2D(64, 3, relu) -
MaxPool 2 - Flatten - Dense(64, relu) - Dense(10)) with Adam and sparse crossentropy from
logits. Ours is timed through the whole ``model.fit`` loop (verbose=0, shuffling, accuracy
metric included); PyTorch through a plain zero_grad / forward / backward / step loop over
shuffled tensor batches, torch.set_num_threads(2). Each measurement trains on ``--images``
images after a warm-up, in a process of its own; the two frameworks alternate so a load
spike hits both, and the best of ``--repeats`` counts (the least disturbed run).

    PYTHONPATH=. .venv/bin/python benchmarks/compare_torch.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. .venv/bin/python \
        benchmarks/compare_torch.py --batch 32 128 --images 6400 --repeats 3

PyTorch is a benchmark-only tool (pip install torch), never a dependency of the engine.
"""

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import backend  # noqa: E402
from engine.datasets import mnist  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import networks  # noqa: E402

THREADS = 2
QUIET = 0.05  # CPU cores other processes may use during a measurement that counts as quiet


def _best(runs):
    """The highest images/s among the quiet runs, or among all when none was quiet."""
    quiet = [value for value, others in runs if not others > QUIET]
    return max(quiet or [value for value, _ in runs], default=float("nan"))


def load_mnist(data_dir):
    (x, y), _ = mnist.load_data(data_dir)
    return (x.reshape(-1, 28, 28, 1) / np.float32(255)).astype(np.float32), y.astype(np.int64)


def _rss_mb(field):
    """The process's resident memory (VmRSS) or its high-water mark (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ours_images_per_second(x, y, network, mode, batch, warmup, images):
    model = networks.OURS[network]()
    if mode == "predict":
        model.predict(x[:warmup], batch_size=batch)
        start = time.perf_counter()
        model.predict(x[:images], batch_size=batch)
    else:
        model.fit(x[:warmup], y[:warmup], batch_size=batch, epochs=1, verbose=0, seed=0)
        start = time.perf_counter()
        model.fit(x[:images], y[:images], batch_size=batch, epochs=1, verbose=0, seed=1)
    backend.synchronize()
    return images / (time.perf_counter() - start)


def torch_setup():
    import torch

    torch.set_num_threads(THREADS)
    return torch


def torch_images_per_second(torch, x, y, network, mode, batch, warmup, images):
    model, optimizer, loss_fn = networks.theirs(torch, network)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NCHW, torch's own
    yt = torch.from_numpy(y)

    def train(n, seed):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()

    def infer(n, seed):
        model.eval()
        with torch.no_grad():
            for start in range(0, n, batch):
                model(xt[start : start + batch])

    run = infer if mode == "predict" else train
    run(warmup, 0)
    start = time.perf_counter()
    run(images, 1)
    return images / (time.perf_counter() - start)


def blas_description():
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return ", ".join(
            f"{i['internal_api']} {i['version']} {i.get('architecture')} x{i['num_threads']}"
            for i in info
        )
    except ImportError:
        return "unknown (pip install threadpoolctl)"


def _busy_seconds():
    """CPU seconds all processes have used so far (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle


def _children_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(framework, network, mode, batch, images, warmup, data):
    """(images/s, CPU cores other processes used meanwhile) of one measurement, run in a
    fresh process: each framework's thread pool (OpenBLAS's, PyTorch's OpenMP) keeps
    spinning for a while after its last call and would slow the other one down if they
    shared a process."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        framework,
        network,
        mode,
        str(batch),
        str(images),
        str(warmup),
        "--data",
        data,
    ]
    busy, ours, start = _busy_seconds(), _children_seconds(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    others = float("nan")
    if busy is not None:
        others = max(0.0, _busy_seconds() - busy - (_children_seconds() - ours)) / elapsed
    rate, peak = map(float, done.stdout.split()[-2:])
    return rate, peak, others


def worker(framework, network, mode, batch, images, warmup, data):
    backend.set_backend("numpy")
    x, y = load_mnist(data)
    torch = torch_setup() if framework == "torch" else None
    if torch is None:
        networks.OURS[network]()  # the modules it imports load before the baseline is read
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets the peak (VmHWM) to now: loading the data peaked higher
    baseline = _rss_mb("VmRSS")
    if framework == "xpcnn":
        rate = ours_images_per_second(x, y, network, mode, batch, warmup, images)
    else:
        rate = torch_images_per_second(torch, x, y, network, mode, batch, warmup, images)
    print(rate, _rss_mb("VmHWM") - baseline)  # images/s, peak memory growth in MiB


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--images", type=int, default=6400, help="images per measurement")
    parser.add_argument("--warmup", type=int, default=1024, help="images trained before timing")
    parser.add_argument("--repeats", type=int, default=3, help="measurements; the best counts")
    parser.add_argument(
        "--data",
        default=os.environ.get("XPCNN_DATA_DIR", str(Path(__file__).parents[2] / "shared/data")),
    )
    parser.add_argument("--no-torch", action="store_true", help="measure xpcnn only")
    parser.add_argument(
        "--network",
        choices=sorted(networks.OURS),
        default="tutorial",
        help="benchmarks/networks.py",
    )
    parser.add_argument(
        "--mode",
        choices=["fit", "predict"],
        default="fit",
        help="training (the whole fit loop) or inference (predict; torch.no_grad forward)",
    )
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        framework, network, mode, *numbers = args.worker
        worker(framework, network, mode, *map(int, numbers), args.data)
        return

    with_torch = not args.no_torch
    if with_torch:
        try:
            torch = torch_setup()
            torch_line = f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads"
        except ImportError:
            print("PyTorch is not installed (pip install torch): measuring xpcnn only.")
            with_torch = False
    env = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"NumPy {np.__version__}, BLAS: {blas_description()}; "
        + ", ".join(f"{k}={v}" for k, v in env.items())
    )
    if with_torch:
        print(torch_line)
    print(
        f"network {args.network}, {args.mode}: {args.images} images per measurement after "
        f"{args.warmup} warm-up, each in its own process, the frameworks alternating; best of "
        f"{args.repeats}\n"
    )

    header = (
        f"{'batch':>5} | {'xpcnn img/s':>11} | {'torch img/s':>11} | {'xpcnn/torch':>11} | "
        f"{'peak MiB xpcnn/torch':>20}"
    )
    rows = []
    for batch in args.batch:
        runs = {"xpcnn": [], "torch": []}
        for _ in range(args.repeats):
            for framework in ("xpcnn", "torch") if with_torch else ("xpcnn",):
                runs[framework].append(
                    measure(
                        framework,
                        args.network,
                        args.mode,
                        batch,
                        args.images,
                        args.warmup,
                        args.data,
                    )
                )
        best = {name: _best([(v, o) for v, _, o in values]) for name, values in runs.items()}
        peak = {name: min(p for _, p, _ in values) for name, values in runs.items() if values}
        theirs = f"{best['torch']:>11.0f}" if with_torch else f"{'—':>11}"
        ratio = f"{best['xpcnn'] / best['torch']:>10.2f}x" if with_torch else f"{'—':>11}"
        memory = f"{peak['xpcnn']:.0f}" + (f" / {peak['torch']:.0f}" if with_torch else "")
        rows.append(f"{batch:>5} | {best['xpcnn']:>11.0f} | {theirs} | {ratio} | {memory:>20}")
        for name, values in runs.items():
            if values:
                shown = ", ".join(f"{v:.0f}" + ("*" if o > QUIET else "") for v, _, o in values)
                print(f"batch {batch} {name}: {shown}", flush=True)
    print()
    print(header)
    print("-" * len(header))
    print("\n".join(rows))
    print("\npeak MiB: the growth of each process's peak resident memory over its resident")
    print("memory before training (data loaded), the smallest of the runs.")
    print(f"* other processes used more than {QUIET} of a core meanwhile; the best counts")
    print("  among the undisturbed measurements when there are any.")


if __name__ == "__main__":
    main()
