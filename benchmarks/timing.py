"""Timing for ``pytest benchmarks/``: run_timed and the results the summaries are made of.

Kept out of conftest.py so the test files import it under its own name.
"""

import gc
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import backend  # noqa: E402

BATCHES = (32, 128, 512)
ROUNDS = {32: 30, 128: 15, 512: 5}
GPU_REASON = "CuPy with a CUDA device is not available on this machine"

# (group, case, batch) -> {column: fastest round in seconds}; columns are backends
# ('numpy', 'cupy') or, for the PyTorch comparison, 'xpcnn <device>' / 'torch <device>'.
RESULTS = {}


def run_timed(benchmark, fn, *, group, case, batch, column, setup=None, sync=None):
    """Time ``fn`` (after ``setup``, untimed, which returns fn's (args, kwargs)) and record
    its fastest round under RESULTS[group, case, batch][column]."""
    sync = sync or backend.synchronize

    def timed(*args, **kwargs):
        out = fn(*args, **kwargs)
        sync()  # the GPU has finished the work before the clock stops
        return out

    benchmark.group = f"{group}, batch {batch}"
    benchmark.extra_info.update(group=group, case=case, batch=batch, column=column)
    rounds = ROUNDS[batch]
    # Python's garbage collector off while timing (as --benchmark-disable-gc): it would
    # walk every object the whole session keeps (layers, results) and add 30% at random.
    gc.collect()
    gc.disable()
    try:
        benchmark.pedantic(timed, setup=setup, rounds=rounds, warmup_rounds=1, iterations=1)
    finally:
        gc.enable()
    if benchmark.stats is not None:  # None under --benchmark-disable: one untimed run
        RESULTS.setdefault((group, case, batch), {})[column] = benchmark.stats.stats.min


def _ms(milliseconds):
    return "—" if milliseconds is None else f"{milliseconds:.3f}"


def _to_ms(seconds):
    return None if seconds is None else 1000 * seconds


def cpu_vs_gpu_rows():
    """One row per case and batch: the fastest round in ms per backend, and their ratio."""
    rows = []
    for (group, case, batch), times in RESULTS.items():
        if group == "vs torch":
            continue
        cpu, gpu = times.get("numpy"), times.get("cupy")
        speedup = f"{cpu / gpu:.1f}x" if cpu and gpu else "—"
        rows.append(
            {
                "case": case,
                "batch": batch,
                "numpy_ms": _to_ms(cpu),
                "cupy_ms": _to_ms(gpu),
                "gpu_speedup": speedup,
            }
        )
    return rows


def vs_torch_rows():
    """One row per device and batch: xpcnn's and PyTorch's step in ms, and ours over theirs."""
    rows = []
    for (group, device, batch), times in RESULTS.items():
        if group != "vs torch":
            continue
        ours, theirs = times.get("xpcnn"), times.get("torch")
        ratio = f"{ours / theirs:.2f}" if ours and theirs else "—"
        rows.append(
            {
                "device": device,
                "batch": batch,
                "xpcnn_ms": _to_ms(ours),
                "torch_ms": _to_ms(theirs),
                "xpcnn_over_torch": ratio,
            }
        )
    return rows


def _table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def machine_line():
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{backend.device_description()}; OPENBLAS_CORETYPE="
        f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}"
    )
