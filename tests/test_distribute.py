"""Issue 13: data-parallel training over MPI (engine/distribute/).

Each test starts ``mpiexec -n P python tests/distributed_worker.py SCENARIO`` with a
timeout and reads what every rank wrote. Float64 throughout: two processes must give
one process's weights to 1e-12 (relative), the ranks' shares of each global batch are
disjoint and cover it, rank 0 alone writes files, a checkpoint resumes on 1 and 4
processes, and a failure on one rank stops every rank (or aborts the job) within seconds.
The NCCL path runs on the emulated CuPy with an MPI stand-in for NCCL; on real GPUs it
needs two devices. Skips with a reason where mpiexec or mpi4py is missing.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine import backend, distribute
from engine.distribute import shard_slice
from tests.conftest import DATA_DIR

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "distributed_worker.py"
RTOL = 1e-12
SAMPLES, BATCH = 45, 8  # as in the worker


def mpiexec():
    """The mpiexec beside this Python (the mpich wheel's), else the one on PATH."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'xpcnn[mpi]')")
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("mpiexec not found (pip install 'xpcnn[mpi]' brings MPICH's)")
    return found


def launch(scenario, out, processes=2, timeout=120, **options):
    """Run a worker scenario on ``processes`` ranks; the CompletedProcess (and its time)."""
    out.mkdir(parents=True, exist_ok=True)
    args = [mpiexec(), "-n", str(processes), sys.executable, str(WORKER), scenario]
    args += ["--out", str(out)]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env["OPENBLAS_NUM_THREADS"] = "1"
    start = time.perf_counter()
    result = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    result.seconds = time.perf_counter() - start
    return result


def ranks(out, processes):
    return [dict(np.load(out / f"rank-{r}.npz")) for r in range(processes)]


def ran(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def relative(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max()


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """The 'fit' scenario on 1 and on 2 processes: {processes: [rank results]}."""
    done = {}
    for processes in (1, 2):
        out = tmp_path_factory.mktemp(f"fit{processes}")
        result = ran(launch("fit", out, processes))
        done[processes] = ranks(out, processes)
        done[processes][0]["stdout"] = result.stdout
    return done


# -- the arithmetic -------------------------------------------------------------------


def test_two_processes_give_the_one_process_weights(fits):
    one, (first, second) = fits[1][0], fits[2]
    assert relative(first["weights"], one["weights"]) < RTOL
    assert np.array_equal(first["weights"], second["weights"]), "the ranks' weights differ"
    # the logs are the global batch's: the loss and validation loss as one process's
    for key in ("loss", "val_loss", "accuracy", "evaluated"):
        np.testing.assert_allclose(first[key], one[key], rtol=RTOL, atol=0, err_msg=key)
        assert np.array_equal(first[key], second[key]), key
    assert 0 < one["accuracy"][-1] < 1


def test_a_bad_argument_is_refused_on_every_rank(fits):
    for result in fits[2]:
        assert str(result["refused"]) == "batch_size must be a positive int, got 0."


def test_rank_zero_alone_prints_progress(fits):
    stdout = fits[2][0]["stdout"]
    assert stdout.count("Epoch 1/3") == 1, stdout


def test_shares_are_disjoint_and_cover_each_global_batch(fits):
    one, two = fits[1][0], fits[2]
    counts = [r["seen_counts"] for r in two]
    steps = len(one["seen_counts"])
    assert all(len(c) == steps for c in counts)
    start, at = 0, [0, 0]
    for step, size in enumerate(one["seen_counts"]):
        batch = one["seen"][start : start + size]
        parts = []
        for rank, result in enumerate(two):
            parts.append(result["seen"][at[rank] : at[rank] + counts[rank][step]])
            at[rank] += counts[rank][step]
        assert np.array_equal(np.concatenate(parts), batch), f"step {step}"
        assert abs(len(parts[0]) - len(parts[1])) <= 1
        start += size
    # every epoch visits every sample once
    epochs = np.split(one["seen"], 3)
    assert all(np.array_equal(np.sort(e), np.arange(SAMPLES) / 100) for e in epochs)


@pytest.mark.parametrize("n,size", [(8, 2), (5, 2), (1, 2), (7, 4), (3, 4), (0, 3)])
def test_shard_slices_split_a_batch_as_array_split(n, size):
    parts = [np.arange(n)[shard_slice(n, r, size)] for r in range(size)]
    expected = np.array_split(np.arange(n), size)
    assert all(np.array_equal(p, e) for p, e in zip(parts, expected))


# -- files and resuming ----------------------------------------------------------------


@pytest.fixture(scope="module")
def files_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("files")
    ran(launch("files", out, 2))
    return out


def test_rank_zero_alone_writes_files_and_every_rank_loads_them(files_run):
    writes = [json.loads((files_run / f"writes-{r}.json").read_text()) for r in range(2)]
    written = {Path(p).name for p in writes[0]["writes"]}
    assert {"log.csv", "ckpt-1.npz", "ckpt-2.npz"} <= written
    assert writes[1]["writes"] == [], "rank 1 wrote files"
    assert all(w["loaded_equal"] for w in writes)
    assert len((files_run / "log.csv").read_text().splitlines()) == 3  # header, 2 epochs


@pytest.mark.parametrize("processes", [1, 4])
def test_a_two_process_checkpoint_resumes_on_other_process_counts(files_run, processes, tmp_path):
    import engine

    ran(launch("resume", tmp_path, processes, checkpoint=files_run / "ckpt-1.npz"))
    resumed = ranks(tmp_path, processes)
    backend.set_floatx("float64")
    try:
        straight = engine.load_model(str(files_run / "ckpt-2.npz"))
        expected = np.concatenate([w.ravel() for w in straight.get_weights()])
    finally:
        backend.set_floatx("float32")
    for result in resumed:
        assert relative(result["weights"], expected) < RTOL


# -- failures ----------------------------------------------------------------------------


def test_a_failing_step_on_one_rank_stops_every_rank_with_its_error(tmp_path):
    result = ran(launch("step-error", tmp_path, 2, timeout=60))
    messages = [(tmp_path / f"error-{r}.txt").read_text() for r in range(2)]
    bad = "a sample holds the value -999.0 (bad data)"
    assert all(bad in m for m in messages), messages
    failed = [m for m in messages if m.startswith("ValueError")]
    others = [m for m in messages if m.startswith("RankError")]
    assert len(failed) == 1 and len(others) == 1, messages
    assert "of 2 failed in epoch 1, step" in others[0]
    first, second = ranks(tmp_path, 2)
    assert np.array_equal(first["weights"], second["weights"])
    assert result.seconds < 60


def test_a_nan_in_one_share_rolls_every_rank_back(tmp_path):
    ran(launch("nan", tmp_path / "one", 1))
    ran(launch("nan", tmp_path / "two", 2))
    (one,), two = ranks(tmp_path / "one", 1), ranks(tmp_path / "two", 2)
    for r in range(2):
        message = (tmp_path / "two" / f"error-{r}.txt").read_text()
        assert message == (tmp_path / "one" / "error-0.txt").read_text()
        assert message.startswith("NonFiniteLossError")
        assert np.isfinite(two[r]["weights"]).all()
        assert relative(two[r]["weights"], one["weights"]) < RTOL
        assert two[r]["iterations"] == one["iterations"]


def test_an_exception_on_one_rank_outside_a_step_aborts_the_job(tmp_path):
    result = launch("abort", tmp_path, 2, timeout=60)
    assert result.returncode != 0
    assert "rank 1 cannot write its report (disk full)" in result.stderr
    assert "aborting the MPI job" in result.stderr
    assert not list(tmp_path.glob("finished-*")), "a rank went on"
    assert result.seconds < 30


@pytest.mark.parametrize("how", ["interrupt", "stop_training"])
def test_ctrl_c_or_a_stop_on_one_rank_stops_every_rank_after_the_same_step(tmp_path, how):
    result = ran(launch("stop", tmp_path, 2, timeout=60, how=how))
    first, second = ranks(tmp_path, 2)
    assert first["iterations"] == second["iterations"] == 3  # the step rank 1 stopped at
    assert np.array_equal(first["weights"], second["weights"])
    assert first["epochs"] == second["epochs"] == 1
    if how == "interrupt":
        assert result.stdout.count("Interrupted: training stopped after step 3") == 1


# -- the GPU path -------------------------------------------------------------------------


@pytest.mark.parametrize("collectives", ["auto", "host"])
def test_the_nccl_path_on_emulated_cupy_gives_the_one_process_weights(fits, tmp_path, collectives):
    ran(launch("fit", tmp_path, 2, backend="cupy-emulated", gpu_collectives=collectives))
    first, second = ranks(tmp_path, 2)
    name = {"auto": "NCCLCommunicator", "host": "HostStagedCommunicator"}[collectives]
    assert str(first["communicator"]) == name
    assert relative(first["weights"], fits[1][0]["weights"]) < RTOL
    assert np.array_equal(first["weights"], second["weights"])


@pytest.mark.gpu
def test_nccl_between_two_gpus_gives_the_one_process_weights(fits, tmp_path):
    if not backend.gpu_available():
        pytest.skip("CuPy with a CUDA device is not available on this machine")
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("NCCL needs a GPU per rank: this machine has one")
    ran(launch("fit", tmp_path, 2, backend="cupy"))
    first, second = ranks(tmp_path, 2)
    assert str(first["communicator"]) == "NCCLCommunicator"
    assert relative(first["weights"], fits[1][0]["weights"]) < 1e-10  # cuBLAS sums its way
    assert np.array_equal(first["weights"], second["weights"])


# -- batch normalization ---------------------------------------------------------------------


def test_synchronized_batch_normalization_follows_the_one_process_run(tmp_path):
    ran(launch("batchnorm", tmp_path / "one", 1, synchronized="yes"))
    ran(launch("batchnorm", tmp_path / "two", 2, synchronized="yes"))
    (one,), (first, second) = ranks(tmp_path / "one", 1), ranks(tmp_path / "two", 2)
    assert relative(first["weights"], one["weights"]) < RTOL  # moving statistics too
    assert np.array_equal(first["weights"], second["weights"])


def test_per_rank_batch_statistics_keep_every_rank_identical(tmp_path):
    ran(launch("batchnorm", tmp_path / "one", 1))
    ran(launch("batchnorm", tmp_path / "two", 2))
    (one,), (first, second) = ranks(tmp_path / "one", 1), ranks(tmp_path / "two", 2)
    assert np.array_equal(first["weights"], second["weights"])  # moving statistics averaged
    assert relative(first["weights"], one["weights"]) > 1e-6  # each rank its own statistics


def test_synchronized_batch_normalization_refuses_a_batch_with_no_share_for_a_rank(tmp_path):
    ran(launch("batchnorm", tmp_path, 3, synchronized="yes", batch=2))
    for r in range(3):
        message = (tmp_path / f"error-{r}.txt").read_text()
        assert "A batch of 2 samples leaves ranks of the 3 with none" in message


# -- the hook of synchronized batch normalization -----------------------------------------


def test_sum_across_replicas_gives_the_global_batch_moments(tmp_path):
    ran(launch("moments", tmp_path, 3))
    for result in ranks(tmp_path, 3):
        rows = result["rows"]
        np.testing.assert_allclose(result["mean"], rows.mean(axis=0), rtol=RTOL)
        np.testing.assert_allclose(result["var"], rows.var(axis=0), rtol=RTOL)


# -- one process ---------------------------------------------------------------------------


def test_one_process_needs_no_mpi(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py fails
    monkeypatch.delenv("PMI_SIZE", raising=False)
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE", raising=False)
    assert distribute.init() == 1
    assert distribute.current() is None and distribute.size() == 1 and distribute.is_chief()


def test_an_mpi_launch_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setenv("PMI_SIZE", "4")
    with pytest.raises(ImportError, match=r"PMI_SIZE=4.*pip install 'xpcnn\[mpi\]'"):
        distribute.init()


def test_init_refuses_an_unknown_gpu_collective():
    with pytest.raises(ValueError, match="gpu_collectives must be one of auto, nccl, mpi, "):
        distribute.init(gpu_collectives="gloo")


# -- the example ---------------------------------------------------------------------------


def test_mnist_train_on_two_processes(tmp_path):
    if not (DATA_DIR / "mnist").is_dir():
        pytest.skip(f"MNIST files not found in {DATA_DIR / 'mnist'} (set XPCNN_DATA_DIR)")
    args = [mpiexec(), "-n", "2", sys.executable, str(REPO / "examples" / "mnist_train.py")]
    args += ["--limit", "600", "--epochs", "1", "--backend", "numpy", "--out", str(tmp_path)]
    env = {**os.environ, "MPLBACKEND": "Agg", "XPCNN_DATA_DIR": str(DATA_DIR)}
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("test accuracy:") == 1, result.stdout  # rank 0 alone prints
    assert (tmp_path / "model.npz").is_file() and (tmp_path / "training_curves.png").is_file()


def test_synchronized_is_checked_saved_and_loaded(tmp_path):
    import engine
    from layers import BatchNormalization, Dense, Flatten

    with pytest.raises(TypeError, match="BatchNormalization synchronized must be True or False"):
        BatchNormalization(synchronized="yes")
    model = engine.Sequential(
        [BatchNormalization(synchronized=True, input_shape=(4, 3)), Flatten(), Dense(2)]
    )
    model.compile("adam", "mse")
    x = np.random.default_rng(0).standard_normal((16, 4, 3)).astype(np.float32)
    model.fit(x, np.ones((16, 2)), batch_size=8, epochs=1, verbose=0)  # one process: plain
    model.save(tmp_path / "m.npz")
    loaded = engine.load_model(tmp_path / "m.npz")
    assert loaded.layers[0].synchronized is True
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
