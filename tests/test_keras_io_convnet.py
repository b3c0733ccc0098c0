"""The keras-io "Simple MNIST convnet" example runs on xpcnn with only its imports changed
(https://keras.io/examples/vision/mnist_convnet/): to_categorical, Dropout, a softmax
output with categorical crossentropy, batches of 128 and validation_split=0.1.

examples/keras_io_convnet.py is the example's code; only ``import keras`` / ``from keras
import layers`` became ``import engine as keras`` / ``from engine import layers``. To keep
the test short, mnist.load_data hands it the first 1280 training and 500 test images (its 15
epochs are then 135 steps).
"""

import contextlib
import io
import re
from pathlib import Path

import pytest

import engine
from engine.datasets import mnist

PROGRAM = (Path(__file__).resolve().parents[1] / "examples" / "keras_io_convnet.py").read_text()


@pytest.mark.slow
def test_the_keras_io_mnist_convnet_runs_with_its_imports_changed(monkeypatch, mnist_data):
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
