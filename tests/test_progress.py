"""What fit, evaluate, predict and summary print: Keras 3's lines and box table.

The lines' numbers (times) vary, so they are matched by pattern; the summary box is
compared with the text Keras 3.15 prints for the same models (tests/keras/ compares it
with Keras running).
"""

import re

import numpy as np
import pytest

import optim
from engine import Input, Model, Sequential, callbacks, layers, losses, utils
from engine.callbacks import progbar_logger

BAR = "━" * 20
TIME = r"\d+s \d+(s|ms|us)/step"
NUMBER = r"\d\.\d{4}"


def dense_model():
    utils.set_random_seed(0)
    model = Sequential([layers.Dense(3, input_shape=(4,))])
    model.compile(
        optim.SGD(0.1), losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    )
    return model


def data(n=8):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)).astype("float32"), rng.integers(0, 3, n)


def printed(capsys):
    out = capsys.readouterr().out
    assert "\r" not in out  # not a terminal: lines, never a carriage-return stream
    return out.splitlines()


def test_each_epoch_leaves_kerass_line(capsys):
    x, y = data()
    dense_model().fit(x, y, batch_size=4, epochs=2, validation_data=(x, y))
    lines = printed(capsys)
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    values = " - ".join(f"{k}: {NUMBER}" for k in ("accuracy", "loss", "val_accuracy", "val_loss"))
    for line in lines[1::2]:
        assert re.fullmatch(f"2/2 {BAR} {TIME} - {values}", line), line


def test_one_epoch_prints_no_epoch_line_and_verbose_2_no_bar(capsys):
    x, y = data()
    dense_model().fit(x, y, batch_size=4)
    assert re.fullmatch(
        f"2/2 {BAR} {TIME} - accuracy: {NUMBER} - loss: {NUMBER}", printed(capsys)[0]
    )
    dense_model().fit(x, y, batch_size=4, epochs=2, verbose=2)
    lines = printed(capsys)
    assert lines[0] == "Epoch 1/2" and len(lines) == 4
    assert re.fullmatch(
        rf"2/2 - \d+s - \d+(ms|us)/step - accuracy: {NUMBER} - loss: {NUMBER}", lines[1]
    )
    dense_model().fit(x, y, verbose=0)
    assert printed(capsys) == []


def test_evaluate_and_predict_print_a_closing_line(capsys):
    x, y = data()
    model = dense_model()
    model.evaluate(x, y, batch_size=4)
    assert re.fullmatch(
        f"2/2 {BAR} {TIME} - accuracy: {NUMBER} - loss: {NUMBER}", printed(capsys)[0]
    )
    model.evaluate(x, y, batch_size=4, verbose=2)
    assert re.fullmatch(rf"2/2 - {TIME.replace(' ', ' - ')} - accuracy: .*", printed(capsys)[0])
    model.predict(x, batch_size=4)
    assert re.fullmatch(f"2/2 {BAR} {TIME}", printed(capsys)[0])
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert printed(capsys) == []


def test_small_values_and_the_learning_rate_are_printed_as_keras_does(capsys):
    x, y = data()
    model = dense_model()
    model.optimizer.learning_rate = 1e-4
    model.fit(x, y, callbacks=[callbacks.LearningRateScheduler(lambda epoch, lr: lr)])
    line = printed(capsys)[0]
    assert line.endswith(" - learning_rate: 1.0000e-04"), line  # last, in e-notation


def test_closing_line_pieces():
    assert (
        progbar_logger.closing_line(3, 10, 1.2, 0.0052, 1)
        == " 3/10 ━━━━━━────────────── 1s 5ms/step"  # the count padded to 10's width, as Keras
    )
    assert progbar_logger.closing_line(10, 10, 61.0, 1.5, 2) == "10/10 - 61s - 2s/step"
    assert progbar_logger.closing_line(7, 420, 0.0, 3e-5, 2) == "  7/420 - 0s - 30us/step"
    assert [k for k, _ in progbar_logger.keras_order({"val_a": 1, "learning_rate": 2, "b": 3})] == [
        "b",
        "val_a",
        "learning_rate",
    ]


def test_in_a_terminal_a_live_bar_runs_then_gives_way_to_the_line(capsys, monkeypatch):
    monkeypatch.setattr(progbar_logger, "interactive", lambda: True)
    x, y = data(64)
    dense_model().fit(x, y, batch_size=4, epochs=2)
    out = capsys.readouterr().out
    assert "| 0/16 [" in out  # tqdm's bar, cleared at the end of the epoch for the line:
    assert re.search(f"\r16/16 {BAR} {TIME} - accuracy: {NUMBER} - loss: {NUMBER}\n", out)


# -- summary ----------------------------------------------------------------------------------

KERAS_SEQUENTIAL = """\
Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d (MaxPooling2D)    │ (None, 13, 13, 32)     │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ flatten (Flatten)               │ (None, 5408)           │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 10)             │        54,090 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 162,592 (635.12 KB)
 Trainable params: 54,090 (211.29 KB)
 Non-trainable params: 320 (1.25 KB)
 Optimizer params: 108,182 (422.59 KB)"""

KERAS_FUNCTIONAL = """\
Model: "func"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ a (InputLayer)      │ (None, 8)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ d1 (Dense)          │ (None, 16)        │        144 │ a[0][0]           │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ b (InputLayer)      │ (None, 4)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ cat (Concatenate)   │ (None, 20)        │          0 │ d1[0][0], b[0][0] │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ out (Dense)         │ (None, 3)         │         63 │ cat[0][0]         │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 207 (828.00 B)
 Trainable params: 207 (828.00 B)
 Non-trainable params: 0 (0.00 B)"""


def test_the_box_summary_is_kerass(monkeypatch):
    """The text Keras 3.15 prints (an 80-column terminal) for the same two models."""
    monkeypatch.setenv("COLUMNS", "80")
    utils.set_random_seed(0)
    model = Sequential(
        [
            Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu", name="conv2d"),
            layers.MaxPooling2D(2, name="max_pooling2d"),
            layers.Flatten(name="flatten"),
            layers.Dense(10, name="dense"),
        ],
        name="sequential",
    )
    model.layers[0].trainable = False
    model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.random.rand(4, 28, 28, 1), np.zeros(4), verbose=0)
    lines = []
    model.summary(print_fn=lines.append, style="box")
    assert lines == [KERAS_SEQUENTIAL]

    a, b = Input((8,), name="a"), Input((4,), name="b")
    joined = layers.Concatenate(name="cat")([layers.Dense(16, name="d1")(a), b])
    functional = Model([a, b], layers.Dense(3, name="out")(joined), name="func")
    functional.summary(print_fn=lines.append, style="box")
    assert lines[1] == KERAS_FUNCTIONAL


def test_box_summary_width_and_wrapping():
    inputs = Input((3,), name="x")
    chain = Model(inputs, layers.Dense(2, name="a_dense_layer_with_a_long_name")(inputs))
    lines = []
    chain.summary(line_length=60, print_fn=lines.append, style="box")
    table = lines[0].splitlines()
    assert all(len(line) == 60 for line in table[1:-3])
    assert "Connected to" not in table[2]  # a chain shows no connections, as Keras
    # A word too long for its column is cut, the rest wraps at spaces, as rich does.
    assert "│ a_dense_layer_with_a_lo… │" in lines[0] and "│ (Dense)   " in lines[0]


def test_plain_summary_stays_the_default_and_styles_are_checked(capsys):
    model = dense_model()
    model.summary()
    assert "Total params: 15" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown style 'fancy'"):
        model.summary(style="fancy")
