"""What fit, evaluate and predict take besides (x, y): sample and class weights,
validation_split, and datasets (PyDataset-style objects and generators), against results
computed by hand or by an equivalent run on arrays."""

import warnings

import numpy as np
import pytest

import engine
import optim
from engine import Sequential, backend, losses, utils
from layers import Dense


def dense_model(seed=0, loss="sparse_categorical_crossentropy", metrics=None, units=3, **compile):
    utils.set_random_seed(seed)
    model = Sequential([Dense(units, input_shape=(4,))])
    if loss == "sparse_categorical_crossentropy":
        loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optim.SGD(0.1), loss, metrics=metrics, **compile)
    return model


def data(n=12, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype("float32"), rng.integers(0, classes, n)


def same_weights(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


# -- sample weights --------------------------------------------------------------------------


def test_weighted_loss_is_the_weighted_sum_over_the_batch_size(backend_name):
    x, y = data()
    w = np.linspace(0, 2, 12)
    model = dense_model()
    logits = model.predict(x, verbose=0).astype(np.float64)
    per_sample = np.log(np.exp(logits).sum(1)) - logits[np.arange(12), y]
    expected = (w * per_sample).sum() / 12  # N, not the weights' sum, as Keras
    assert model.evaluate(x, y, sample_weight=w, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(per_sample.mean(), rel=1e-5)
    by_batch = model.evaluate(x, y, sample_weight=w, batch_size=5, verbose=0)
    assert by_batch == pytest.approx(expected, rel=1e-5)  # batch means weighted by batch size


def test_a_zero_weight_removes_a_sample_from_the_step():
    """With weights (1, 0), a step equals one on the first sample alone at half the rate:
    the weighted loss is still divided by the batch's 2 samples."""
    x, y = data(2)
    weighted, alone = dense_model(), dense_model()
    weighted.fit(x, y, batch_size=2, sample_weight=np.array([1.0, 0.0]), shuffle=False, verbose=0)
    alone.optimizer.learning_rate = 0.05
    alone.fit(x[:1], y[:1], batch_size=1, verbose=0)
    for a, b in zip(weighted.get_weights(), alone.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_weights_follow_their_samples_through_the_shuffle():
    x, y = data(16)
    w = np.arange(16) % 3 / 2
    a, b = dense_model(), dense_model()
    a.fit(x, y, batch_size=4, sample_weight=w, seed=3, verbose=0)
    order = np.random.default_rng([3, 0]).permutation(16)  # the order fit draws for epoch 0
    b.fit(x[order], y[order], batch_size=4, sample_weight=w[order], shuffle=False, verbose=0)
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-6)


def test_weighted_metrics_use_the_weights_and_plain_metrics_do_not():
    x, y = data()
    w = (np.arange(12) < 6).astype(float)  # only the first half counts
    model = dense_model(metrics=["accuracy"], weighted_metrics=["accuracy"])
    hits = model.predict(x, verbose=0).argmax(1) == y
    logs = model.evaluate(x, y, sample_weight=w, return_dict=True, verbose=0)
    assert list(logs) == ["loss", "accuracy", "weighted_accuracy"]
    assert logs["accuracy"] == pytest.approx(hits.mean())
    assert logs["weighted_accuracy"] == pytest.approx(hits[:6].mean())


def test_sample_weight_per_output_and_shared():
    inputs = engine.Input((4,))
    a = Dense(2, name="a")(inputs)
    b = Dense(1, name="b")(inputs)
    model = engine.Model(inputs, [a, b])
    model.compile("sgd", ["mse", "mse"])
    x = np.ones((6, 4), "float32")
    ya, yb = np.zeros((6, 2)), np.zeros((6, 1))
    w = np.arange(6.0)
    shared = model.evaluate(x, [ya, yb], sample_weight=w, return_dict=True, verbose=0)
    apart = model.evaluate(x, [ya, yb], sample_weight=[w, w], return_dict=True, verbose=0)
    named = model.evaluate(x, [ya, yb], sample_weight={"a": w, "b": w}, return_dict=True, verbose=0)
    assert shared == apart == named
    only_a = model.evaluate(x, [ya, yb], sample_weight={"a": w}, return_dict=True, verbose=0)
    plain = model.evaluate(x, [ya, yb], return_dict=True, verbose=0)
    assert only_a["b_loss"] == plain["b_loss"] and only_a["a_loss"] == shared["a_loss"]


def test_chunked_cpu_steps_with_weights_equal_whole_batches(monkeypatch):
    """The CPU cuts big batches into pieces; weighted pieces add up to the weighted batch."""
    x, y = data(64)
    w = np.random.default_rng(1).random(64)
    whole, pieces = dense_model(), dense_model()
    whole.fit(x, y, batch_size=64, sample_weight=w, verbose=0)
    monkeypatch.setattr(backend, "_CPU_CHUNK_BYTES", 4 * 3 * 10)  # ten samples a piece
    monkeypatch.setattr(backend, "MIN_PIECE_SAMPLES", 1)
    assert pieces._chunk_size(64) < 64
    pieces.fit(x, y, batch_size=64, sample_weight=w, verbose=0)
    for a, b in zip(whole.get_weights(), pieces.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_training_pieces_never_fall_below_the_floor(monkeypatch):
    """Samples larger than the cache budget still train in pieces of MIN_PIECE_SAMPLES
    (pieces of one sample made large images 2x slower), and a small batch stays whole."""
    model = dense_model()
    monkeypatch.setattr(backend, "_CPU_CHUNK_BYTES", 4)  # less than one sample
    assert model._chunk_size(64) == backend.MIN_PIECE_SAMPLES
    assert model._chunk_size(backend.MIN_PIECE_SAMPLES - 3) == backend.MIN_PIECE_SAMPLES - 3


# -- class weights ------------------------------------------------------------------------------


@pytest.mark.parametrize("one_hot", [False, True])
def test_class_weight_is_each_samples_class_weight(one_hot):
    x, y = data()
    targets = np.eye(3)[y] if one_hot else y
    loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    by_class, by_sample = dense_model(loss=loss), dense_model(loss=loss)
    mapping = {0: 0.5, 2: 3.0}  # class 1 keeps weight 1
    w = np.array([mapping.get(int(c), 1.0) for c in y])
    a = by_class.fit(x, targets, class_weight=mapping, shuffle=False, verbose=0)
    b = by_sample.fit(x, targets, sample_weight=w, shuffle=False, verbose=0)
    assert a.history == b.history and same_weights(by_class, by_sample)


def test_class_weight_applies_to_training_only_not_to_the_validation_split():
    x, y = data(20)
    model = dense_model()
    history = model.fit(x, y, class_weight={0: 5.0}, validation_split=0.25, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(x[15:], y[15:], verbose=0), rel=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"sample_weight": np.ones(5)}, ValueError, ["sample_weight", "12 samples", "5"]),
        ({"sample_weight": -np.ones(12)}, ValueError, ["sample_weight", ">= 0", "-1.0"]),
        ({"sample_weight": np.full(12, np.nan)}, ValueError, ["sample_weight", "finite", "nan"]),
        ({"sample_weight": np.full(12, "a")}, TypeError, ["sample_weight", "numbers", "<U1"]),
        ({"sample_weight": np.ones((12, 3))}, ValueError, ["sample_weight", "(12,)", "(12, 3)"]),
        ({"class_weight": [1.0, 2.0]}, TypeError, ["class_weight", "dict", "list"]),
        ({"class_weight": {3: 1.0}}, ValueError, ["class_weight", "class 3", "0..2"]),
        ({"class_weight": {"0": 1.0}}, ValueError, ["class_weight", "'0'", "0..2"]),
        ({"class_weight": {0: -2.0}}, ValueError, ["class_weight[0]", "-2.0"]),
        (
            {"class_weight": {0: 1.0}, "sample_weight": np.ones(12)},
            ValueError,
            ["class_weight and sample_weight"],
        ),
        ({"validation_split": 1.0}, ValueError, ["validation_split", "[0, 1)", "1.0"]),
        ({"validation_split": -0.1}, ValueError, ["validation_split", "-0.1"]),
        ({"validation_split": "0.1"}, ValueError, ["validation_split", "'0.1'"]),
        ({"validation_split": 0.95}, ValueError, ["validation_split=0.95", "12 samples"]),
        ({"verbose": 3}, ValueError, ["verbose", "'auto', 0, 1 or 2", "3"]),
        ({"steps_per_epoch": 0}, ValueError, ["steps_per_epoch", "positive", "0"]),
        (
            {"steps_per_epoch": 5, "batch_size": 4},
            ValueError,
            ["steps_per_epoch=5", "only 3 batches"],
        ),
        ({"validation_freq": 0}, ValueError, ["validation_freq", "0"]),
        ({"validation_freq": [1, -2]}, ValueError, ["validation_freq", "[1, -2]"]),
        ({"validation_batch_size": 0.5}, ValueError, ["validation_batch_size", "0.5"]),
    ],
)
def test_bad_weights_and_fit_options_are_refused_before_training(kwargs, error, words):
    x, y = data()
    model = dense_model()
    before = model.get_weights()
    with pytest.raises(error) as excinfo:
        model.fit(x, y, **{"verbose": 0, **kwargs})
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)
    assert model.optimizer.iterations == 0 and same_weights_arrays(before, model.get_weights())


def same_weights_arrays(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b))


def test_class_weight_needs_a_single_output():
    inputs = engine.Input((4,))
    model = engine.Model(inputs, [Dense(2, name="a")(inputs), Dense(2, name="b")(inputs)])
    model.compile("sgd", ["sparse_categorical_crossentropy"] * 2)
    x, y = data(6, classes=2)
    with pytest.raises(ValueError, match="class_weight is only supported for models with one"):
        model.fit(x, [y, y], class_weight={0: 2.0}, verbose=0)


# -- validation_split -------------------------------------------------------------------------


@pytest.mark.parametrize("n, split, at", [(10, 0.2, 8), (7, 0.3, 4), (100, 0.1, 90), (3, 0.5, 1)])
def test_validation_split_keeps_the_last_fraction_before_shuffling(n, split, at):
    x, y = data(n)
    w = np.linspace(1, 2, n)
    split_run, explicit_run = dense_model(), dense_model()
    a = split_run.fit(x, y, sample_weight=w, validation_split=split, seed=4, verbose=0)
    b = explicit_run.fit(x[:at], y[:at], sample_weight=w[:at], seed=4, verbose=0)
    assert a.history["loss"] == b.history["loss"] and same_weights(split_run, explicit_run)
    val = explicit_run.evaluate(x[at:], y[at:], sample_weight=w[at:], verbose=0)
    assert a.history["val_loss"][0] == pytest.approx(val, rel=1e-6)  # validation weights too


def test_validation_data_takes_the_place_of_validation_split():
    x, y = data()
    model = dense_model()
    history = model.fit(x, y, validation_split=0.5, validation_data=(x[:2], y[:2]), verbose=0)
    assert model.optimizer.iterations == 1  # all 12 samples trained: one batch of 32
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[:2], y[:2], verbose=0))


def test_validation_freq_as_an_interval_and_as_epochs():
    x, y = data()
    every_2nd = dense_model().fit(
        x, y, epochs=4, validation_data=(x, y), validation_freq=2, verbose=0
    )
    assert len(every_2nd.history["val_loss"]) == 2 and len(every_2nd.history["loss"]) == 4
    listed = dense_model().fit(
        x, y, epochs=4, validation_data=(x, y), validation_freq=[1, 4], verbose=0
    )
    assert len(listed.history["val_loss"]) == 2


# -- datasets: PyDataset-style objects and generators -------------------------------------------


class Batches(utils.PyDataset):
    """Batches of the arrays, in order; counts its epochs."""

    def __init__(self, x, y, batch_size, sample_weight=None):
        super().__init__()
        self.x, self.y, self.w, self.size = x, y, sample_weight, batch_size
        self.epochs_begun = self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, index):
        part = slice(index * self.size, (index + 1) * self.size)
        if self.w is None:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.w[part]

    def on_epoch_begin(self):
        self.epochs_begun += 1

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_a_pydataset_trains_as_its_arrays_do(backend_name):
    x, y = data(20)
    w = np.linspace(0.5, 1.5, 20)
    from_arrays, from_batches = dense_model(), dense_model()
    a = from_arrays.fit(x, y, batch_size=8, epochs=2, sample_weight=w, shuffle=False, verbose=0)
    dataset = Batches(x, y, 8, w)
    b = from_batches.fit(dataset, epochs=2, shuffle=False, verbose=0)
    assert a.history == b.history and same_weights(from_arrays, from_batches)
    assert dataset.epochs_begun == dataset.epochs_ended == 2
    assert from_batches.evaluate(Batches(x, y, 8, w), verbose=0) == pytest.approx(
        from_batches.evaluate(x, y, sample_weight=w, verbose=0), rel=1e-6
    )
    np.testing.assert_array_equal(
        from_batches.predict(Batches(x, y, 8), verbose=0), from_batches.predict(x, verbose=0)
    )


def test_a_shuffled_pydataset_visits_its_batches_in_an_order_drawn_from_seed_and_epoch():
    x, y = data(24)
    seen = []

    class Recording(Batches):
        def __getitem__(self, index):
            seen.append(index)
            return super().__getitem__(index)

    dense_model().fit(Recording(x, y, 4), epochs=2, seed=5, verbose=0)
    first, second = (list(np.random.default_rng([5, e]).permutation(6)) for e in (0, 1))
    assert first != second
    # Batch 0 is read once before training, to check it, and used where epoch 0 needs it.
    assert seen == [0, *[i for i in first if i != 0], *second]


def test_a_generator_with_steps_per_epoch_continues_across_epochs():
    x, y = data(24)

    def batches():
        for start in range(0, 24, 4):
            yield x[start : start + 4], y[start : start + 4]

    from_generator, from_arrays = dense_model(), dense_model()
    history = from_generator.fit(batches(), steps_per_epoch=3, epochs=2, verbose=0)
    from_arrays.fit(x, y, batch_size=4, shuffle=False, verbose=0)  # the same 6 batches in order
    assert len(history.history["loss"]) == 2 and same_weights(from_generator, from_arrays)


def test_a_generator_without_steps_trains_one_pass_then_warns_it_ran_out():
    x, y = data(12)
    model = dense_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(((x[i : i + 4], y[i : i + 4]) for i in (0, 4, 8)), epochs=3, verbose=0)
    assert model.optimizer.iterations == 3 and len(history.history["loss"]) == 1
    assert any("ran out of data" in str(w.message) for w in caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dense_model().fit(((x[i : i + 4], y[i : i + 4]) for i in (0, 4, 8)), epochs=1, verbose=0)
    assert not caught  # one epoch: running out is how it ends


def test_class_weight_with_a_dataset():
    x, y = data(8)
    by_class, by_sample = dense_model(), dense_model()
    by_class.fit(Batches(x, y, 4), class_weight={1: 2.0}, shuffle=False, verbose=0)
    w = np.where(y == 1, 2.0, 1.0)
    by_sample.fit(x, y, batch_size=4, sample_weight=w, shuffle=False, verbose=0)
    assert same_weights(by_class, by_sample)


def test_an_unbuilt_model_is_built_from_the_first_batch():
    x, y = data(8)
    utils.set_random_seed(0)
    model = Sequential([Dense(3)])
    model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(Batches(x, y, 4), verbose=0)
    assert model.built and model.input_shape == (4,)


def batch_maker(kind):
    x, y = data(8)
    bad = {
        "labels_out_of_range": (x[:4], y[:4] + 3),
        "lengths_differ": (x[:4], y[:3]),
        "wrong_shape": (x[:4, :3], y[:4]),
        "no_targets": (x[:4],),
        "too_long": (x[:4], y[:4], np.ones(4), np.ones(4)),
    }[kind]
    return x, y, bad


@pytest.mark.parametrize(
    "kind, words",
    [
        ("labels_out_of_range", ["fit: batch 1", "0..2"]),
        ("lengths_differ", ["fit: batch 1", "4 samples", "3"]),
        ("wrong_shape", ["fit: batch 1", "(N, 4)", "(4, 3)"]),
        ("no_targets", ["fit: batch 1", "no targets"]),
        ("too_long", ["fit: batch 1", "tuple of 4"]),
    ],
)
def test_a_bad_later_batch_stops_training_naming_it(kind, words):
    x, y, bad = batch_maker(kind)
    model = dense_model()
    with pytest.raises(ValueError) as excinfo:
        model.fit(iter([(x[:4], y[:4]), bad]), verbose=0)
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)
    assert model.optimizer.iterations == 1  # the step before it was done


@pytest.mark.parametrize(
    "kind, words",
    [
        ("labels_out_of_range", ["fit: batch 0", "0..2"]),
        ("wrong_shape", ["fit: batch 0", "(N, 4)", "(4, 3)"]),
        ("no_targets", ["fit: batch 0", "no targets"]),
    ],
)
def test_a_bad_first_batch_changes_nothing(kind, words):
    _, _, bad = batch_maker(kind)
    model = dense_model()
    before = model.get_weights()
    with pytest.raises(ValueError) as excinfo:
        model.fit(iter([bad]), verbose=0)
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)
    assert model.optimizer.iterations == 0 and same_weights_arrays(before, model.get_weights())


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda m, d, x, y: m.fit(d, y, verbose=0), ["fit: y must be None", "dataset"]),
        (
            lambda m, d, x, y: m.fit(d, sample_weight=np.ones(8), verbose=0),
            ["fit: sample_weight must be None"],
        ),
        (lambda m, d, x, y: m.fit(d, validation_split=0.2, verbose=0), ["validation_split"]),
        (lambda m, d, x, y: m.fit(d, steps_per_epoch=3, verbose=0), ["3 steps", "2 batches"]),
        (lambda m, d, x, y: m.evaluate(d, y, verbose=0), ["evaluate: y must be None"]),
        (lambda m, d, x, y: m.fit(Batches(x[:0], y[:0], 4), verbose=0), ["no batches"]),
        (lambda m, d, x, y: m.fit(iter([]), verbose=0), ["yields no batches"]),
    ],
)
def test_dataset_mistakes_are_refused(call, words):
    x, y = data(8)
    model = dense_model()
    with pytest.raises(ValueError) as excinfo:
        call(model, Batches(x, y, 4), x, y)
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)
    assert model.optimizer.iterations == 0


def test_validation_data_as_a_dataset():
    x, y = data(12)
    model = dense_model()
    history = model.fit(x, y, validation_data=Batches(x, y, 5), verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x, y, verbose=0))


def test_evaluate_and_predict_take_steps():
    x, y = data(12)
    model = dense_model()
    assert model.predict(x, batch_size=4, steps=2, verbose=0).shape == (8, 3)
    assert model.evaluate(x, y, batch_size=4, steps=1, verbose=0) == pytest.approx(
        model.evaluate(x[:4], y[:4], verbose=0)
    )
    assert model.predict(Batches(x, y, 5), steps=1, verbose=0).shape == (5, 3)


def test_train_on_batch_takes_sample_and_class_weights():
    x, y = data(4)
    a, b = dense_model(), dense_model()
    w = np.where(y == 0, 3.0, 1.0)
    assert a.train_on_batch(x, y, class_weight={0: 3.0}) == b.train_on_batch(x, y, sample_weight=w)
    assert same_weights(a, b)
