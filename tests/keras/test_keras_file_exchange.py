"""Keras and xpcnn exchange .keras archives and .weights.h5 files both ways: files Keras
writes in this run open in xpcnn, files xpcnn writes open in Keras, and both predict the
same (outputs to float32 rounding, the same classes on the MNIST test set)."""

import keras
import numpy as np
import pytest
from test_keras_graphs import nested, residual, two_outputs

import engine

pytestmark = pytest.mark.keras


def tutorial(k):
    return k.Sequential(
        [
            k.Input((28, 28, 1)),
            k.layers.Conv2D(8, 3, activation="relu"),
            k.layers.MaxPooling2D(2),
            k.layers.Conv2D(8, 3, activation="relu"),
            k.layers.MaxPooling2D(2),
            k.layers.Flatten(),
            k.layers.Dense(16, activation="relu"),
            k.layers.Dense(10),
        ]
    )


MODELS = {
    "residual": (residual, (6, 6, 3), "mse", 4),
    "nested": (nested, (5,), "mse", 2),
    "two_outputs": (two_outputs, (8,), ["mse", "mse"], [3, 1]),
}


def _data(shape, outputs, rng):
    x = rng.random((24, *shape)).astype("float32")
    if isinstance(outputs, list):
        return x, [rng.random((24, n)).astype("float32") for n in outputs]
    return x, rng.random((24, outputs)).astype("float32")


def _compile(model, loss):
    model.compile(optimizer="adam", loss=loss)


@pytest.mark.parametrize("name", list(MODELS))
def test_keras_archives_open_in_xpcnn(name, tmp_path, keras_float32):
    build, shape, loss, outputs = MODELS[name]
    x, y = _data(shape, outputs, np.random.default_rng(0))
    k_model = build(keras)
    _compile(k_model, loss)
    k_model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    k_model.save(tmp_path / "k.keras")
    k_model.save_weights(tmp_path / "k.weights.h5")
    ours = engine.load_model(tmp_path / "k.keras")
    _close(ours.predict(x), k_model.predict(x, verbose=0))
    assert ours.optimizer.iterations == int(k_model.optimizer.iterations.value) == 3
    twin = build(engine)
    twin.load_weights(tmp_path / "k.weights.h5")
    _close(twin.predict(x), k_model.predict(x, verbose=0))
    assert ours.evaluate(x, y) == pytest.approx(k_model.evaluate(x, y, verbose=0), rel=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
# The twin's optimizer is not built before load_weights; Keras then skips the optimizer state.
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_xpcnn_archives_open_in_keras(name, tmp_path, keras_float32):
    build, shape, loss, outputs = MODELS[name]
    x, y = _data(shape, outputs, np.random.default_rng(1))
    ours = build(engine)
    _compile(ours, loss)
    ours.fit(x, y, batch_size=8, epochs=1, verbose=0)
    ours.save(tmp_path / "ours.keras")
    ours.save_weights(tmp_path / "ours.weights.h5")
    k_model = keras.models.load_model(tmp_path / "ours.keras")
    _close(k_model.predict(x, verbose=0), ours.predict(x))
    assert int(k_model.optimizer.iterations.value) == ours.optimizer.iterations == 3
    twin = build(keras)
    _compile(twin, loss)
    twin.load_weights(tmp_path / "ours.weights.h5")
    _close(twin.predict(x, verbose=0), ours.predict(x))
    # Keras continues from our optimizer state as we do.
    k_model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    ours.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(k_model.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _close(a, b):
    for p, q in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)


def test_the_tutorial_trained_by_either_classifies_mnist_the_same_in_the_other(
    mnist_data, tmp_path, keras_float32
):
    (x_train, y_train), (x_test, _) = mnist_data
    x_train = (x_train[:3000].reshape(-1, 28, 28, 1) / 255.0).astype("float32")
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255.0).astype("float32")
    for trained_by, opened_by in ((keras, engine), (engine, keras)):
        model = tutorial(trained_by)
        loss = trained_by.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
        model.fit(x_train, y_train[:3000], batch_size=64, epochs=1, verbose=0)
        path = tmp_path / f"by_{trained_by.__name__}.keras"
        model.save(path)
        other = opened_by.models.load_model(path)
        classes = np.argmax(model.predict(x_test, verbose=0), axis=1)
        np.testing.assert_array_equal(np.argmax(other.predict(x_test, verbose=0), axis=1), classes)
        assert other.loss.from_logits


OPTIMIZERS = {
    "adamw_exponential_decay": lambda k: k.optimizers.AdamW(
        k.optimizers.schedules.ExponentialDecay(1e-2, 10, 0.5), weight_decay=0.01
    ),
    "adamax_clipnorm": lambda k: k.optimizers.Adamax(1e-2, clipnorm=1.0),
    "adam_cosine_warmup": lambda k: k.optimizers.Adam(
        k.optimizers.schedules.CosineDecay(1e-2, 100, warmup_target=2e-2, warmup_steps=5)
    ),
    "rmsprop_centered": lambda k: k.optimizers.RMSprop(1e-3, momentum=0.5, centered=True),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("direction", ["keras_to_xpcnn", "xpcnn_to_keras"])
def test_optimizers_and_schedules_resume_across_frameworks(
    name, direction, tmp_path, keras_float32
):
    """The optimizer, its options, schedule and state travel in the archive: one more epoch
    after loading gives the weights one more epoch gives where it was saved."""
    rng = np.random.default_rng(2)
    x, y = rng.random((16, 6)).astype("float32"), rng.random((16, 2)).astype("float32")
    saver, loader = (keras, engine) if direction == "keras_to_xpcnn" else (engine, keras)
    model = saver.Sequential(
        [saver.Input((6,)), saver.layers.Dense(4, activation="relu"), saver.layers.Dense(2)]
    )
    model.compile(OPTIMIZERS[name](saver), "mse")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = loader.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer).__name__ == type(model.optimizer).__name__
    for m in (model, loaded):
        m.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def zoo(k):
    """One model with a layer of (nearly) every kind, in the namespace ``k``."""
    L = k.layers
    inputs = k.Input((16, 16, 3))
    x = L.Rescaling(1 / 2.0, offset=0.1)(inputs)
    x = L.RandomFlip("horizontal")(x)
    x = L.RandomTranslation(0.1, 0.1)(x)
    x = L.RandomRotation(0.05)(x)
    x = L.RandomZoom(0.1)(x)
    x = L.RandomContrast(0.1)(x)
    x = L.ZeroPadding2D(1)(x)
    x = L.Conv2D(6, 3, dilation_rate=2, activation="gelu", kernel_regularizer="l2")(x)
    x = L.BatchNormalization()(x)
    x = L.LeakyReLU(0.2)(x)
    a = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    b = L.SeparableConv2D(12, 3, padding="same", activation="elu")(x)
    x = L.Concatenate()([a, b])
    x = L.Conv2D(8, 3, padding="same", groups=4)(x)
    x = L.PReLU()(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Conv2DTranspose(8, 3, strides=2, padding="same")(x)
    x = L.Cropping2D(2)(x)
    x = L.SpatialDropout2D(0.2)(x)
    x = L.MaxPooling2D(2)(x)
    x = L.UpSampling2D(2, interpolation="bilinear")(x)
    x = L.LayerNormalization()(x)
    g = L.GlobalAveragePooling2D()(x)
    m = L.GlobalMaxPooling2D()(x)
    x = L.Average()([L.Dense(8, activation="swish")(g), L.Dense(8)(m)])
    x = L.Reshape((2, 4))(x)
    x = L.Permute((2, 1))(x)
    x = L.Flatten()(x)
    x = L.Dropout(0.3)(x)
    outputs = L.Dense(3, activation="softmax")(x)
    return k.Model(inputs, outputs, name="zoo")


@pytest.mark.parametrize("direction", ["keras_to_xpcnn", "xpcnn_to_keras"])
def test_every_layer_kind_travels_in_an_archive(direction, tmp_path, keras_float32):
    rng = np.random.default_rng(3)
    x = rng.random((8, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 3, 8)
    saver, loader = (keras, engine) if direction == "keras_to_xpcnn" else (engine, keras)
    model = zoo(saver)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # moving statistics move, PReLU too
    model.save(tmp_path / "zoo.keras")
    loaded = loader.models.load_model(tmp_path / "zoo.keras")
    assert [type(layer).__name__ for layer in loaded.layers][1:] == [
        type(layer).__name__ for layer in model.layers
    ][1:]
    _close(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
