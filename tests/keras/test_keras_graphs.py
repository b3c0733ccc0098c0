"""Functional graphs against Keras: the same program builds each graph in both frameworks
(``k`` is ``keras`` or ``engine``: the Keras namespace), one set of weights goes into
both, and the outputs and every gradient (inputs and weights) must agree; then weights
trained on one side predict identically on the other."""

import keras
import numpy as np
import pytest
from keras_helpers import assert_models_match

import engine
import layers

pytestmark = pytest.mark.keras

RTOL = {"float64": 1e-10, "float32": 1e-5}


def residual(k):
    inputs = k.Input((6, 6, 3))
    x = k.layers.Conv2D(3, 3, padding="same", activation="tanh")(inputs)
    x = k.layers.Conv2D(3, 3, padding="same")(x)
    x = k.layers.ReLU()(k.layers.Add()([x, inputs]))
    x = k.layers.MaxPooling2D(2)(x)
    return k.Model(inputs, k.layers.Dense(4)(k.layers.Flatten()(x)))


def concat_branches(k):
    inputs = k.Input((6, 6, 2))
    a = k.layers.Conv2D(2, 3, padding="same", activation="sigmoid")(inputs)
    b = k.layers.Conv2D(3, 1, activation="relu")(inputs)
    x = k.layers.Concatenate()([a, b])
    return k.Model(inputs, k.layers.Dense(3)(k.layers.Flatten()(x)))


def shared_layer(k):
    a, b = k.Input((5,)), k.Input((5,))
    shared = k.layers.Dense(5, activation="tanh")
    x = k.layers.Add()([shared(a), shared(b)])
    return k.Model([a, b], k.layers.Dense(2)(shared(x)))


def two_outputs(k):
    inputs = k.Input((8,))
    hidden = k.layers.Dense(6, activation="relu")(inputs)
    return k.Model(
        inputs, [k.layers.Dense(3)(hidden), k.layers.Dense(1, activation="sigmoid")(hidden)]
    )


def nested(k):
    inner = k.Sequential([k.Input((5,)), k.layers.Dense(4, activation="tanh"), k.layers.Dense(3)])
    inputs = k.Input((5,))
    x = k.layers.Concatenate()([inner(inputs), k.layers.Dense(2)(inputs)])
    return k.Model(inputs, k.layers.Dense(2)(x))


def merges(k):
    a, b, c = k.Input((4,)), k.Input((4,)), k.Input((4,))
    ops = [
        k.layers.Subtract()([a, b]),
        k.layers.Multiply()([a, b, c]),
        k.layers.Average()([a, b, c]),
        k.layers.Maximum()([a, b]),
        k.layers.Minimum()([b, c]),
        k.layers.Concatenate(axis=1)([a, c]),
    ]
    return k.Model([a, b, c], k.layers.Dense(3)(k.layers.Concatenate()(ops)))


def broadcast_add(k):
    a, b = k.Input((3, 3, 2)), k.Input((1, 1, 2))
    return k.Model([a, b], k.layers.Flatten()(k.layers.Add()([a, b])))


GRAPHS = {
    "residual": (residual, [(3, 6, 6, 3)]),
    "concat": (concat_branches, [(2, 6, 6, 2)]),
    "shared": (shared_layer, [(3, 5), (3, 5)]),
    "two_outputs": (two_outputs, [(4, 8)]),
    "nested": (nested, [(3, 5)]),
    "merges": (merges, [(3, 4)] * 3),
    "broadcast_add": (broadcast_add, [(2, 3, 3, 2), (2, 1, 1, 2)]),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_graph_matches_keras(name, floatx):
    build, shapes = GRAPHS[name]
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(s).astype(floatx) for s in shapes]
    k_model, ours = build(keras), build(engine)
    assert [type(layer).__name__ for layer in ours.layers] == [
        "Model" if type(layer).__name__ == "Functional" else type(layer).__name__
        for layer in k_model.layers
    ]
    assert_models_match(k_model, ours, inputs, RTOL[floatx])


def test_merge_and_input_layers_are_covered():
    """Every layer this file checks, for the coverage list of test_keras_layers.py."""
    tested = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}
    assert tested | {"Input", "InputLayer"} <= set(layers.__all__)


def test_functional_weights_exchange_both_ways(keras_float64):
    """Keras's weights in ours and ours in Keras predict the same, for a functional model."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 6, 6, 2))
    k_model, ours = concat_branches(keras), concat_branches(engine)
    k_model.set_weights([rng.standard_normal(w.shape) for w in k_model.get_weights()])
    ours.set_weights(k_model.get_weights())
    np.testing.assert_allclose(ours.predict(x), k_model.predict(x, verbose=0), rtol=1e-12)
    ours.compile("adam", "mse")
    ours.fit(x, rng.standard_normal((16, 3)), epochs=2, verbose=0)
    k_model.set_weights(ours.get_weights())
    np.testing.assert_allclose(k_model.predict(x, verbose=0), ours.predict(x), rtol=1e-12)
