"""Shared fixtures: the backend parametrisation, float64 mode, and where MNIST lives."""

import os
import pathlib

import numpy as np
import pytest

from engine import backend
from tests import emulated_cupy

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA_DIR = pathlib.Path(os.environ.get("XPCNN_DATA_DIR", REPO.parent / "shared" / "data"))

GPU_REASON = "CuPy with a CUDA device is not available on this machine"


@pytest.fixture(params=["numpy", "cupy-emulated", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend_name(request, monkeypatch):
    """Run the test body once per backend; the CuPy run skips with a reason where no GPU exists.

    'cupy-emulated' runs the CuPy backend's code path on the CPU, our CUDA kernels
    compiled as C++ loops (tests/emulated_cupy.py): the GPU path is tested everywhere.
    """
    if request.param == "cupy" and not backend.gpu_available():
        pytest.skip(GPU_REASON)
    previous = backend.backend_name()
    if request.param == "cupy-emulated":
        try:
            fake = emulated_cupy.EmulatedCupy()
        except emulated_cupy.CompilerUnavailable as exc:
            pytest.skip(f"the emulated CuPy backend needs a C++ compiler: {exc}")
        monkeypatch.setattr(backend, "_cupy", fake)
        monkeypatch.setattr(backend, "_cupy_error", None)
        monkeypatch.setattr(backend, "_elementwise_kernels", {})
    yield backend.set_backend(request.param.removesuffix("-emulated"))
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
