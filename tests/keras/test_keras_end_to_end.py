"""The tutorial network trained by both fits on real MNIST, and weights exchanged both ways.

Conv2D(32, 3, relu) - MaxPooling2D(2) - Conv2D(64, 3, relu) - MaxPooling2D(2) - Flatten -
Dense(64, relu) - Dense(10), trained with sparse categorical crossentropy from logits.
"""

import keras
import numpy as np
import pytest
from keras_helpers import record, relative_difference

import optim
from engine import Sequential, losses, utils
from layers import Conv2D, Dense, Flatten, MaxPooling2D

pytestmark = pytest.mark.keras

TRAJECTORY_STEPS, BATCH = 50, 32


def keras_tutorial():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def our_tutorial():
    return Sequential(
        [
            Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D(2),
            Conv2D(64, 3, activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(64, activation="relu"),
            Dense(10),
        ]
    )


def compile_both(keras_model, ours, keras_optimizer, our_optimizer, metrics=None):
    keras_model.compile(
        optimizer=keras_optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=metrics,
    )
    ours.compile(
        optimizer=our_optimizer,
        loss=losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=metrics,
    )


def images(x, dtype):
    return (x[..., None] / 255).astype(dtype)


OPTIMIZERS = {
    "Adam": (lambda: keras.optimizers.Adam(1e-3), lambda: optim.Adam(1e-3), 1e-3),
    "SGD-nesterov": (
        lambda: keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        lambda: optim.SGD(0.01, momentum=0.9, nesterov=True),
        0.01,
    ),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fit_trajectory_float64(name, mnist_data, keras_float64):
    """50 steps of fit from Keras's initial weights on the same batches end within 1e-6 of
    one learning-rate step of Keras's weights.

    float64 because the trajectory is chaotic: in float32, Keras against itself in float64
    drifts by about two learning-rate steps within 20 steps.
    """
    make_keras_optimizer, make_our_optimizer, lr = OPTIMIZERS[name]
    (x_train, y_train), _ = mnist_data
    n = TRAJECTORY_STEPS * BATCH  # the first 1600 images, in order
    x, y = images(x_train[:n], "float64"), y_train[:n].astype(np.int64)

    keras.utils.set_random_seed(0)
    keras_model, ours = keras_tutorial(), our_tutorial()
    ours.set_weights(keras_model.get_weights())
    initial = keras_model.get_weights()
    compile_both(keras_model, ours, make_keras_optimizer(), make_our_optimizer())

    keras_model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    assert ours.optimizer.iterations == int(keras_model.optimizer.iterations.value) == 50
    names = [f"{layer.name}/{k}" for layer in ours.layers for k in layer.params]
    for name_, w0, w_ours, w_keras in zip(
        names, initial, ours.get_weights(), keras_model.get_weights()
    ):
        assert w_ours.dtype == w_keras.dtype == np.float64
        assert np.abs(w_keras - w0).max() > lr, f"{name_} moved less than one learning-rate step"
        # Relative to how far the weights travelled.
        record(
            "end to end float64",
            relative_difference(w_ours - w0, w_keras - w0),
            f"{name_} (moved)",
        )
        worst = float(np.abs(w_ours - w_keras).max())
        record("end to end float64, |ours - Keras| / lr", worst / lr, name_)
        i = np.unravel_index(np.argmax(np.abs(w_ours - w_keras)), w_ours.shape)
        assert worst < 1e-6 * lr, (
            f"{name_}: max |ours - Keras| = {worst:.3g} = {worst / lr:.3g} learning-rate steps "
            f"at index {tuple(int(k) for k in i)}: ours {w_ours[i]!r}, Keras {w_keras[i]!r}"
        )


def assert_same_evaluation_and_classes(trained, loaded, x_test, y_test, what):
    """evaluate() gives the same loss to 1e-5 and the same accuracy; predict() the same classes.

    Batches of 1000 in evaluate: Keras accumulates its loss mean in a float32 variable, and
    fewer batches keep that rounding well below 1e-5.
    """
    loss_a, accuracy_a = trained.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    loss_b, accuracy_b = loaded.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    record("end to end float32", abs(loss_a - loss_b) / abs(loss_a), f"{what} evaluate loss")
    assert abs(loss_a - loss_b) <= 1e-5 * abs(loss_a), f"{what}: loss {loss_a} vs {loss_b}"
    n = len(y_test)
    assert round(accuracy_a * n) == round(accuracy_b * n), f"{what}: {accuracy_a} vs {accuracy_b}"
    assert accuracy_a > 0.85, f"{what}: the trained model only reaches {accuracy_a:.3f}"

    classes_a = trained.predict(x_test, batch_size=1000, verbose=0).argmax(axis=-1)
    classes_b = loaded.predict(x_test, batch_size=1000, verbose=0).argmax(axis=-1)
    differ = np.flatnonzero(classes_a != classes_b)
    assert differ.size == 0, f"{what}: {differ.size} of {n} classes differ, e.g. image {differ[:5]}"


@pytest.fixture
def float32_mnist(mnist_data, keras_float32):
    (x_train, y_train), (x_test, y_test) = mnist_data
    return (images(x_train[:6000], "float32"), y_train[:6000].astype(np.int64)), (
        images(x_test, "float32"),
        y_test.astype(np.int64),
    )


def test_keras_trained_weights_in_ours(float32_mnist):
    """A Keras-trained model (1 epoch on 6000 images) loaded into ours: same evaluate() and the
    same predicted class for all 10000 test images."""
    (x, y), (x_test, y_test) = float32_mnist
    keras.utils.set_random_seed(1)
    keras_model, ours = keras_tutorial(), our_tutorial()
    compile_both(keras_model, ours, "adam", "adam", metrics=["accuracy"])
    keras_model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    ours.set_weights(keras_model.get_weights())
    assert_same_evaluation_and_classes(keras_model, ours, x_test, y_test, "Keras -> ours")


def test_our_trained_weights_in_keras(float32_mnist):
    """Ours trained (1 epoch on 6000 images) loaded into Keras: same evaluate() and classes."""
    (x, y), (x_test, y_test) = float32_mnist
    utils.set_random_seed(1)
    keras_model, ours = keras_tutorial(), our_tutorial()
    compile_both(keras_model, ours, "adam", "adam", metrics=["accuracy"])
    ours.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, seed=1)
    keras_model.set_weights(ours.get_weights())
    assert_same_evaluation_and_classes(ours, keras_model, x_test, y_test, "ours -> Keras")
