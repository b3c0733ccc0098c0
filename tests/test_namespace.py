"""The Keras namespace: a Keras program runs on xpcnn with only its import lines changed."""

import textwrap

import pytest

import engine
import layers
import optim
from tests.conftest import DATA_DIR

# The tutorial's program (../shared/seed), its imports changed from keras to engine.
TUTORIAL = """
from engine import datasets, layers, models
import engine as keras

keras.utils.set_random_seed(0)

(train_images, train_labels), (test_images, test_labels) = datasets.mnist.load_data()
train_images = train_images[:LIMIT].reshape((LIMIT, 28, 28, 1)) / 255.0
train_labels = train_labels[:LIMIT]
test_images = test_images[:500].reshape((500, 28, 28, 1)) / 255.0
test_labels = test_labels[:500]
model = models.Sequential([
    layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
    layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation='relu'),
    layers.MaxPooling2D((2, 2)),
    layers.Flatten(),
    layers.Dense(64, activation='relu'),
    layers.Dense(10),
])
model.summary()
model.compile(optimizer='adam',
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=['accuracy'])
history = model.fit(train_images, train_labels, epochs=1, verbose=0,
                    validation_data=(test_images, test_labels))
pre = model.predict(test_images)
"""


def test_the_tutorial_runs_with_its_imports_changed(monkeypatch):
    if not (DATA_DIR / "mnist").is_dir():
        pytest.skip(f"MNIST files not found in {DATA_DIR / 'mnist'}")
    monkeypatch.setenv("XPCNN_DATA_DIR", str(DATA_DIR))
    scope = {"LIMIT": 2000}
    exec(textwrap.dedent(TUTORIAL), scope)
    assert scope["history"].history["val_accuracy"][0] > 0.7  # chance is 0.1
    assert scope["pre"].shape == (500, 10)


def test_engine_is_the_keras_namespace():
    keras = engine
    assert keras.layers.Conv2D is layers.Conv2D and keras.layers.Input is keras.Input
    assert keras.optimizers.Adam is optim.Adam
    assert keras.models.Sequential is keras.Sequential
    assert keras.models.Model is keras.Model and keras.models.load_model is keras.load_model
    for module, names in {
        keras.losses: ["SparseCategoricalCrossentropy", "MeanSquaredError", "get"],
        keras.metrics: ["SparseCategoricalAccuracy", "Precision", "Mean", "get"],
        keras.callbacks: ["Callback", "History", "ModelCheckpoint"],
        keras.datasets: ["mnist", "fashion_mnist", "cifar10", "image_dataset_from_directory"],
        keras.utils: ["set_random_seed", "to_categorical", "PyDataset"],
        keras.config: ["floatx", "set_floatx", "backend"],
        keras.regularizers: ["L1", "L2", "L1L2"],
        keras.initializers: ["get"],
    }.items():
        for name in names:
            assert hasattr(module, name), f"{module.__name__} lacks {name}"
    from engine.layers import Dense  # noqa: F401  (as `from keras.layers import Dense`)
    from engine.optimizers import SGD  # noqa: F401

    assert keras.utils.image_dataset_from_directory is keras.datasets.image_dataset_from_directory
    with pytest.raises(AttributeError, match="no attribute 'no_such_helper'"):
        keras.utils.no_such_helper  # noqa: B018
    assert keras.config.floatx() == "float32"
    with pytest.raises(AttributeError, match="no attribute 'Lambda'"):
        keras.layers.Lambda  # noqa: B018


def test_a_functional_program_runs_with_its_imports_changed(rng):
    keras = engine
    inputs = keras.Input(shape=(8,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.Concatenate()([x, inputs]))
    model = keras.Model(inputs=inputs, outputs=outputs, name="small")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x_data, y_data = rng.random((64, 8)), rng.integers(0, 3, 64)
    history = model.fit(x_data, y_data, batch_size=16, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    assert model.predict(x_data).shape == (64, 3)


@pytest.mark.parametrize(
    "module", ["engine", "layers", "optim", "engine.model", "engine.trainer", "optim.schedules"]
)
def test_any_package_can_be_imported_first(module):
    """No import cycle catches a program that starts with another import than `engine`."""
    import subprocess
    import sys

    from tests.conftest import REPO

    result = subprocess.run(
        [sys.executable, "-c", f"import {module}; import engine; engine.Sequential"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
