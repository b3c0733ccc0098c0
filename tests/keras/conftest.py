"""Keras parity suite setup: Keras 3 on JAX (CPU) with float64 enabled, and floatx fixtures.

KERAS_BACKEND must be set before Keras is first imported, and JAX computes in
float64 only with jax_enable_x64. Keras fixes a layer's dtype when the layer is
built, so the fixtures switch floatx and the dtype policy together, on both
sides, and restore all three afterwards.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "jax":
    raise RuntimeError("Keras was imported with another backend before tests/keras/conftest.py.")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import keras  # noqa: E402
import pytest  # noqa: E402
from keras.src.backend.common import dtypes as keras_dtypes  # noqa: E402
from keras_helpers import WORST, print_worst_table  # noqa: E402

from engine import backend  # noqa: E402

_keras_result_type = keras_dtypes.result_type


def _float64_preserving_result_type(*dtypes):
    """Keras 3.15's result_type("float64", "float32") is "float32", so under a float64 policy
    its BatchNormalization, LayerNormalization, ops.mean and tanh compute in float32 (errors
    near 1e-7). Promoting that case to float64 makes Keras an exact float64 reference."""
    result = _keras_result_type(*dtypes)
    if result == "float32":
        for d in dtypes:
            try:
                if d is not None and keras_dtypes.standardize_dtype(d) == "float64":
                    return "float64"
            except ValueError:
                continue
    return result


for _module in list(sys.modules.values()):  # every Keras module that holds the function
    name = getattr(_module, "__name__", "") or ""
    if name.startswith("keras") and getattr(_module, "result_type", None) is _keras_result_type:
        _module.result_type = _float64_preserving_result_type


def _use_floatx(dtype):
    """Set floatx on both sides and Keras's dtype policy; return a function restoring them."""
    previous = backend.floatx(), keras.config.floatx(), keras.config.dtype_policy()
    backend.set_floatx(dtype)
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)

    def restore():
        backend.set_floatx(previous[0])
        keras.config.set_floatx(previous[1])
        keras.config.set_dtype_policy(previous[2])

    return restore


@pytest.fixture(params=["float32", "float64"])
def floatx(request):
    """Run the test once in float32 and once in float64 (both sides); yields the dtype name."""
    restore = _use_floatx(request.param)
    yield request.param
    restore()


@pytest.fixture
def keras_float64():
    """Run the test in float64 on both sides."""
    restore = _use_floatx("float64")
    yield "float64"
    restore()


@pytest.fixture
def keras_float32():
    """Run the test in float32 on both sides (also undoing any float64 left behind)."""
    restore = _use_floatx("float32")
    yield "float32"
    restore()


def pytest_terminal_summary(terminalreporter):
    """With WORST filled in (the suite ran), print the worst relative differences per group."""
    if WORST:
        print_worst_table(terminalreporter.write_line)


def pytest_collection_modifyitems(config, items):
    """Keras 3.15's Variable.__array__ trips NumPy 2's copy= deprecation on every get_weights."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore:__array__ implementation doesn't accept a copy keyword"
                )
            )
