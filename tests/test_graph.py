"""The graph core: the functional API, shared and nested models, several inputs and
outputs, frozen layers and non-trainable state, modes and randomness, fusion in any graph."""

import re

import numpy as np
import pytest

import engine
from engine import Input, Model, Sequential, backend, losses
from engine.context import Context
from layers import (
    Add,
    Concatenate,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPooling2D,
    ReLU,
    Softmax,
    conv_pool,
)
from tests.gradient_check import check_model_gradients

# -- small graphs used below -----------------------------------------------------------


def residual_block(shape=(6, 6, 3)):
    inputs = Input(shape)
    x = Conv2D(3, 3, padding="same", activation="tanh")(inputs)
    x = Conv2D(3, 3, padding="same")(x)
    x = ReLU()(Add()([x, inputs]))
    outputs = Dense(4)(Flatten()(x))
    return Model(inputs, outputs, name="residual")


def concat_branches(shape=(6, 6, 2)):
    inputs = Input(shape)
    a = Conv2D(2, 3, padding="same", activation="sigmoid")(inputs)
    b = Conv2D(3, 1)(inputs)
    x = Concatenate()([a, b])
    return Model(inputs, Dense(3)(Flatten()(x)))


def shared_dense():
    """One Dense called on two inputs, and on its own output."""
    a, b = Input((5,), name="a"), Input((5,), name="b")
    shared = Dense(5, activation="tanh", name="shared")
    x = Add()([shared(a), shared(b)])
    return Model([a, b], Dense(2)(shared(x))), shared


def two_outputs(shape=(8,)):
    inputs = Input(shape)
    hidden = Dense(6, activation="relu")(inputs)
    return Model(inputs, [Dense(3, name="classes")(hidden), Dense(1, name="value")(hidden)])


def nested(shape=(5,)):
    inner = Sequential([Dense(4, activation="tanh", input_shape=shape), Dense(3)], name="inner")
    inputs = Input(shape)
    x = inner(inputs)
    return Model(inputs, Dense(2)(Concatenate()([x, inner(inputs)]))), inner


# -- gradient checks of whole graphs (float64, central differences) ----------------------

GRAPHS = {
    "residual block": (residual_block, [(3, 6, 6, 3)]),
    "concat branches": (concat_branches, [(2, 6, 6, 2)]),
    "shared layer": (lambda: shared_dense()[0], [(3, 5), (3, 5)]),
    "two outputs": (two_outputs, [(4, 8)]),
    "nested model": (lambda: nested()[0], [(3, 5)]),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_whole_graph_gradients(name, backend_name, float64, rng):
    make, shapes = GRAPHS[name]
    model = make()
    for w in model.weights:  # biases away from zero, so a missing one would show
        w[...] = backend.to_device(rng.standard_normal(w.shape) * 0.5)
    inputs = [backend.to_device(rng.standard_normal(s)) for s in shapes]
    check_model_gradients(model, inputs, rng)


def test_shared_layer_has_one_set_of_weights_and_summed_gradients(float64, rng):
    model, shared = shared_dense()
    assert [layer.name for layer in model.layers].count("shared") == 1
    assert len(model.weights) == 4  # the shared Dense's two arrays, and the head's
    assert len(shared.inbound_nodes) == 3
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    _, tape = model.forward_with_tape([a, b])
    dy = rng.standard_normal((3, 2))
    _, grads = tape.backward([dy], [shared.kernel])
    # The same gradient by hand: the sum over the three calls of x_call^T dz_call.
    kernel, bias = shared.kernel, shared.bias
    ha, hb = np.tanh(a @ kernel + bias), np.tanh(b @ kernel + bias)
    s = ha + hb
    hs = np.tanh(s @ kernel + bias)
    head = model.layers[-1]
    dhs = (dy @ head.kernel.T) * (1 - hs**2)
    ds = dhs @ kernel.T
    dza, dzb = ds * (1 - ha**2), ds * (1 - hb**2)
    expected = s.T @ dhs + a.T @ dza + b.T @ dzb
    np.testing.assert_allclose(grads[0], expected, rtol=1e-12)


# -- building graphs ---------------------------------------------------------------------


def test_functional_model_api(rng):
    model = residual_block()
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "Conv2D",
        "Conv2D",
        "Add",
        "ReLU",
        "Flatten",
        "Dense",
    ]
    assert model.get_layer(model.layers[2].name) is model.layers[2]
    assert model.get_layer(index=-1) is model.layers[-1]
    assert model.input.shape == (None, 6, 6, 3) and model.output.shape == (None, 4)
    assert model.input_shape == (6, 6, 3) and model.output_shape == (4,)
    conv = model.layers[1]
    assert conv.input is model.input and conv.output.shape == (None, 6, 6, 3)
    x = rng.standard_normal((2, 6, 6, 3)).astype("float32")
    np.testing.assert_array_equal(model(x), model.predict(x))
    with pytest.raises(ValueError, match="No such layer: 'nope'"):
        model.get_layer("nope")


def test_model_layers_and_weights_follow_keras_depth_order():
    """Keras orders a functional model's layers by depth from the outputs (ties by the order
    its graph walk reached them), which is also the get_weights() order."""
    inputs = Input((4,))
    late = Dense(3, name="late")
    early = Dense(3, name="early")
    x = early(inputs)
    y = Add()([late(inputs), Dense(3, name="middle")(x)])
    model = Model(inputs, y)
    assert [layer.name for layer in model.layers[1:]] == [
        "early",
        "late",
        "middle",
        model.layers[-1].name,
    ]


def test_graph_errors_name_the_problem():
    a, b = Input((3,)), Input((4,))
    with pytest.raises(ValueError, match="Graph disconnected"):
        Model(a, Dense(2)(b))
    with pytest.raises(TypeError, match="tensors"):
        Model(a, np.zeros(3))
    with pytest.raises(ValueError, match=r"\(None, 3\).*\(None, 4\)"):
        Add()([a, b])
    with pytest.raises(ValueError, match="list of tensors"):
        Add()(a)
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        engine.layers.Subtract()([a, a, a])
    x = Dense(2, name="twin")(a)
    with pytest.raises(ValueError, match="'twin' is used by 2 layers"):
        Model(a, Dense(2, name="twin")(x))
    with pytest.raises(ValueError, match="Concatenate.*axis -1.*\\(None, 3\\).*\\(None, 2, 2\\)"):
        Concatenate()([a, Input((2, 2))])


def test_layer_called_on_an_incompatible_tensor_changes_nothing():
    dense = Dense(2)
    dense(Input((3,)))
    weights = [w.copy() for w in dense.weights]
    with pytest.raises(ValueError, match="built for inputs"):
        dense(Input((4,)))
    assert len(dense.inbound_nodes) == 1
    assert all(np.array_equal(a, b) for a, b in zip(weights, dense.weights))


def test_sequential_is_a_chain_of_the_graph():
    model = Sequential([Input((6, 6, 1)), Conv2D(2, 3), Flatten(), Dense(3)])
    assert model.built and model.input_shape == (6, 6, 1) and model.output_shape == (3,)
    assert [type(layer).__name__ for layer in model.layers] == ["Conv2D", "Flatten", "Dense"]
    assert model.layers[0].input is model.input
    model.add(Softmax())
    assert model.output_shape == (3,) and len(model.layers) == 4
    assert model.pop().__class__ is Softmax and len(model.layers) == 3
    with pytest.raises(ValueError, match="expects inputs of shape .height, width, channels."):
        model.add(Conv2D(1, 1))
    assert len(model.layers) == 3


# -- reusing trained layers -----------------------------------------------------------------


def trained_tutorial_like(rng):
    model = Sequential(
        [
            Conv2D(3, 3, activation="relu", input_shape=(8, 8, 1)),
            MaxPooling2D(2),
            Flatten(),
            Dense(4),
        ]
    )
    model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = rng.random((32, 8, 8, 1)).astype("float32"), rng.integers(0, 4, 32)
    model.fit(x, y, epochs=2, verbose=0, seed=0)
    return model, x


def test_built_layers_keep_their_weights_in_a_new_model(rng):
    """Sequential(model.layers + [Softmax()]) and Sequential([model, Softmax()]) share the
    trained arrays (they are not re-initialised) and predict the softmax of the old scores."""
    model, x = trained_tutorial_like(rng)
    scores = model.predict(x)
    before = model.get_weights()
    for new in (Sequential(model.layers + [Softmax()]), Sequential([model, Softmax()])):
        assert new.built
        assert all(a is b for a, b in zip(new.weights, model.weights, strict=True))
        probs = new.predict(x)
        e = np.exp(scores - scores.max(1, keepdims=True))
        np.testing.assert_allclose(probs, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(model.predict(x), scores)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_feature_extractor_shares_the_trained_weights(rng):
    model, x = trained_tutorial_like(rng)
    conv = model.layers[0]
    extractor = Model(model.inputs, model.get_layer(conv.name).output)
    maps = extractor.predict(x)
    expected = np.maximum(conv(x), 0)
    np.testing.assert_allclose(maps, expected, rtol=1e-6)
    assert extractor.weights[0] is conv.kernel
    # Training the model moves what the extractor sees.
    model.fit(x, rng.integers(0, 4, 32), epochs=1, verbose=0, seed=1)
    assert not np.allclose(extractor.predict(x), maps)


# -- frozen layers and non-trainable state -------------------------------------------------


class Counter(Layer):
    """y = x * scale; counts the training calls it sees in a non-trainable weight."""

    def build(self, input_shape):
        super().build(input_shape)
        self.scale = self.add_weight("scale", input_shape, "ones")
        self.calls = self.add_weight("calls", (), "zeros", trainable=False)

    def forward(self, x, ctx):
        if ctx.training:
            self.calls += 1
        if ctx.for_backward:
            ctx.x = x
        return x * self.scale

    def backward(self, ctx, dy):
        if ctx.needs_weight_grads:
            ctx.grads["scale"] = (dy * ctx.x).sum(axis=0)
        return dy * self.scale if ctx.needs_input_grad[0] else None


def test_non_trainable_weights_are_saved_and_counted_but_never_optimized(rng, tmp_path):
    counter = Counter()
    model = Sequential([Dense(3, input_shape=(4,)), counter, Dense(2)])
    assert len(model.trainable_weights) == 5 and model.non_trainable_weights == [counter.calls]
    model.compile("sgd", "mse")
    x, y = rng.random((12, 4)), rng.random((12, 2))
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert float(counter.calls) == 6  # six training steps; the optimizer left it alone
    model.predict(x)
    assert float(counter.calls) == 6  # inference is not training
    assert model.get_weights()[2:4][1].shape == ()  # get_weights: scale, then calls
    lines = []
    model.summary(print_fn=lines.append)
    assert "Non-trainable params: 1 (4.00 B)" in lines[0]
    model.save(tmp_path / "m.npz")
    loaded = engine.load_model(tmp_path / "m.npz", custom_objects={"Counter": Counter})
    assert float(loaded.layers[1].calls) == 6
    with pytest.raises(engine.WeightFileError, match="unknown layer 'Counter'"):
        engine.load_model(tmp_path / "m.npz")


def test_frozen_layer_gets_no_gradient_and_keeps_its_weights(rng):
    model = Sequential([Dense(5, input_shape=(4,), name="base"), Dense(2, name="head")])
    base = model.get_layer("base")
    base.trainable = False
    assert model.trainable_weights == model.get_layer("head").weights
    assert len(model.non_trainable_weights) == 2
    model.compile("adam", "mse")
    before = base.get_weights()
    model.fit(rng.random((16, 4)), rng.random((16, 2)), epochs=2, verbose=0)
    for a, b in zip(base.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    plan = model._plan()
    assert not plan.steps[0].needs_backward  # the frozen prefix runs no backward at all
    assert len(model.optimizer.slots) == 2


def test_freezing_a_nested_model_freezes_its_layers(rng):
    model, x = trained_tutorial_like(rng)
    outer = Sequential([model, Softmax()])
    model.trainable = False
    assert all(not layer.trainable for layer in model.layers)
    assert outer.trainable_weights == [] and len(outer.non_trainable_weights) == 4
    model.trainable = True
    assert len(outer.trainable_weights) == 4


# -- modes and randomness ----------------------------------------------------------------------


class Noise(Layer):
    """Adds noise drawn from ctx.rng in training mode; records what each call was told."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def forward(self, x, ctx):
        self.seen.append((ctx.training, ctx.for_backward))
        if not ctx.training:
            return x
        return x + backend.to_device(ctx.rng.standard_normal(x.shape).astype(x.dtype))

    def backward(self, ctx, dy):
        return dy


def noisy_model():
    return Sequential([Dense(3, input_shape=(4,)), Noise(), Dense(2)])


def test_training_mode_is_told_apart_from_keeping_for_backward(rng):
    model = noisy_model()
    noise = model.layers[1]
    x = rng.random((5, 4)).astype("float32")
    model(x)
    model(x, training=True)
    model.forward_with_tape(x)
    model.forward_with_tape(x, training=False)
    assert noise.seen == [(False, False), (True, False), (True, True), (False, True)]
    np.testing.assert_array_equal(model(x), model(x))


def test_random_draws_depend_on_seed_epoch_and_step_so_resuming_is_exact(rng, tmp_path):
    x, y = rng.random((24, 4)).astype("float32"), rng.random((24, 2)).astype("float32")

    def fresh():
        engine.utils.set_random_seed(0)
        model = noisy_model()
        model.compile("adam", "mse")
        return model

    straight = fresh()
    straight.fit(x, y, batch_size=8, epochs=3, seed=5, verbose=0)
    resumed = fresh()
    resumed.fit(x, y, batch_size=8, epochs=1, seed=5, verbose=0)
    resumed.save(tmp_path / "after1.npz")
    loaded = engine.load_model(tmp_path / "after1.npz", custom_objects={"Noise": Noise})
    loaded.fit(x, y, batch_size=8, epochs=3, initial_epoch=1, seed=5, verbose=0)
    for a, b in zip(straight.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = fresh()
    other.fit(x, y, batch_size=8, epochs=3, seed=6, verbose=0)
    assert not np.array_equal(other.get_weights()[0], straight.get_weights()[0])


# -- several inputs and outputs -----------------------------------------------------------------


def test_two_outputs_train_with_a_loss_each_and_loss_weights(rng):
    model = two_outputs()
    model.compile(
        "adam",
        loss={"classes": losses.SparseCategoricalCrossentropy(from_logits=True), "value": "mse"},
        loss_weights={"classes": 1.0, "value": 0.5},
        metrics={"classes": ["accuracy"]},
    )
    x = rng.random((20, 8)).astype("float32")
    labels, values = rng.integers(0, 3, 20), rng.random((20, 1)).astype("float32")
    history = model.fit(x, [labels, values], batch_size=5, epochs=2, verbose=0, seed=0)
    assert list(history.history) == ["loss", "classes_loss", "value_loss", "classes_accuracy"]
    logs = model.evaluate(x, {"classes": labels, "value": values}, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["classes_loss"] + 0.5 * logs["value_loss"])
    classes, value = model.predict(x)
    assert classes.shape == (20, 3) and value.shape == (20, 1)
    assert logs["classes_accuracy"] == pytest.approx(np.mean(classes.argmax(1) == labels))


def test_an_output_without_loss_is_not_trained_on(rng):
    model = two_outputs()
    model.compile("sgd", loss=[None, "mse"])
    x, values = rng.random((10, 8)), rng.random((10, 1))
    head = model.get_layer("classes")
    before = head.get_weights()
    history = model.fit(x, values, epochs=1, verbose=0)
    assert list(history.history) == ["loss", "value_loss"]
    for a, b in zip(head.get_weights(), before):
        np.testing.assert_array_equal(a, b)  # a zero gradient: SGD leaves it
    with pytest.raises(ValueError, match="loss has 3 entries; the model has 2 outputs"):
        model.compile("sgd", loss=["mse", "mse", "mse"])


def test_two_inputs_by_list_and_by_name(rng):
    model, _ = shared_dense()
    model.compile("adam", "mse")
    a, b, y = rng.random((6, 5)), rng.random((6, 5)), rng.random((6, 2))
    model.fit([a, b], y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.predict([a, b]), model.predict({"a": a, "b": b}))
    with pytest.raises(ValueError, match="takes 2 inputs"):
        model.predict([a])
    with pytest.raises(ValueError, match="input 'b'.*\\(N, 5\\)"):
        model.predict([a, b[:, :3]])


def test_model_save_and_load_keeps_the_graph(rng, tmp_path):
    model, _ = nested()
    model.compile("adam", "mse")
    x, y = rng.random((8, 5)).astype("float32"), rng.random((8, 2)).astype("float32")
    model.fit(x, y, epochs=1, verbose=0, seed=0)
    model.save(tmp_path / "graph.npz")
    loaded = engine.load_model(tmp_path / "graph.npz")
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    inner = loaded.get_layer("inner")
    assert len(inner.inbound_nodes) == 2  # still called twice: one set of weights
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    model.fit(x, y, epochs=2, initial_epoch=1, verbose=0, seed=0)
    loaded.fit(x, y, epochs=2, initial_epoch=1, verbose=0, seed=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    shared, _ = shared_dense()
    shared.save(tmp_path / "shared.npz")
    again = engine.load_model(tmp_path / "shared.npz")
    a, b = rng.random((3, 5)).astype("float32"), rng.random((3, 5)).astype("float32")
    np.testing.assert_array_equal(again.predict([a, b]), shared.predict([a, b]))


# -- the engine's planning: fusion in any graph, gradients only where needed ----------------------


def test_fusion_pass_runs_on_functional_graphs_too():
    inputs = Input((8, 8, 1))
    x = MaxPooling2D(2)(Conv2D(2, 3, activation="relu")(inputs))
    model = Model(inputs, Dense(2)(Flatten()(x)))
    kinds = [type(step.layer) for step in model._plan().steps]
    assert kinds[0] is conv_pool.ConvPool2x2 and len(kinds) == 3
    # A conv output read twice, or one that is a model output, is not fused away.
    conv = Conv2D(2, 3, activation="relu")
    y = conv(inputs)
    both = Model(inputs, [MaxPooling2D(2)(y), y])
    assert conv in [step.layer for step in both._plan().steps]
    backend.set_fusion(False)
    try:
        assert [type(s.layer) for s in model._plan().steps][0] is Conv2D
    finally:
        backend.set_fusion(True)


def test_functional_and_sequential_tutorials_compute_the_same(rng, float64):
    engine.utils.set_random_seed(1)
    seq = Sequential(
        [
            Conv2D(4, 3, activation="relu", input_shape=(10, 10, 1)),
            MaxPooling2D(2),
            Flatten(),
            Dense(3),
        ]
    )
    inputs = Input((10, 10, 1))
    x = inputs
    for layer in [Conv2D(4, 3, activation="relu"), MaxPooling2D(2), Flatten(), Dense(3)]:
        x = layer(x)
    functional = Model(inputs, x)
    functional.set_weights(seq.get_weights())
    x, y = rng.random((32, 10, 10, 1)), rng.integers(0, 3, 32)
    for model in (seq, functional):
        model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=8, epochs=2, seed=3, verbose=0)
    for a, b in zip(seq.get_weights(), functional.get_weights()):
        np.testing.assert_array_equal(a, b)


class InputGradientSpy(Dense):
    def backward(self, ctx, dy):
        self.asked = ctx.needs_input_grad
        return super().backward(ctx, dy)


def test_the_first_layer_is_not_asked_for_the_input_gradient(rng):
    first, second = InputGradientSpy(3), InputGradientSpy(2)
    model = Sequential([first, second])
    model.build((4,))
    model.compile("sgd", "mse")
    model.train_on_batch(rng.random((2, 4)), rng.random((2, 2)))
    assert first.asked == (False,) and second.asked == (True,)


def test_train_step_can_be_overridden(rng):
    class Halved(Model):
        """A model whose train_step scales every gradient by one half."""

        def train_step(self, data):
            x, y, sample_weight = data
            loss, losses_, y_pred, grads = self.compute_loss_and_gradients(x, y)
            self.optimizer.apply([g * 0.5 for g in grads], self.trainable_weights)
            return self.compute_metrics(x, y, y_pred, sample_weight, loss, losses_)

    inputs = Input((3,))
    dense = Dense(1, kernel_initializer="ones")
    model = Halved(inputs, dense(inputs))
    model.compile(engine.optimizers.SGD(1.0), "mse")
    x, y = np.ones((1, 3)), np.zeros((1, 1))
    model.fit(x, y, epochs=1, verbose=0)
    # d mse / d kernel = 2 * 3 * x = 6 per element; halved and applied at rate 1: 1 - 3.
    np.testing.assert_allclose(dense.get_weights()[0], np.full((3, 1), -2.0))


def test_tape_backward_runs_once(rng):
    model = Sequential([Dense(2, input_shape=(3,))])
    y, tape = model.forward_with_tape(rng.random((2, 3)))
    tape.backward([np.ones_like(y)], model.trainable_weights)
    with pytest.raises(RuntimeError, match="each forward serves one backward"):
        tape.backward([np.ones_like(y)], model.trainable_weights)


def test_eager_layer_call_uses_an_inference_context(rng):
    layer = Dense(2)
    y = layer(rng.random((3, 4)))
    assert layer.built and y.shape == (3, 2)
    ctx = Context()
    with pytest.raises(RuntimeError, match="forward did not keep"):
        layer.backward(ctx, np.ones((3, 2)))


def test_a_graph_summary_shows_each_layers_inputs_in_its_own_column():
    inputs = Input((8,), name="features")
    hidden = Dense(4, name="hidden")(inputs)
    outputs = Add(name="sum")([hidden, Dense(4, name="skip")(inputs)])
    lines = []
    Model(inputs, outputs).summary(print_fn=lines.append)
    table = lines[0].splitlines()
    header = next(line for line in table if line.startswith("Layer (type)"))
    assert re.search(r"Param #\s{2,}Connected to$", header)
    rows = {line.split()[0]: line for line in table if line.split()[:1] and "(" in line}
    assert re.search(r"\b36\s{2,}features\[0\]\[0\]$", rows["hidden"])  # 8 * 4 + 4
    assert re.search(r"\b0\s{2,}hidden\[0\]\[0\], skip\[0\]\[0\]$", rows["sum"])
    assert rows["features"].endswith(" -")
