"""The keras-io "Simple MNIST convnet" example runs on xpcnn with only its imports changed
(https://keras.io/examples/vision/mnist_convnet/): to_categorical, Dropout, a softmax
output with categorical crossentropy, batches of 128 and validation_split=0.1.

The program below is the example's code; only ``import keras`` / ``from keras import
layers`` became ``import engine as keras`` / ``from engine import layers``. To keep the
test short, mnist.load_data hands it the first 1280 training and 500 test images (its 15
epochs are then 135 steps).
"""

import contextlib
import io
import re

import pytest

import engine
from engine.datasets import mnist

PROGRAM = """
import numpy as np
import engine as keras
from engine import layers

# Model / data parameters
num_classes = 10
input_shape = (28, 28, 1)

# Load the data and split it between train and test sets
(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()

# Scale images to the [0, 1] range
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
# Make sure images have shape (28, 28, 1)
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")


# convert class vectors to binary class matrices
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
)

model.summary()

batch_size = 128
epochs = 15

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
"""


@pytest.mark.slow
def test_the_keras_io_mnist_convnet_runs_with_its_imports_changed(monkeypatch, mnist_data):
    if not hasattr(engine.layers, "Dropout"):
        pytest.skip("layers.Dropout is not in this branch yet (it is written on another one)")
    (x_train, y_train), (x_test, y_test) = mnist_data
    subset = ((x_train[:1280], y_train[:1280]), (x_test[:500], y_test[:500]))
    monkeypatch.setattr(mnist, "load_data", lambda path=None: subset)
    engine.utils.set_random_seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(PROGRAM, {})
    text = out.getvalue()
    assert "x_train shape: (1280, 28, 28, 1)" in text
    assert re.search(r"^dropout(_\d+)? \(Dropout\) ", text, re.M)  # numbered as Keras
    epochs = re.findall(r"^Epoch (\d+)/15$", text, re.MULTILINE)
    assert epochs == [str(e) for e in range(1, 16)]
    # 1280 * 0.9 = 1152 training images: 9 steps of 128; the last 128 validate.
    lines = re.findall(
        r"^9/9 ━{20} .* - val_accuracy: (\d\.\d{4}) - val_loss: \d\.\d{4}$", text, re.M
    )
    assert len(lines) == 15
    accuracy = float(re.search(r"^Test accuracy: ([\d.]+)$", text, re.MULTILINE).group(1))
    assert accuracy > 0.8, text  # chance is 0.1
