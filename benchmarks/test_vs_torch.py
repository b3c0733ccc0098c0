"""One training step of the tutorial network, xpcnn against PyTorch on the same device.

xpcnn: model.train_on_batch (forward, loss, backward, Adam, the loss read back as a
float). PyTorch: zero_grad, forward, backward, step and loss.item(), with 2 threads on
the CPU (as this project's 2-core machines) and cuDNN on the GPU. Skips with a reason
where PyTorch (pip install torch) or a GPU is missing.
"""

import numpy as np
import pytest
from timing import GPU_REASON, run_timed
from tutorial import mnist_batches, next_device_batch, torch_tutorial, tutorial_model

from engine import backend

BATCHES = (32, 128)
THREADS = 2
# The tutorial network as it is, and with BatchNormalization after each Conv2D and
# Dropout(0.5) before the last Dense: the second's case names carry this suffix.
NETWORKS = {"": False, " +BN+Dropout": True}


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def device(request):
    """'cpu' (NumPy backend) or 'gpu' (CuPy backend), restoring the backend afterwards."""
    name = "numpy" if request.param == "cpu" else "cupy"
    if name == "cupy" and not backend.gpu_available():
        pytest.skip(GPU_REASON)
    previous = backend.backend_name()
    backend.set_backend(name)
    yield request.param
    backend.set_backend(previous)


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("batch", BATCHES)
def test_xpcnn_step(benchmark, device, batch, network):
    model = tutorial_model(metrics=(), with_bn_dropout=NETWORKS[network])
    batches = mnist_batches(batch)

    run_timed(
        benchmark,
        model.train_on_batch,
        setup=next_device_batch(batches),
        group="vs torch",
        case=device + network,
        batch=batch,
        column="xpcnn",
    )


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("batch", BATCHES)
def test_torch_step(benchmark, device, batch, network):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")
    torch.set_num_threads(THREADS)
    target = "cuda" if device == "gpu" else "cpu"
    if target == "cuda" and not torch.cuda.is_available():
        pytest.skip("this PyTorch build has no CUDA device")
    model, optimizer, loss_fn = torch_tutorial(torch, target, with_bn_dropout=NETWORKS[network])
    batches = mnist_batches(batch)

    def next_batch():  # a new batch every round, on the device (NCHW), outside the clock
        x, y = next(batches)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return (torch.from_numpy(x).to(target), torch.from_numpy(y).to(target)), {}

    def step(xt, yt):
        optimizer.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        optimizer.step()
        return loss.item()

    sync = torch.cuda.synchronize if target == "cuda" else (lambda: None)
    run_timed(
        benchmark,
        step,
        setup=next_batch,
        group="vs torch",
        case=device + network,
        batch=batch,
        column="torch",
        sync=sync,
    )
