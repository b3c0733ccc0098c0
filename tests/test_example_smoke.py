"""Smoke tests for examples/mnist_train.py: it trains, reports and draws.

The training test needs the MNIST files: $XPCNN_DATA_DIR if set, else
<repo>/../shared/data (each holding mnist/*.gz); it is skipped without them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "mnist_train.py"
FIGURES = (
    "training_curves.png",
    "predictions.png",
    "confusion_matrix.png",
    "filters.png",
    "feature_maps.png",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _data_dir():
    configured = os.environ.get("XPCNN_DATA_DIR")
    return Path(configured) if configured else (REPO.parent / "shared" / "data")


def _run(args, timeout, env_extra=None):
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_exits_zero():
    result = _run(["--help"], timeout=60)
    assert result.returncode == 0, result.stderr
    for option in (
        "--epochs",
        "--batch-size",
        "--optimizer",
        "--learning-rate",
        "--backend",
        "--limit",
        "--out",
    ):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--epochs", "0"], "--epochs"),
        (["--batch-size", "-4"], "--batch-size"),
        (["--limit", "ten"], "--limit"),
        (["--optimizer", "foo"], "--optimizer"),
        (["--backend", "tpu"], "--backend"),
        (["--learning-rate", "0"], "--learning-rate"),
    ],
)
def test_bad_argument_exits_two_naming_the_option(args, option):
    result = _run(args, timeout=60)
    assert result.returncode == 2
    assert option in result.stderr, result.stderr


def test_trains_and_writes_model_and_figures(tmp_path):
    data_dir = _data_dir()
    if not (data_dir / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST files not found in {data_dir / 'mnist'} (set XPCNN_DATA_DIR)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    out = tmp_path / "run"
    result = _run(
        ["--limit", "2000", "--epochs", "1", "--backend", "numpy", "--out", str(out)],
        timeout=120,
        env_extra={"XPCNN_DATA_DIR": str(data_dir)},
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"

    accuracy = re.search(r"^test accuracy: (0\.\d{4}|1\.0000)$", result.stdout, re.MULTILINE)
    assert accuracy, result.stdout
    assert float(accuracy.group(1)) > 0.80, result.stdout

    predictions = re.search(
        r"^first five predictions: (\d) (\d) (\d) (\d) (\d)$", result.stdout, re.MULTILINE
    )
    assert predictions, result.stdout

    assert (out / "model.npz").is_file()
    for name in FIGURES:
        path = out / name
        assert path.is_file(), f"{name} missing"
        assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{name} is not a PNG"
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[2] in (3, 4), (name, image.shape)
        assert image.shape[0] >= 200 and image.shape[1] >= 200, (name, image.shape)
