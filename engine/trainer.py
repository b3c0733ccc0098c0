"""Trainer: Keras's compile / fit / evaluate / predict / train_on_batch for engine.Model
(keras.Model takes keras's Trainer as a base in the same way).

As in Keras 3, a step is a method a subclass may override:

    train_step(data)     one optimizer step on a batch; returns the logs (device scalars)
    test_step(data)      the loss and metrics of a batch
    predict_step(data)   the outputs of a batch

``data`` is (inputs, targets, sample_weight): lists of device arrays, one per model input
and per output with a loss. fit is the loop around train_step, with its safety net
(NaN rollback, Ctrl-C) and the checks of what users pass in (engine/data_adapter.py).
"""

import math
import signal
import threading
import time

import numpy as np
from tqdm.auto import tqdm

from engine import backend, utils
from engine import data_adapter as data
from engine.callbacks import Callback, History
from engine.compile_utils import CompiledLoss, CompiledMetrics
from engine.metrics import Mean


class Trainer:
    """The training half of a model; see engine.model.Model for the other."""

    def __init__(self):
        self.optimizer = None
        self.loss = None
        self.compiled_loss = None
        self.compiled_metrics = None
        self.stop_training = False
        self.history = None
        self._step_key = None  # (seed, epoch, step): the random key of the step running

    # -- compile --------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None):
        """Choose the optimizer, the loss(es) and metrics (instances or Keras names)."""
        import optim

        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'.")
        # Everything is resolved first: a typo leaves the model as it was.
        optimizer = optim.get(optimizer)
        names = self.output_names if self.built else ["output"]
        compiled_loss = CompiledLoss(loss, loss_weights, names)
        compiled_metrics = CompiledMetrics(metrics, compiled_loss)
        self.optimizer, self.compiled_loss, self.compiled_metrics = (
            optimizer,
            compiled_loss,
            compiled_metrics,
        )
        self.loss = compiled_loss.losses[0] if compiled_loss.single else compiled_loss.losses
        self._trackers = [Mean(name="loss"), *(Mean(name=n) for n in compiled_loss.log_names)]

    @property
    def metrics(self):
        """The compiled metric objects (the loss trackers aside)."""
        return self.compiled_metrics.metrics if self.compiled_metrics else []

    @property
    def metrics_names(self):
        """The names of the values fit and evaluate log, in order."""
        if self.compiled_loss is None:
            return []
        return [t.name for t in self._trackers] + self.compiled_metrics.names

    def reset_metrics(self):
        for metric in [*self._trackers, *self.metrics]:
            metric.reset_state()

    # -- the steps ------------------------------------------------------------------

    def train_step(self, data):
        """One optimizer step on the batch ``data``; the running logs as device scalars."""
        x, y, sample_weight = data
        loss, losses, y_pred, grads = self.compute_loss_and_gradients(x, y, sample_weight)
        self.optimizer.apply(grads, self._trained_weights())
        return self.compute_metrics(x, y, y_pred, sample_weight, loss, losses)

    def test_step(self, data):
        x, y, sample_weight = data
        y_pred = self._forward(x)
        loss, losses, _ = self.compiled_loss(y, y_pred)
        penalty = self.regularization_penalty()
        if penalty is not None:
            loss = loss + penalty
        return self.compute_metrics(x, y, y_pred, sample_weight, loss, losses)

    def regularization_penalty(self):
        """The sum of the weight regularizers' penalties (None when there are none)."""
        total = None
        for w, regularizer in self.regularized_weights:
            penalty = regularizer(w)
            total = penalty if total is None else total + penalty
        return total

    def _add_regularization(self, loss, grads):
        """The loss and gradients with the regularizers' penalties and their gradients."""
        pairs = self.regularized_weights
        if not pairs:
            return loss, grads
        position = {id(w): i for i, w in enumerate(self._trained_weights())}
        grads = list(grads)
        for w, regularizer in pairs:
            loss = loss + regularizer(w)
            i = position.get(id(w))
            if i is not None:
                grads[i] = grads[i] + regularizer.gradient(w)
        return loss, grads

    def predict_step(self, data):
        """The outputs (a list, one per model output) for the batch's inputs."""
        return self._forward(data[0])

    def compute_metrics(self, x, y, y_pred, sample_weight, loss, losses):
        """Add the batch's loss (``losses``: per output) to the loss trackers and the batch
        to the metrics; the logs so far (device scalars)."""
        n = len(x[0])
        self._trackers[0].update_state(loss, n)
        for tracker, value in zip(self._trackers[1:], losses):
            tracker.update_state(value, n)
        self.compiled_metrics.update_state(y, y_pred, sample_weight)
        logs = {t.name: t.result() for t in self._trackers}
        logs.update(self.compiled_metrics.results())
        return logs

    def compute_loss_and_gradients(self, x, y, sample_weight=None):
        """(loss, per-output losses, predictions, gradients of the trainable weights) for
        a batch; on the CPU it runs in cache-sized pieces (backend.training_chunk_bytes)."""
        n = len(x[0])
        size = self._chunk_size(n)
        if size >= n:
            loss, losses, y_pred, grads = self._loss_and_gradients(x, y, self._step_key, 1)
            loss, grads = self._add_regularization(loss, self._zeros_for_missing(grads))
            return loss, losses, y_pred, grads
        # The losses are means over the samples, so the pieces' gradients, each scaled by
        # its share of the batch, add up to the batch's (up to float rounding).
        loss_sum, loss_sums, preds, totals = 0, None, [], None
        for piece, start in enumerate(range(0, n, size)):
            part = slice(start, start + size)
            xc, yc = [a[part] for a in x], [t[part] for t in y]
            m = len(xc[0])
            key = None if self._step_key is None else (*self._step_key, piece)
            loss, losses, y_pred, grads = self._loss_and_gradients(xc, yc, key, m / n)
            if totals is None:
                totals = [None if g is None else g.copy() for g in grads]
                loss_sums = [v * m for v in losses]
            else:
                for i, g in enumerate(grads):
                    if g is not None and totals[i] is None:
                        totals[i] = g.copy()
                    elif g is not None:
                        totals[i] += g
                loss_sums = [s + v * m for s, v in zip(loss_sums, losses)]
            loss_sum = loss_sum + loss * m
            preds.append(y_pred)
        xp = backend.xp()
        y_pred = [xp.concatenate([p[i] for p in preds]) for i in range(len(preds[0]))]
        loss, grads = self._add_regularization(loss_sum / n, self._zeros_for_missing(totals))
        return loss, [s / n for s in loss_sums], y_pred, grads

    def _loss_and_gradients(self, x, y, key, scale):
        y_pred, tape = self._plan().run_with_tape(x, training=True, key=key)
        loss, losses, dys = self.compiled_loss(y, y_pred, with_gradients=True)
        if scale != 1:
            for dy in dys:
                if dy is not None:
                    dy *= scale
        _, grads = tape.backward(dys, self._trained_weights())
        return loss, losses, y_pred, grads

    def _zeros_for_missing(self, grads):
        """A weight no loss reached gets a zero gradient (as Keras's: the optimizer still steps)."""
        xp = backend.xp()
        return [
            xp.zeros_like(w) if g is None else g for g, w in zip(grads, self._trained_weights())
        ]

    def _trained_weights(self):
        """The trainable weights, cached until a layer's trainable flag or the graph changes."""
        from layers.base import Layer

        key = (Layer.trainable_changes, id(self._nodes[-1]) if self._nodes else None)
        cached = getattr(self, "_trained_cache", None)
        if cached is None or cached[0] != key:
            cached = self._trained_cache = (key, self.trainable_weights)
        return cached[1]

    def _forward(self, x, training=False):
        return self._plan().run(x, training=training)

    def _chunk_size(self, n):
        """Samples per forward/backward piece of an n-sample training batch (n: no pieces):
        only for losses that are means, and models whose samples are independent."""
        limit = backend.training_chunk_bytes()
        if not limit or self.compiled_loss.reduction != "sum_over_batch_size":
            return n
        if self._plan().mixes_samples:
            return n
        sample_bytes = self.sample_floats() * np.dtype(backend.floatx()).itemsize
        pieces = -(-n // max(1, limit // sample_bytes))
        return -(-n // pieces)

    # -- fit --------------------------------------------------------------------------

    def train_on_batch(self, x, y):
        """One optimisation step on one batch; returns the batch loss as a float.

        A non-finite loss or weight raises NonFiniteLossError and puts the weights and
        the optimizer state back to what they were before this batch.
        """
        self._require_compiled("train_on_batch")
        xs = data.standardize_inputs(self, x, "train_on_batch")
        ys = data.standardize_targets(self, y, len(xs[0]), "train_on_batch", _one(xs))
        self._build_for(xs)
        snapshot = self._snapshot()
        self.reset_metrics()
        batch = (data.take_inputs(xs, slice(None)), [backend.to_device(t) for t in ys], None)
        loss = float(backend.to_numpy(self.train_step(batch)["loss"]))
        if not (np.isfinite(loss) and self._weights_finite()):
            self._restore(snapshot)
            raise NonFiniteLossError(
                f"train_on_batch: the loss became {loss} (or a weight non-finite) at optimizer "
                f"step {self.optimizer.iterations + 1}; the model keeps its weights from before "
                "this batch. Try a smaller learning rate, or look for NaN/inf in the data."
            )
        return loss

    def fit(
        self,
        x,
        y,
        batch_size=32,
        epochs=1,
        verbose=1,
        validation_data=None,
        shuffle=True,
        seed=None,
        initial_epoch=0,
        callbacks=None,
    ):
        """Train for ``epochs`` epochs; returns a History whose .history holds per-epoch means.

        Every argument and both data sets (``validation_data`` too) are checked before
        the first step; a mistake raises ValueError/TypeError and changes nothing.

        Shuffling and the layers' random draws (Dropout, augmentation) depend only on
        (seed, epoch, step), so a run resumed with initial_epoch=k (from a model saved
        after epoch k) gives the same batches, and on the CPU bit-for-bit the same
        weights, as an uninterrupted one.

        Safety:
            A NaN or infinite loss (or weight) raises NonFiniteLossError (a
            FloatingPointError) naming the epoch and step; the weights and the
            optimizer state are put back to their values after the last finite step
            checked. On the CPU every step is checked; on the GPU every 50th step and
            the last one (to avoid a device sync per step), so the model goes back at
            most 50 steps. Ctrl-C (SIGINT, main thread only) stops training cleanly
            at the end of the current step: fit returns the History (the interrupted
            epoch logged with its partial means, no on_epoch_end callbacks for it) and
            the model is usable; a second Ctrl-C aborts at once.

        Determinism:
            CPU (NumPy): with the same ``seed`` (and utils.set_random_seed for the
            initial weights) two runs give bit-for-bit identical weights and history,
            and a resumed run equals an uninterrupted one bit for bit.
            GPU (CuPy): shuffling and random masks are drawn on the host from (seed,
            epoch, step); the im2col/col2im and max-pool kernels are gather-style (one
            thread per output, no atomics) and CuPy's reductions run in a fixed order
            for a given shape, so all of these are deterministic. Matrix products go to
            cuBLAS, which NVIDIA documents as bitwise reproducible run to run only on
            GPUs of the same architecture and SM count with the same CUDA toolkit and
            a single stream; on another GPU model or CUDA/CuPy version it may pick
            other algorithms (another summation order), so weights and losses can
            differ in the last bits and the differences can grow over epochs. GPU
            runs are therefore repeatable on one machine and setup, not across them;
            only the CPU guarantee is tested.
        """
        self._require_compiled("fit")
        batch_size = utils.positive_int(batch_size, "batch_size")
        epochs = utils.positive_int(epochs, "epochs")
        if not utils.is_int(initial_epoch) or not 0 <= initial_epoch < epochs:
            raise ValueError(
                f"initial_epoch must be an int in [0, epochs={epochs}), got {initial_epoch!r}."
            )
        if seed is not None and (not utils.is_int(seed) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}.")
        xs = data.standardize_inputs(self, x, "fit")
        ys = data.standardize_targets(self, y, len(xs[0]), "fit", _one(xs))
        validation = None
        if validation_data is not None:
            validation = data.check_validation_data(self, validation_data, data.sample_shapes(xs))
        callbacks = _callback_list(callbacks)
        self._build_for(xs)
        seed = int(utils.global_rng().integers(2**31) if seed is None else seed)
        run = _FitRun(self, xs, ys, batch_size, epochs, verbose, seed, callbacks)
        names = list(self.metrics_names)
        if validation is not None:
            names += [f"val_{name}" for name in names]
        params = {"epochs": epochs, "steps": run.steps, "verbose": verbose, "metrics": names}
        history = History()
        for callback in [*callbacks, history]:
            callback.set_model(self)
            callback.set_params(params)
        self.history, self.stop_training = history, False

        for callback in callbacks:
            callback.on_train_begin()
        with run.interrupt:
            for epoch in range(int(initial_epoch), epochs):
                if run.interrupt.raised:  # Ctrl-C during validation or a callback: stop here
                    print(f"Interrupted: training stopped after epoch {epoch}.")
                    break
                for callback in callbacks:
                    callback.on_epoch_begin(epoch)
                order = np.random.default_rng([seed, epoch]).permutation(run.n) if shuffle else None
                logs = self._fit_epoch(run, epoch, np.arange(run.n) if order is None else order)
                if validation is not None and not run.interrupt.raised:
                    val = self._evaluate_lists(*validation, batch_size)
                    logs.update({f"val_{k}": v for k, v in val.items()})
                if verbose:
                    print(_epoch_line(epoch, epochs, run.steps, logs))
                logs.pop("time")
                stopped_at = logs.pop("steps", None)
                history.on_epoch_end(epoch, logs)
                if stopped_at is not None:
                    print(
                        f"Interrupted: training stopped after step {stopped_at} of epoch "
                        f"{epoch + 1}; the model keeps its weights."
                    )
                    break
                for callback in callbacks:
                    callback.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        for callback in callbacks:
            callback.on_train_end()
        return history

    def _fit_epoch(self, run, epoch, order):
        """One epoch of train_step calls; the epoch's logs (floats), its time and, when
        Ctrl-C stopped it, the steps done."""
        order = backend.to_device(order)
        self.reset_metrics()
        snapshot = self._snapshot()
        start = time.perf_counter()
        bar = tqdm(
            total=run.steps,
            desc=f"Epoch {epoch + 1}/{run.epochs}",
            unit="step",
            disable=run.verbose != 1,
            leave=False,
            dynamic_ncols=True,
        )
        logs, synced_step, step_logs = {}, None, {}

        def sync(step):
            """Read the logs, check the model is finite (else roll back) and snapshot it."""
            nonlocal logs, snapshot, synced_step
            logs, synced_step = _floats(step_logs), step
            if not (np.isfinite(logs["loss"]) and self._weights_finite()):
                self._restore(snapshot)
                raise NonFiniteLossError(
                    f"The loss became {logs['loss']} (or a weight non-finite) in epoch "
                    f"{epoch + 1}, by step {step + 1}; training stopped and the model "
                    "keeps its last finite weights. Try a smaller learning rate, "
                    "or look for NaN/inf in the data."
                )
            snapshot = self._snapshot(snapshot)
            if not bar.disable:  # formatting costs 1% of a small step on the CPU
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)

        try:
            for step in range(run.steps):
                idx = order[step * run.batch_size : (step + 1) * run.batch_size]
                batch = (data.take_inputs(run.x, idx), data.take_targets(run.y, idx), None)
                self._step_key = (run.seed, epoch, step)
                step_logs = self.train_step(batch)
                if (
                    (step + 1) % run.sync_every == 0
                    or step + 1 == run.steps
                    or run.interrupt.raised
                ):
                    sync(step)
                bar.update(1)
                for callback in run.callbacks:
                    callback.on_train_batch_end(step)
                if run.interrupt.raised:
                    # Ctrl-C may come after this step's sync point (in a callback, say):
                    # the partial epoch's logs are then read now.
                    if synced_step != step:
                        sync(step)
                    logs["steps"] = step + 1
                    break
        finally:
            self._step_key = None
            bar.close()
        logs["time"] = time.perf_counter() - start
        return logs

    # -- state: snapshots for the NaN rollback -------------------------------------------

    def _state_arrays(self):
        """Every weight (moving statistics too) and the optimizer's slot arrays: what a
        training step changes."""
        slots = self.optimizer.slot_arrays() if self.optimizer is not None else []
        return self.weights + slots

    def _snapshot(self, into=None):
        """Copies of weights, optimizer slots and step count (into ``into`` when given)."""
        arrays = self._state_arrays()
        iterations = self.optimizer.iterations if self.optimizer is not None else 0
        if into is None or len(into[0]) != len(arrays):  # slots appear after the first step
            return [a.copy() for a in arrays], iterations
        for saved, a in zip(into[0], arrays):
            saved[...] = a
        return into[0], iterations

    def _restore(self, snapshot):
        """Put back what _snapshot saved; slots made after it are dropped."""
        saved, iterations = snapshot
        arrays = self._state_arrays()
        if len(saved) != len(arrays):  # snapshot from before the optimizer built its slots
            self.optimizer.slots = None
            arrays = self._state_arrays()
        for a, value in zip(arrays, saved):
            a[...] = value
        if self.optimizer is not None:
            self.optimizer.iterations = iterations

    def _weights_finite(self):
        xp = backend.xp()
        return bool(all(bool(xp.isfinite(w).all()) for w in self.weights))

    # -- evaluate and predict ---------------------------------------------------------------

    def evaluate(self, x, y, batch_size=32, verbose=0, return_dict=False):
        """The mean loss (and metrics) over (x, y), in batches: loss or [loss, *metrics]."""
        self._require_compiled("evaluate")
        batch_size = utils.positive_int(batch_size, "batch_size")
        xs = data.standardize_inputs(self, x, "evaluate")
        ys = data.standardize_targets(self, y, len(xs[0]), "evaluate", _one(xs))
        self._build_for(xs)
        logs = self._evaluate_lists(xs, ys, batch_size, verbose)
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def _evaluate_lists(self, xs, ys, batch_size, verbose=0):
        self.reset_metrics()
        logs = {}
        for start in tqdm(
            range(0, len(xs[0]), batch_size), disable=verbose != 1, desc="evaluate", leave=False
        ):
            part = slice(start, start + batch_size)
            targets = [backend.to_device(np.asarray(t[part])) for t in ys]
            logs = self.test_step((data.take_inputs(xs, part), targets, None))
        return _floats(logs)

    def predict(self, x, batch_size=32, verbose=0):
        """The model's outputs as NumPy arrays (a list for several outputs), batch by batch."""
        batch_size = utils.positive_int(batch_size, "batch_size")
        xs = data.standardize_inputs(self, x, "predict")
        self._build_for(xs)
        parts = [
            [
                backend.to_numpy(y)
                for y in self.predict_step((data.take_inputs(xs, part), None, None))
            ]
            for part in (
                slice(start, start + batch_size)
                for start in tqdm(
                    range(0, len(xs[0]), batch_size),
                    disable=verbose != 1,
                    desc="predict",
                    leave=False,
                )
            )
        ]
        outputs = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
        return outputs[0] if len(outputs) == 1 else outputs

    # -- checks ---------------------------------------------------------------------------

    def _require_compiled(self, what):
        if self.compiled_loss is None or self.optimizer is None:
            raise NotCompiledError(
                f"{what}: the model must be compiled first: call model.compile(optimizer, loss)."
            )

    def _build_for(self, xs):
        """Build an unbuilt model for the inputs' per-sample shape (after every check passed)."""
        if not self.built:
            self.build(data.sample_shapes(xs))


class _FitRun:
    """What one fit call's epochs share."""

    def __init__(self, model, xs, ys, batch_size, epochs, verbose, seed, callbacks):
        # On the GPU the training set moves to the device once; batches are gathered there.
        on_device = backend.keeps_training_data_on_device()
        self.x = [backend.to_device(a) for a in xs] if on_device else xs
        self.y = [backend.to_device(np.asarray(t)) for t in ys]
        self.n = len(xs[0])
        self.batch_size, self.epochs, self.verbose = batch_size, epochs, verbose
        self.steps = math.ceil(self.n / batch_size)
        self.seed, self.callbacks = seed, callbacks
        self.sync_every = backend.sync_interval()
        self.interrupt = _InterruptFlag()


def _one(xs):
    """The single input's per-sample shape (for the checks of an unbuilt model)."""
    return tuple(xs[0].shape[1:]) if len(xs) == 1 else None


def _floats(logs):
    return {k: float(backend.to_numpy(v)) for k, v in logs.items()}


class NotCompiledError(ValueError, RuntimeError):
    """fit, evaluate or train_on_batch was called before compile."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the model keeps its last finite weights."""


class _InterruptFlag:
    """Within ``with``, the first Ctrl-C sets ``raised`` (fit stops after the step);
    a second one aborts at once (KeyboardInterrupt)."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _callback_list(callbacks):
    callbacks = list(callbacks or [])
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be Callback instances, got {callback!r}.")
    return callbacks


def _epoch_line(epoch, epochs, steps, logs):
    """'Epoch 3/10 - 12.3s - 6.6ms/step - loss: 0.0312 - accuracy: 0.9901 - val_loss: ...'."""
    done = logs.get("steps", steps)
    values = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if k not in ("time", "steps"))
    seconds = logs["time"]
    return (
        f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {1000 * seconds / done:.1f}ms/step - "
        + values
    )
