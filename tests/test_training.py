"""The tutorial network learns real MNIST: 200 Adam steps bring the loss well down."""

import numpy as np
import pytest

import engine
from engine import losses
from optim import Adam
from tests.test_model import tutorial_model


@pytest.mark.slow
def test_200_steps_on_real_mnist_lower_the_loss(backend_name, mnist_data):
    (x_train, y_train), (x_test, y_test) = mnist_data
    x = x_train[:6400].reshape(-1, 28, 28, 1) / 255.0
    engine.utils.set_random_seed(0)
    model = tutorial_model()
    model.compile(Adam(), losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    initial_loss = model.evaluate(x[:1000], y_train[:1000])[0]
    assert initial_loss == pytest.approx(np.log(10), abs=0.3)  # a fresh 10-class model guesses
    history = model.fit(x, y_train[:6400], batch_size=32, epochs=1, verbose=0, seed=0)  # 200 steps
    assert history.history["loss"][0] < 0.8
    loss, accuracy = model.evaluate(x_test[:2000].reshape(-1, 28, 28, 1) / 255.0, y_test[:2000])
    assert loss < 0.35, loss
    assert accuracy > 0.9, accuracy
