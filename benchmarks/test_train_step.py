"""One full training step (model.train_on_batch) of the tutorial network, per backend."""

import pytest
from timing import BATCHES, run_timed
from tutorial import mnist_batches, tutorial_model

from engine import backend


@pytest.mark.parametrize("batch", BATCHES)
def test_train_on_batch(benchmark, bench_backend, batch):
    model, batches = tutorial_model(), mnist_batches(batch)

    def next_batch():  # a new batch every round, on the device, outside the clock
        x, y = next(batches)
        return (backend.to_device(x), backend.to_device(y)), {}

    run_timed(
        benchmark,
        model.train_on_batch,
        setup=next_batch,
        group="model",
        case="train_on_batch (whole step)",
        batch=batch,
        column=bench_backend,
    )
