"""The backends agree: one training run gives the same weights, loss and accuracy on
NumPy as on CuPy (the GPU, or its code path emulated on the CPU), to float64 rounding.

On NumPy the comparison is the CPU's fused Conv2D + pooling steps (layers/conv_pool.py)
against the layers run one by one, which is what the GPU runs.
"""

import numpy as np
import pytest

from engine import Sequential, backend, utils
from engine.losses import SparseCategoricalCrossentropy
from layers import Conv2D, Dense, Flatten, MaxPooling2D


def _train(x, y):
    """Weights and history of a small tutorial-like CNN after 2 epochs of Adam (seeded)."""
    utils.set_random_seed(0)
    model = Sequential(
        [
            Conv2D(4, 3, activation="relu", input_shape=(12, 12, 2)),
            MaxPooling2D(2),  # the fused pair on the CPU
            Conv2D(5, 3, strides=2, padding="same", activation="tanh"),
            MaxPooling2D(2, strides=1, padding="same"),  # overlapping windows: general path
            Flatten(),
            Dense(6, activation="relu"),
            Dense(3),
        ]
    )
    model.compile("adam", SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    initial = [backend.to_numpy(w).copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=8, epochs=2, seed=1, verbose=0)
    return [backend.to_numpy(w) for w in model.get_weights()], history.history, initial


def test_training_gives_the_same_weights_on_every_backend(backend_name, float64):
    rng = np.random.default_rng(2)
    x = rng.random((40, 12, 12, 2))
    y = (x[:, :6].mean(axis=(1, 2, 3)) * 7).astype(int) % 3
    weights, history, initial = _train(x, y)

    with pytest.MonkeyPatch.context() as patch:
        if backend_name == "numpy":
            patch.setattr(backend, "_fusion", False)
        else:
            patch.setattr(backend, "_name", "numpy")  # the reference run, on the CPU
        reference_weights, reference_history, _ = _train(x, y)

    assert history["accuracy"] == reference_history["accuracy"]
    np.testing.assert_allclose(history["loss"], reference_history["loss"], rtol=1e-12)
    for w, reference in zip(weights, reference_weights, strict=True):
        assert w.dtype == np.float64
        np.testing.assert_allclose(w, reference, rtol=1e-9, atol=1e-12)
    # It trained: every weight array moved from its initial values.
    assert all(not np.allclose(w, w0) for w, w0 in zip(weights, initial))


@pytest.mark.parametrize("strides", [(1, 1), (2, 3)])
def test_the_emulated_gpu_kernels_match_the_cpu(strides, rng):
    """im2col, col2im and pooling kernels of the CuPy path, compiled for the CPU."""
    from engine import im2col, maxpool
    from tests import emulated_cupy

    try:
        fake = emulated_cupy.EmulatedCupy()
    except emulated_cupy.CompilerUnavailable as exc:
        pytest.skip(f"needs a C++ compiler: {exc}")
    x = rng.standard_normal((2, 7, 8, 3))
    pads = (1, 0, 2, 1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "_cupy", fake)
        patch.setattr(backend, "_elementwise_kernels", {})
        device_x = fake.asarray(x)
        cols = im2col.im2col(device_x, 3, 2, *strides, pads)
        np.testing.assert_array_equal(cols.get(), im2col.im2col(x, 3, 2, *strides, pads))
        back = im2col.col2im(cols, x.shape, 3, 2, *strides, pads)
        np.testing.assert_allclose(
            back.get(), im2col.col2im(cols.get(), x.shape, 3, 2, *strides, pads)
        )
        y, argmax = maxpool.max_pool_forward(device_x, 3, 2, *strides, pads)
        host_y, host_argmax = maxpool.max_pool_forward(x, 3, 2, *strides, pads)
        np.testing.assert_array_equal(y.get(), host_y)
        np.testing.assert_array_equal(argmax.get(), host_argmax)
        dy = rng.standard_normal(host_y.shape)
        dx = maxpool.max_pool_backward(fake.asarray(dy), argmax, x.shape, 3, 2, *strides, pads)
        host_dx = maxpool.max_pool_backward(dy, host_argmax, x.shape, 3, 2, *strides, pads)
        np.testing.assert_allclose(dx.get(), host_dx, rtol=1e-15)


def test_the_emulated_cupy_refuses_what_cupy_refuses():
    """The emulation would hide GPU bugs if it were laxer than CuPy: host arrays mixed into
    device operations and kernel arguments of the wrong dtype are errors."""
    from engine import im2col
    from tests import emulated_cupy

    try:
        fake = emulated_cupy.EmulatedCupy()
    except emulated_cupy.CompilerUnavailable as exc:
        pytest.skip(f"needs a C++ compiler: {exc}")
    device = fake.zeros((2, 3))
    host = np.ones((2, 3))
    for mix in (lambda: device + host, lambda: fake.maximum(device, host), lambda: host * device):
        with pytest.raises(TypeError, match="host"):
            mix()
    assert isinstance(device + 1, fake.ndarray)
    kernel = fake.ElementwiseKernel(*im2col._GPU_SOURCES["im2col"], name="xpcnn_im2col")
    x = fake.zeros((1, 4, 4, 1))
    cols = fake.empty((4, 9), dtype=np.float32)  # x is float64: T disagrees
    with pytest.raises(TypeError, match="float64"):
        kernel(x, 1, 4, 4, 1, 3, 3, 1, 1, 1, 1, 0, 0, 2, 2, 1, cols)


def test_a_model_saved_on_any_backend_resumes_on_the_cpu_as_it_would_have_there(
    backend_name, float64, tmp_path
):
    """Weights and optimizer state go through model.save from the device and back: the
    file loaded on the CPU holds the same state, and one more epoch from it matches one
    more epoch of the model that stayed (on its backend) to float64 rounding."""
    import engine

    rng = np.random.default_rng(3)
    x = rng.random((24, 12, 12, 2))
    y = rng.integers(0, 3, 24)
    utils.set_random_seed(0)
    model = Sequential(
        [
            Conv2D(3, 3, activation="relu", input_shape=(12, 12, 2)),
            MaxPooling2D(2),
            Flatten(),
            Dense(3),
        ]
    )
    model.compile("adam", SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=8, epochs=1, seed=0, verbose=0)
    model.save(tmp_path / "model.npz")
    model.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, seed=0, verbose=0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "_name", "numpy")
        loaded = engine.load_model(tmp_path / "model.npz")
        assert loaded.optimizer.iterations == 3
        loaded.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, seed=0, verbose=0)
        resumed = [backend.to_numpy(w) for w in loaded.get_weights()]
    assert model.optimizer.iterations == loaded.optimizer.iterations == 6
    for w, r in zip(model.get_weights(), resumed, strict=True):
        np.testing.assert_allclose(backend.to_numpy(w), r, rtol=1e-9, atol=1e-12)
