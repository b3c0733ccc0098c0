"""pytest-benchmark set-up for ``pytest benchmarks/``: the backends, a timing helper, and the
summaries printed at the end of the run and added to the ``--benchmark-json`` file.

Every case is timed with ``benchmark.pedantic`` (a warm-up round, then a few timed rounds:
fewer for bigger batches, so the whole run takes about a minute on 2 CPU cores). GPU cases
synchronise inside the timed call (engine.backend.synchronize) and skip with a reason
where CuPy or a CUDA device is missing. The summaries use each case's fastest round: on a
shared machine other processes only ever add time.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import GPU_REASON, _ms, _table, cpu_vs_gpu_rows, machine_line, vs_torch_rows  # noqa: E402

from engine import backend  # noqa: E402


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def bench_backend(request):
    """Run the case on each backend; CuPy skips with a reason where there is no GPU."""
    if request.param == "cupy" and not backend.gpu_available():
        pytest.skip(GPU_REASON)
    previous = backend.backend_name()
    backend.set_backend(request.param)
    yield request.param
    backend.set_backend(previous)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    write = terminalreporter.write_line
    rows = cpu_vs_gpu_rows()
    if rows:
        terminalreporter.section("xpcnn: CPU (NumPy) vs GPU (CuPy), fastest round in ms")
        write(machine_line())
        if not backend.gpu_available():
            write(f"GPU column empty: {GPU_REASON}.")
        cells = [
            [r["case"], r["batch"], _ms(r["numpy_ms"]), _ms(r["cupy_ms"]), r["gpu_speedup"]]
            for r in rows
        ]
        for text in _table(["case", "batch", "numpy ms", "cupy ms", "GPU speedup"], cells):
            write(text)
    rows = vs_torch_rows()
    if rows:
        terminalreporter.section("xpcnn vs PyTorch: one training step, fastest round in ms")
        cells = [
            [r["device"], r["batch"], _ms(r["xpcnn_ms"]), _ms(r["torch_ms"]), r["xpcnn_over_torch"]]
            for r in rows
        ]
        for text in _table(["device", "batch", "xpcnn ms", "torch ms", "xpcnn/torch time"], cells):
            write(text)


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """--benchmark-json=FILE: the summaries go in as "xpcnn_summary" next to the raw data."""
    output_json["xpcnn_summary"] = {
        "machine": machine_line(),
        "cpu_vs_gpu": cpu_vs_gpu_rows(),
        "vs_torch": vs_torch_rows(),
    }
