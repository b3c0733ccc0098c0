"""Shared fixtures: the backend parametrisation, float64 mode, and where MNIST lives."""

import os
import pathlib

import numpy as np
import pytest

from engine import backend

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA_DIR = pathlib.Path(os.environ.get("XPCNN_DATA_DIR", REPO.parent / "shared" / "data"))

GPU_REASON = "CuPy with a CUDA device is not available on this machine"


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend_name(request):
    """Run the test body once per backend; the CuPy run skips with a reason where no GPU exists."""
    if request.param == "cupy" and not backend.gpu_available():
        pytest.skip(GPU_REASON)
    previous = backend.backend_name()
    backend.set_backend(request.param)
    yield request.param
    backend.set_backend(previous)


@pytest.fixture
def float64():
    """Run the test in float64 (floatx), restoring float32 afterwards."""
    previous = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(previous)


@pytest.fixture(scope="session")
def mnist_data():
    """Real MNIST ((x_train, y_train), (x_test, y_test)) from ../shared/data, or a skip."""
    from engine.datasets import mnist

    if not (DATA_DIR / "mnist").is_dir():
        pytest.skip(f"MNIST files not found in {DATA_DIR / 'mnist'} (set XPCNN_DATA_DIR)")
    return mnist.load_data(str(DATA_DIR))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
