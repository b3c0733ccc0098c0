"""Where a training step's time goes by kind of work: matrix products, copies, elementwise
passes, Python, the operating system, and the optimizer's share.

Samples the whole ``model.fit`` of the tutorial network on real MNIST with Linux ``perf``
(the CPU-clock event) and sorts each sample of the training thread by the function it landed
in: OpenBLAS (the products, with their own packing copies), NumPy's copy, cast and gather
loops and libc's memcpy (copies), NumPy's other loops (elementwise and reductions), the
interpreter (Python and NumPy's dispatch around each call), the kernel (page faults of fresh
buffers, thread wake-ups). The optimizer's update is timed apart in the same run; its passes
are among the elementwise ones. With OpenBLAS on one thread the training thread does all the
work, so its samples divide the wall time; with two, the time it waits blocked for the
second thread is not sampled, and the products' share comes out too small by a varying amount.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 PYTHONPATH=. \
        .venv/bin/python benchmarks/step_breakdown.py --batch 32 512

Needs ``perf`` (Debian's linux-perf) with user-space sampling allowed
(kernel.perf_event_paranoid <= 2).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_torch import load_mnist  # noqa: E402
from tutorial import DATA_DIR, tutorial_model  # noqa: E402

KINDS = ("products", "copies", "elementwise", "Python", "kernel", "other")
COPY_WORDS = ("copy", "cast", "assign", "_to_", "memcpy", "memmove", "take", "mapiter", "strided")


def kind_of(dso, symbol):
    """The kind of work a sample in ``symbol`` of library ``dso`` was doing."""
    if "blas" in dso:
        return "products"
    if dso.startswith("[kernel") or symbol.startswith("[k]"):
        return "kernel"
    name = symbol.lower()
    if "_multiarray_umath" in dso or "numpy" in dso or dso.startswith("libc"):
        if any(word in name for word in COPY_WORDS):
            return "copies"
        return "other" if dso.startswith("libc") else "elementwise"
    if "python" in dso:
        return "Python"
    return "other"


def worker(batch, images, data):
    x, y = load_mnist(data)
    model = tutorial_model()
    model.fit(x[:1024], y[:1024], batch_size=batch, epochs=1, verbose=0, seed=0)
    spent = [0.0]
    apply = model.optimizer.apply

    def timed_apply(*args, **kwargs):
        start = time.perf_counter()
        out = apply(*args, **kwargs)
        spent[0] += time.perf_counter() - start
        return out

    model.optimizer.apply = timed_apply
    print("start", flush=True)  # the parent's perf attaches at this line
    time.sleep(0.5)
    start = time.perf_counter()
    model.fit(x[:images], y[:images], batch_size=batch, epochs=1, verbose=0, seed=1)
    total = time.perf_counter() - start
    steps = images // batch
    print(f"{total / steps} {spent[0] / steps}", flush=True)
    time.sleep(0.3)


def breakdown(batch, images, data, verbose=False):
    """(ms per step, optimizer ms per step, {kind: share of samples}) of one fit."""
    command = [sys.executable, __file__, "--worker", str(batch), str(images), "--data", data]
    with tempfile.TemporaryDirectory() as tmp:
        samples = os.path.join(tmp, "perf.data")
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        if child.stdout.readline().strip() != "start":
            raise RuntimeError(f"the training process failed: {' '.join(command)}")
        perf = subprocess.Popen(
            [
                "perf",
                "record",
                "-q",
                "-e",
                "cpu-clock",
                "-F",
                "2000",
                "-p",
                str(child.pid),
                "-o",
                samples,
            ],
            stderr=subprocess.DEVNULL,
        )
        step, optimizer = map(float, child.stdout.readline().split())
        perf.send_signal(2)
        perf.wait()
        child.wait()
        report = subprocess.run(
            [
                "perf",
                "report",
                "-i",
                samples,
                "--stdio",
                "-q",
                "--sort",
                "dso,sym",
                "--percent-limit",
                "0",
                "--tid",
                str(child.pid),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    shares = defaultdict(float)
    for line in report.splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[0].endswith("%"):
            continue
        percent, dso, symbol = float(fields[0][:-1]), fields[1], " ".join(fields[2:])
        shares[kind_of(dso, symbol)] += percent
        if verbose and percent >= 0.5:
            print(f"  {percent:5.1f}%  {kind_of(dso, symbol):<11} {dso} {symbol}")
    total = sum(shares.values())  # of all threads' samples: the main thread's part of them
    return 1e3 * step, 1e3 * optimizer, {kind: share / total for kind, share in shares.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 512])
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--data", default=DATA_DIR)
    parser.add_argument("--symbols", action="store_true", help="list the main functions too")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.data)
        return
    print(
        f"{'batch':>5} | {'ms/step':>7} | " + " | ".join(f"{k:>11}" for k in KINDS) + " | optimizer"
    )
    for batch in args.batch:
        step, optimizer, shares = breakdown(batch, args.images, args.data, args.symbols)
        print(
            f"{batch:>5} | {step:>7.2f} | "
            + " | ".join(f"{100 * shares[k]:>10.1f}%" for k in KINDS)
            + f" | {optimizer:.3f} ms ({100 * optimizer / step:.1f}%)"
        )
    print("\nShares are of the training thread's CPU-clock samples (of the wall time when")
    print("OpenBLAS runs on one thread); the optimizer's time is timed, and its passes are")
    print("among the elementwise ones.")


if __name__ == "__main__":
    main()
