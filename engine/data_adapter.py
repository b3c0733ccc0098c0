"""What fit, evaluate and predict accept, checked before anything changes, and batched.

Inputs are one array, or for a model with several inputs a list (or a dict by input
name) of arrays; targets likewise per output. Any numeric dtype is accepted: batches are
cast to floatx() on their way to the device. Every problem is a ValueError or TypeError
that starts with the method's name and says what was expected.
"""

import numpy as np

from engine import backend


def standardize_inputs(model, x, what, expected=None):
    """The model's inputs as a list of checked arrays with one sample count.

    ``expected``: the per-sample shapes they must have (default: the model's own). An
    unbuilt model is not built here: its layers only check they can take x's shape.
    """
    if not model.layers:
        raise ValueError(f"{what}: the model has no layers.")
    names = model.input_names if model.built else ["input"]
    if isinstance(x, dict):
        missing = [name for name in names if name not in x]
        if missing or len(x) != len(names):
            raise ValueError(
                f"{what}: the model's inputs are {names}; got a dict with keys {sorted(x)}."
            )
        x = [x[name] for name in names]
    several = isinstance(x, (list, tuple)) and len(names) > 1
    xs = list(x) if several else [x]
    if len(xs) != len(names):
        raise ValueError(f"{what}: the model takes {len(names)} inputs {names}, got {len(xs)}.")
    if expected is None and model.built:
        expected = [t.sample_shape for t in model.inputs]
    elif expected is not None and len(names) == 1 and not isinstance(expected, list):
        expected = [expected]
    checked = []
    for i, (name, a) in enumerate(zip(names, xs)):
        label = f"{what}: input {name!r}" if several else what
        checked.append(_check_array(model, a, label, None if expected is None else expected[i]))
    counts = {len(a) for a in checked}
    if len(counts) > 1:
        raise ValueError(
            f"{what}: the inputs have different numbers of samples: "
            f"{', '.join(f'{n} {len(a)}' for n, a in zip(names, checked))}."
        )
    return checked


def _check_array(model, x, what, expected):
    if x is None:
        raise TypeError(f"{what}: inputs are None; expected an array of shape (N, ...).")
    if not backend.is_gpu_array(x):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{what}: inputs must be an array of numbers ({exc}).") from None
    if x.dtype.kind not in "biuf":
        raise TypeError(
            f"{what}: inputs must be numbers (int or float), got dtype {x.dtype}; "
            "convert them, e.g. x.astype('float32')."
        )
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(
            f"{what}: inputs need a batch axis and at least one sample, got shape {x.shape}."
        )
    if expected is None:  # unbuilt model: the layers say whether x's shape works
        try:
            model._output_shape_for(x.shape[1:])
        except ValueError as exc:
            raise ValueError(f"{what}: inputs of shape {x.shape} do not fit: {exc}") from None
        return x
    expected = tuple(expected)
    if tuple(x.shape[1:]) != expected:
        dims = ", ".join(map(str, expected))
        hint = ""
        if x.shape[1:] + (1,) == expected:
            hint = f" (add the channel axis: x.reshape(-1, {dims}))"
        elif x.ndim == len(expected) + 1 and x.shape[1:-1] == expected[:-1]:
            hint = f" ({x.shape[-1]} channels where the model takes {expected[-1]})"
        raise ValueError(
            f"{what}: the model expects inputs of shape (N, {dims}), got {x.shape}{hint}."
        )
    return x


def standardize_targets(model, y, n, what, input_shape=None):
    """The targets as a list with one array per output that has a loss.

    ``input_shape``: the per-sample input shape the outputs come from (needed when the
    model is not built yet).
    """
    losses = model.compiled_loss.losses
    names = model.output_names if model.built else ["output"]
    if isinstance(y, dict):
        y = [y.get(name) for name, loss in zip(names, losses) if loss is not None]
    several = len(names) > 1
    ys = list(y) if several and isinstance(y, (list, tuple)) else [y]
    wanted = [name for name, loss in zip(names, losses) if loss is not None]
    if len(ys) != len(wanted):
        raise ValueError(
            f"{what}: the model has {len(wanted)} outputs with a loss {wanted}, got "
            f"{len(ys)} target arrays."
        )
    if input_shape is not None and not model.built:
        output_shapes = [model._output_shape_for(input_shape)]
    else:
        output_shapes = [t.sample_shape for t in model.outputs]
    shapes = [s for s, loss in zip(output_shapes, losses) if loss is not None]
    active = [loss for loss in losses if loss is not None]
    return [
        _check_targets(t, n, f"{what}: output {name!r}" if several else what, loss, shape)
        for t, name, loss, shape in zip(ys, wanted, active, shapes)
    ]


def _check_targets(y, n, what, loss, output_shape):
    if y is None:
        raise TypeError(f"{what}: targets are None; expected an array of {n} targets.")
    if backend.is_gpu_array(y):
        y = backend.to_numpy(y)
    try:
        y = np.asarray(y)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{what}: targets must be an array of numbers ({exc}).") from None
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{what}: targets must be numbers, got dtype {y.dtype}.")
    if y.ndim == 0 or len(y) != n:
        got = len(y) if y.ndim else "no batch axis"
        raise ValueError(f"{what}: x has {n} samples but y has {got} (shape {y.shape}).")
    try:
        loss.check_targets(y, output_shape)
    except ValueError as exc:
        raise type(exc)(f"{what}: {exc}") from None
    return y


def check_validation_data(model, validation_data, input_shape):
    """(x_val list, y_val list) from a (x_val, y_val) pair, checked like fit's data."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError(
            "validation_data must be a tuple (x_val, y_val), got "
            f"{type(validation_data).__name__}"
            + (
                f" of length {len(validation_data)}."
                if isinstance(validation_data, (tuple, list))
                else "."
            )
        )
    xs = standardize_inputs(model, validation_data[0], "validation_data x", input_shape)
    ys = standardize_targets(
        model, validation_data[1], len(xs[0]), "validation_data y", _single(input_shape)
    )
    return xs, ys


def _single(shapes):
    return shapes[0] if isinstance(shapes, list) and len(shapes) == 1 else shapes


def sample_shapes(xs):
    """The per-sample shapes of checked inputs: one shape, or a list for several inputs."""
    shapes = [tuple(a.shape[1:]) for a in xs]
    return shapes[0] if len(shapes) == 1 else shapes


def take_inputs(xs, idx):
    """Rows ``idx`` of every input as floatx device arrays."""
    return [
        backend.to_device(a[idx], dtype=backend.floatx())
        if not backend.is_gpu_array(a)
        else a[idx].astype(backend.floatx(), copy=False)
        for a in xs
    ]


def take_targets(ys, idx):
    return [y[idx] for y in ys]
