"""What fit, evaluate and predict accept, checked before anything changes, and batched.

Inputs are one array, or for a model with several inputs a list (or a dict by input
name) of arrays; targets likewise per output; sample weights one array for every output
or one per output (class weights become sample weights). Any numeric dtype is accepted:
batches are cast to floatx() on their way to the device. Every problem is a ValueError or
TypeError that starts with the method's name and says what was expected.

Batches come from ArrayBatches (arrays in memory) or DatasetBatches (a dataset that
yields them: a PyDataset-style object or a generator), both with
``batches(seed, epoch, shuffle)`` for training and ``in_order()`` for evaluation.
"""

import numpy as np

from engine import backend, utils


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


# -- sample weights and class weights ----------------------------------------------------


def standardize_sample_weight(model, sample_weight, ys, what):
    """None, or one weight array (or None) per output with a loss, as Keras takes them:
    one array for every output, or a list (a dict by name) with one per output.

    Each is (N,) or (N, 1), or shaped like the output's per-sample losses (N, ...) (the
    output's shape without its last axis); the weights are finite numbers >= 0.
    """
    if sample_weight is None:
        return None
    losses = model.compiled_loss.losses
    names = model.output_names if model.built else ["output"]
    wanted = [name for name, loss in zip(names, losses) if loss is not None]
    if isinstance(sample_weight, dict):
        unknown = sorted(set(sample_weight) - set(wanted))
        if unknown:
            raise ValueError(
                f"{what}: sample_weight names outputs {unknown}; the outputs with a loss are "
                f"{wanted}."
            )
        weights = [sample_weight.get(name) for name in wanted]
    elif isinstance(sample_weight, (list, tuple)) and len(wanted) > 1:
        if len(sample_weight) != len(wanted):
            raise ValueError(
                f"{what}: sample_weight has {len(sample_weight)} arrays; the model has "
                f"{len(wanted)} outputs with a loss {wanted}."
            )
        weights = list(sample_weight)
    else:
        weights = [sample_weight] * len(wanted)
        if len(wanted) > 1 and np.ndim(sample_weight) > 1 and np.shape(sample_weight)[1:] != (1,):
            raise ValueError(
                f"{what}: one sample_weight array for {len(wanted)} outputs must hold one "
                f"weight per sample, shape (N,), got {np.shape(sample_weight)}; give one "
                "array per output for other shapes."
            )
    n = len(ys[0]) if ys else None
    return [
        None
        if w is None
        else _check_weights(w, n, f"{what}: sample_weight" + (f"[{name!r}]" if i else ""), y)
        for i, (w, name, y) in enumerate(zip(weights, wanted, ys))
    ]


def _check_weights(w, n, what, y):
    """Weights as a float64 host array (N,) or (N, ...) after checking them."""
    if backend.is_gpu_array(w):
        w = backend.to_numpy(w)
    try:
        w = np.asarray(w)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{what} must be an array of numbers ({exc}).") from None
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numbers, got dtype {w.dtype}.")
    if w.ndim == 0 or len(w) != n:
        got = len(w) if w.ndim else "no batch axis"
        raise ValueError(f"{what}: x has {n} samples but the weights have {got} (shape {w.shape}).")
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    per_sample = tuple(np.shape(y)[:-1]) if np.ndim(y) > 1 else (n,)
    if w.ndim > 1 and w.shape != per_sample:
        raise ValueError(
            f"{what} must have shape ({n},) or the shape of the per-sample losses "
            f"{per_sample}, got {w.shape}."
        )
    w = w.astype(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        bad = w[~np.isfinite(w) | (w < 0)].flat[0]
        raise ValueError(f"{what} must be finite numbers >= 0, got {bad}.")
    return w


def class_weight_to_sample_weight(model, class_weight, ys, what, input_shape=None):
    """Sample weights from ``class_weight`` {class index: weight}, as Keras makes them: each
    sample gets its class's weight (1 for classes not named); the class is the integer
    label, or the largest entry of a one-hot target. Only for a single output with a loss;
    ``input_shape``: the per-sample input shape, for a model not built yet.
    """
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"{what}: class_weight must be a dict {{class index: weight}}, got "
            f"{type(class_weight).__name__}."
        )
    if len(ys) != 1:
        raise ValueError(f"{what}: class_weight is only supported for models with one output.")
    if model.built:
        losses = model.compiled_loss.losses
        shape = next(t.sample_shape for t, loss in zip(model.outputs, losses) if loss)
    else:
        shape = model._output_shape_for(input_shape)
    classes = 2 if shape[-1] == 1 else shape[-1]  # one sigmoid output: classes 0 and 1
    table = np.ones(classes)
    for key, weight in class_weight.items():
        if not utils.is_int(key) or not 0 <= key < classes:
            raise ValueError(
                f"{what}: class_weight names class {key!r}; the classes are 0..{classes - 1}."
            )
        table[key] = utils.check_number(f"{what}: class_weight[{key!r}]", weight, low=0)
    y = np.asarray(ys[0])
    if y.ndim > 1 and y.shape[-1] > 1:  # one-hot (or soft) targets
        labels = y.argmax(axis=-1)
    else:
        labels = np.round(y[..., 0] if y.ndim > len(shape) else y).astype(np.int64)
    return [table[labels]]


# -- validation_split -----------------------------------------------------------------


def split_validation(arrays, validation_split, what):
    """(training part, validation part) of each array: the last ``validation_split`` of the
    samples go to validation, before any shuffling (Keras's train_validation_split)."""
    split = utils.check_number("validation_split", validation_split, 0, 1, high_open=True)
    n = len(arrays[0])
    at = int(np.floor(n * (1.0 - split)))
    if at == 0 or at == n:
        raise ValueError(
            f"{what}: validation_split={validation_split} of {n} samples leaves "
            f"{at} for training and {n - at} for validation; both need at least one."
        )
    return [None if a is None else a[:at] for a in arrays], [
        None if a is None else a[at:] for a in arrays
    ]


# -- batches: arrays in memory, or a dataset that yields them --------------------------


def is_dataset(x):
    """True for data given as batches: an object with __len__ and __getitem__ returning
    batches (Keras's PyDataset convention), or an iterator such as a Python generator."""
    if x is None or isinstance(x, (np.ndarray, np.generic, list, tuple, dict, str, bytes)):
        return False
    if backend.is_gpu_array(x) or hasattr(x, "__array__"):
        return False
    if hasattr(x, "__next__"):
        return True
    return hasattr(x, "__getitem__") and (hasattr(x, "__len__") or hasattr(x, "num_batches"))


class ArrayBatches:
    """Batches of arrays in memory (x, y, sample weights: lists of checked host arrays).

    For training (``on_device``) the inputs move to the device once on the GPU and batches
    are gathered there; otherwise (evaluate, predict) each batch moves on its own.
    """

    def __init__(self, xs, ys, sample_weights, batch_size, steps=None, on_device=True):
        on_device = on_device and backend.keeps_training_data_on_device()
        self.x = [backend.to_device(a) for a in xs] if on_device else xs
        self.y = [backend.to_device(np.asarray(t)) for t in ys]
        self.sample_weight = None
        if sample_weights is not None:
            self.sample_weight = [
                None if w is None else backend.to_device(w, dtype=backend.floatx())
                for w in sample_weights
            ]
        self.n = len(xs[0])
        self.batch_size = batch_size
        self.steps = -(-self.n // batch_size) if steps is None else steps
        self.sample_shapes = sample_shapes(xs)

    def batches(self, seed=None, epoch=0, shuffle=False):
        """The epoch's batches: (inputs, targets, sample weights or None), on the device.
        Shuffled by (seed, epoch) only, so a resumed run draws the same batches."""
        order = np.random.default_rng([seed, epoch]).permutation(self.n) if shuffle else None
        order = backend.to_device(np.arange(self.n) if order is None else order)
        size, weights = self.batch_size, self.sample_weight
        for step in range(self.steps):
            idx = order[step * size : (step + 1) * size]
            w = None if weights is None else [None if a is None else a[idx] for a in weights]
            yield (take_inputs(self.x, idx), take_targets(self.y, idx), w)

    def in_order(self):
        """The batches in order, sliced (evaluate, predict, validation)."""
        weights = self.sample_weight
        for step in range(self.steps):
            part = slice(step * self.batch_size, (step + 1) * self.batch_size)
            w = None if weights is None else [None if a is None else a[part] for a in weights]
            yield (take_inputs(self.x, part), take_targets(self.y, part), w)

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass


class DatasetBatches:
    """Batches from a dataset: an object with __len__/__getitem__ (a PyDataset) or an
    iterator (a generator), each batch (x,), (x, y) or (x, y, sample_weight).

    Every batch is checked as fit checks arrays (its errors name the batch); the first one
    before anything else happens, so the model can be built from it. ``steps``: batches
    per epoch (default: the dataset's length; all an iterator yields). A PyDataset's
    on_epoch_begin/on_epoch_end are called around each epoch, as Keras calls them.
    """

    def __init__(self, model, dataset, what, steps=None, class_weight=None, targets=True):
        self.model, self.dataset, self.what = model, dataset, what
        self.class_weight, self.targets = class_weight, targets
        self.indexable = not hasattr(dataset, "__next__")
        self.exhausted = False
        if self.indexable:
            count = len(dataset) if hasattr(dataset, "__len__") else dataset.num_batches
            if count is not None and count < 1:
                raise ValueError(f"{what}: the dataset has no batches (its length is {count}).")
            if count is None and steps is None:
                raise ValueError(
                    f"{what}: the dataset has no length (it is infinite); give steps_per_epoch "
                    "(fit) or steps (evaluate, predict)."
                )
            if steps is not None and count is not None and steps > count:
                raise ValueError(
                    f"{what}: {steps} steps asked for, but the dataset has {count} batches."
                )
            self.steps = count if steps is None else steps
            self._first = (0, dataset[0])
        else:
            try:
                self._first = (0, next(dataset))
            except StopIteration:
                raise ValueError(f"{what}: the generator yields no batches.") from None
            self.steps = steps
        self.sample_shapes = None
        first = self.check(self._first[1], 0)
        self.sample_shapes = sample_shapes(first[0])
        self._first = (0, first)

    def check(self, batch, index):
        """(inputs, targets, sample weights) of a batch, as checked host arrays."""
        where = f"{self.what}: batch {index}"
        if isinstance(batch, list):
            batch = tuple(batch)
        if not isinstance(batch, tuple):
            batch = (batch,)
        if not 1 <= len(batch) <= 3:
            raise ValueError(
                f"{where} must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of "
                f"{len(batch)}."
            )
        x = standardize_inputs(self.model, batch[0], where, self.sample_shapes)
        if not self.targets:
            return x, None, None
        if len(batch) < 2 or batch[1] is None:
            raise ValueError(f"{where} has no targets: the dataset must yield (x, y).")
        one = _single(sample_shapes(x)) if not self.model.built else None
        y = standardize_targets(self.model, batch[1], len(x[0]), where, one)
        weights = batch[2] if len(batch) == 3 else None
        if self.class_weight is None:
            return x, y, standardize_sample_weight(self.model, weights, y, where)
        if weights is not None:
            raise ValueError(f"{where}: class_weight and sample_weight cannot both be given.")
        return x, y, class_weight_to_sample_weight(self.model, self.class_weight, y, where, one)

    def batches(self, seed=None, epoch=0, shuffle=False):
        """The epoch's batches on the device; a PyDataset's in an order drawn from
        (seed, epoch) when shuffled. ``exhausted`` is set when an iterator runs out."""
        if self.indexable:
            order = range(self.steps)
            if shuffle:
                order = np.random.default_rng([seed, epoch]).permutation(self.steps)
            for index in order:
                yield self._on_device(self._checked(int(index)))
            return
        count = 0
        while self.steps is None or count < self.steps:
            if self._first is not None:
                batch, self._first = self._first[1], None
            else:
                try:
                    batch = self.check(next(self.dataset), count)
                except StopIteration:
                    self.exhausted = True
                    return
            yield self._on_device(batch)
            count += 1

    def in_order(self):
        return self.batches()

    def _checked(self, index):
        if self._first is not None and self._first[0] == index:
            batch, self._first = self._first[1], None  # read once already, to check it
            return batch
        return self.check(self.dataset[index], index)

    def _on_device(self, batch):
        x, y, w = batch
        targets = None if y is None else [backend.to_device(np.asarray(t)) for t in y]
        if w is not None:
            w = [None if a is None else backend.to_device(a, dtype=backend.floatx()) for a in w]
        return take_inputs(x, slice(None)), targets, w

    def on_epoch_begin(self):
        if hasattr(self.dataset, "on_epoch_begin"):
            self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        if hasattr(self.dataset, "on_epoch_end"):
            self.dataset.on_epoch_end()
