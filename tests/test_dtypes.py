"""float32 by default, float64 when asked; nothing inside silently upcasts."""

import numpy as np
import pytest

from engine import Sequential, backend, losses
from layers import Conv2D, Dense, Flatten, MaxPooling2D
from optim import SGD, Adagrad, Adam, RMSprop


def tiny_model():
    return Sequential(
        [
            Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)),
            MaxPooling2D(),
            Conv2D(4, 3, padding="same", strides=2, activation="tanh"),
            Flatten(),
            Dense(8, activation="sigmoid"),
            Dense(3),
        ]
    )


OPTIMIZERS = {
    "adam": lambda: Adam(),
    "amsgrad": lambda: Adam(amsgrad=True),
    "nesterov": lambda: SGD(momentum=0.9, nesterov=True),
    "rmsprop": lambda: RMSprop(centered=True, momentum=0.5),
    "adagrad": lambda: Adagrad(),
}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("floatx", ["float32", "float64"])
def test_dtype_is_kept_through_forward_backward_and_update(backend_name, rng, optimizer, floatx):
    previous = backend.floatx()
    backend.set_floatx(floatx)
    try:
        model = tiny_model()
        optimizer = OPTIMIZERS[optimizer]()
        model.compile(
            optimizer=optimizer, loss=losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        x = backend.to_device(rng.uniform(0, 255, (4, 8, 8, 1)).astype(np.uint8), dtype=floatx)
        y = backend.to_device(rng.integers(0, 3, 4))
        loss, _, (y_pred,), grads = model.compute_loss_and_gradients([x], [y])
        model.optimizer.apply(grads, model.trainable_weights)
        assert y_pred.dtype == floatx
        for name, grad in zip(model.params, grads, strict=True):
            assert grad.dtype == floatx, f"{name} gradient is {grad.dtype}"
        for p in model.weights:
            assert p.dtype == floatx
        for slots in optimizer.slots:
            for name, slot in slots.items():
                assert slot.dtype == floatx, f"optimizer slot {name} is {slot.dtype}"
    finally:
        backend.set_floatx(previous)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.int32, np.float32])
def test_predict_casts_inputs_to_floatx_and_returns_numpy(rng, dtype):
    model = tiny_model()
    x = rng.uniform(0, 10, (5, 8, 8, 1)).astype(dtype)
    out = model.predict(x, batch_size=2)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32 and out.shape == (5, 3)
    np.testing.assert_array_equal(out, model.predict(x.astype(np.float32), batch_size=2))


def test_loss_gradients_keep_float32(backend_name, rng):
    for loss in [cls() for cls in losses.LOSSES.values()]:
        if isinstance(loss, losses.SparseCategoricalCrossentropy):
            y_true = rng.integers(0, 4, 3)
        else:
            y_true = rng.uniform(0.1, 0.9, (3, 4))
        y_pred = backend.to_device(rng.uniform(0.1, 0.9, (3, 4)), dtype="float32")
        value, grad = loss.value_and_gradient(backend.to_device(y_true), y_pred)
        assert grad.dtype == np.float32, type(loss).__name__
        assert value.dtype == np.float32, type(loss).__name__
