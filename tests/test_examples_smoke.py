"""Smoke tests of the application examples (examples/*.py besides mnist_train.py, which
tests/test_example_smoke.py covers): each has --help, rejects bad options naming them,
and runs on a small slice, writing its figures and printing its measured figure."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA_DIR

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXAMPLES = ["retrieval.py", "read_digits.py", "predict.py", "super_resolution.py"]


def run(script, args, timeout=240):
    env = {**os.environ, "MPLBACKEND": "Agg", "XPCNN_DATA_DIR": str(DATA_DIR)}
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def needs_mnist():
    if not (DATA_DIR / "mnist").is_dir():
        pytest.skip(f"MNIST files not found in {DATA_DIR / 'mnist'} (set XPCNN_DATA_DIR)")


def figure(path):
    assert path.is_file(), f"{path.name} missing"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"


@pytest.mark.parametrize("script", EXAMPLES)
def test_help_and_a_bad_option(script):
    result = run(script, ["--help"], timeout=60)
    assert result.returncode == 0 and "usage" in result.stdout, result.stderr
    bad = run(script, ["--epochs", "0", "x.png"] if script != "predict.py" else ["--nope", "x"])
    assert bad.returncode == 2 and ("--epochs" in bad.stderr or "--nope" in bad.stderr)


def test_retrieval_reports_precision_at_10(tmp_path):
    needs_mnist()
    result = run(
        "retrieval.py",
        [
            "--epochs",
            "1",
            "--limit",
            "2000",
            "--queries",
            "2000",
            "--backend",
            "numpy",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    precision = float(re.search(r"^precision@10: (\d\.\d{4})", result.stdout, re.M).group(1))
    assert precision > 0.7  # chance is 0.1
    figure(tmp_path / "retrieval.png")


def test_read_digits_reports_digit_and_strip_accuracy(tmp_path):
    needs_mnist()
    result = run(
        "read_digits.py",
        [
            "--epochs",
            "1",
            "--strips",
            "2000",
            "--limit",
            "4000",
            "--backend",
            "numpy",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    digit = float(re.search(r"^per-digit accuracy: (\d\.\d{4})", result.stdout, re.M).group(1))
    strip = float(re.search(r"^whole-strip accuracy: (\d\.\d{4})", result.stdout, re.M).group(1))
    assert digit > 0.3 and 0 <= strip <= digit  # chance: 0.1 per digit
    figure(tmp_path / "strips.png")


@pytest.mark.parametrize("upsampler", ["bilinear", "transpose"])
def test_super_resolution_beats_bicubic(tmp_path, upsampler):
    needs_mnist()
    result = run(
        "super_resolution.py",
        [
            "--epochs",
            "1",
            "--limit",
            "3000",
            "--upsampler",
            upsampler,
            "--backend",
            "numpy",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = dict(re.findall(r"^PSNR on the test set: (\w+) (\d+\.\d+) dB", result.stdout, re.M))
    assert float(found["ours"]) > float(found["bicubic"]) > float(found["nearest"]), result.stdout
    figure(tmp_path / "super_resolution.png")


def test_predict_reads_photographs_of_test_digits(tmp_path, mnist_data):
    """Test digits drawn as a user's photo would be (large, dark ink on grey paper, PNG and
    JPEG) are read as the model reads the original 28 x 28 digits."""
    from PIL import Image

    import engine
    from engine import layers

    (x_train, y_train), (x_test, _) = mnist_data
    engine.utils.set_random_seed(0)
    model = engine.Sequential(
        [
            layers.Input((28, 28, 1)),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(10),
        ]
    )
    model.compile("adam", engine.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train[:6000, ..., None] / 255.0, y_train[:6000], epochs=1, verbose=0)
    model.save(tmp_path / "model.npz")
    paths = []
    for i in range(10):
        paper = 0.85 - 0.75 * (x_test[i] / 255.0)  # dark ink on light grey paper
        photo = Image.fromarray((paper * 255).astype(np.uint8)).resize((160, 190))
        path = tmp_path / f"digit{i}.{'png' if i % 2 else 'jpg'}"
        photo.save(path)
        paths.append(str(path))
    result = run(
        "predict.py",
        ["--model", str(tmp_path / "model.npz"), *paths, "--out", str(tmp_path / "seen")],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    read = [int(m) for m in re.findall(r"digit\d\.\w+: (\d)", result.stdout)]
    expected = model.predict(x_test[:10, ..., None] / 255.0).argmax(axis=1)
    assert len(read) == 10 and np.mean(np.array(read) == expected) >= 0.8, result.stdout
    figure(tmp_path / "seen" / "digit0_28x28.png")
    missing = run("predict.py", ["--model", str(tmp_path / "nope.npz"), paths[0]])
    assert missing.returncode != 0 and "mnist_train.py" in missing.stderr


def test_fashion_train_runs_its_residual_network(tmp_path, monkeypatch, rng):
    """The program end to end on a small slice; on stand-in images where Fashion-MNIST is not
    installed (CI has only MNIST), so the program, not the data, is what is checked."""
    import importlib.util

    from engine.datasets import fashion_mnist

    try:
        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(
            "/usr/share/datasets/fashion-mnist"
        )
    except Exception:  # noqa: BLE001 (not installed here: stand-in images of the same shapes)
        x_train, y_train = rng.integers(0, 256, (600, 28, 28), np.uint8), rng.integers(0, 10, 600)
        x_test, y_test = rng.integers(0, 256, (200, 28, 28), np.uint8), rng.integers(0, 10, 200)
    subset = ((x_train[:600], y_train[:600]), (x_test[:200], y_test[:200]))
    monkeypatch.setattr(fashion_mnist, "load_data", lambda path=None: subset)
    spec = importlib.util.spec_from_file_location(
        "fashion_train", REPO / "examples/fashion_train.py"
    )
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    accuracy = program.main(
        ["--epochs", "2", "--batch-size", "100", "--backend", "numpy", "--out", str(tmp_path)]
    )
    assert 0 <= accuracy <= 1
    figure(tmp_path / "training_curves.png")
    figure(tmp_path / "confusion_matrix.png")
    import engine

    loaded = engine.load_model(tmp_path / "model.keras")  # written as Keras's own file
    assert [type(layer).__name__ for layer in loaded.layers][:3] == [
        "InputLayer",
        "RandomFlip",
        "RandomTranslation",
    ]
