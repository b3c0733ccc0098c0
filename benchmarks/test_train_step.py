"""One full training step (model.train_on_batch) of the tutorial network, per backend."""

import pytest
from timing import BATCHES, run_timed
from tutorial import mnist_batches, next_device_batch, tutorial_model


@pytest.mark.parametrize("batch", BATCHES)
def test_train_on_batch(benchmark, bench_backend, batch):
    model, batches = tutorial_model(), mnist_batches(batch)

    run_timed(
        benchmark,
        model.train_on_batch,
        setup=next_device_batch(batches),
        group="model",
        case="train_on_batch (whole step)",
        batch=batch,
        column=bench_backend,
    )
