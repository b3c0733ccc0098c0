"""Trainer: Keras's compile / fit / evaluate / predict / train_on_batch, for a model that
has forward, backward, params and layers (engine.model.Sequential takes it as a base,
as keras.Model takes keras's Trainer).

Here live the training loop (batches, chunks, metrics, progress), its safety net
(NaN rollback, Ctrl-C) and the checks of what users pass in.
"""

import signal
import threading
import time

import numpy as np
from tqdm.auto import tqdm

from engine import backend, losses, utils
from engine import metrics as metrics_module
from engine.callbacks import Callback, History


class Trainer:
    """The training half of a model; see engine.model.Sequential for the other."""

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose the optimizer, loss and metrics (instances or Keras names)."""
        import optim

        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'.")
        # Everything is resolved first: a typo leaves the model as it was.
        optimizer = optim.get(optimizer)
        loss = losses.get(loss)
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list of names, got {metrics!r}.")
        metrics = [metrics_module.get(m, loss) for m in metrics or []]
        self.optimizer, self.loss, self.metrics = optimizer, loss, metrics

    def train_on_batch(self, x, y):
        """One optimisation step on one batch; returns the batch loss as a float.

        A non-finite loss or weight raises NonFiniteLossError and puts the weights and
        the optimizer state back to what they were before this batch.
        """
        self._require_compiled("train_on_batch")
        x = self._check_x(x, "train_on_batch")
        self._check_y(y, len(x), "train_on_batch", x.shape[1:])
        self._build_for(x)
        snapshot = self._snapshot()
        loss, _ = self._train_step(self._batch(x, slice(None)), backend.to_device(np.asarray(y)))
        loss = float(backend.to_numpy(loss))
        if not (np.isfinite(loss) and self._params_finite()):
            self._restore(snapshot)
            raise NonFiniteLossError(
                f"train_on_batch: the loss became {loss} (or a weight non-finite) at optimizer "
                f"step {self.optimizer.iterations + 1}; the model keeps its weights from before "
                "this batch. Try a smaller learning rate, or look for NaN/inf in the data."
            )
        return loss

    # On the CPU a batch goes forward and backward in pieces whose layer outputs take at
    # most this many bytes, so they stay in the caches: the tutorial CNN trains 20% faster
    # at batch 128 and 40% at 512 in pieces of 32 than whole, and in pieces of 16 (this
    # value) another 2% faster at batch 32 and 4% at 128 (0 turns the pieces off).
    cpu_chunk_bytes = 5 * 2**19

    def _train_step(self, x, y):
        """One optimizer step on batch (x, y): the batch loss (0-d) and the predictions."""
        n = len(x)
        size = self._chunk_size(n)
        if size >= n:
            y_pred = self.forward(x, training=True)
            loss, dy = self.loss.value_and_gradient(y, y_pred)
            self.backward(dy, input_gradient=False)
            grads = [g for layer in self.layers for g in layer.grads.values()]
            self.optimizer.apply(self.params, grads)
            return loss, y_pred
        # The losses are means over the samples, so the pieces' gradients, each scaled by
        # its share of the batch, add up to the batch's (up to float rounding).
        loss_sum, preds, totals = 0, [], None
        for start in range(0, n, size):
            xc, yc = x[start : start + size], y[start : start + size]
            y_pred = self.forward(xc, training=True)
            loss, dy = self.loss.value_and_gradient(yc, y_pred)
            dy *= len(xc) / n
            self.backward(dy, input_gradient=False)
            grads = [g for layer in self.layers for g in layer.grads.values()]
            if totals is None:
                totals = [g.copy() for g in grads]
            else:
                for total, g in zip(totals, grads):
                    total += g
            loss_sum = loss_sum + loss * len(xc)
            preds.append(y_pred)
        sums = iter(totals)
        for layer in self.layers:  # the layers show the whole batch's gradients
            for name in layer.grads:
                layer.grads[name] = next(sums)
        self.optimizer.apply(self.params, totals)
        return loss_sum / n, backend.xp().concatenate(preds)

    def _chunk_size(self, n):
        """Samples per forward/backward piece of an n-sample training batch (n: no pieces)."""
        if backend.backend_name() != "numpy" or not self.cpu_chunk_bytes:
            return n
        if type(self.loss) not in losses.LOSSES.values():  # a custom loss may not be a mean
            return n
        key = (backend.floatx(), *map(id, self.layers))
        cached = getattr(self, "_sample_bytes_cache", None)
        if cached is None or cached[0] != key:
            shape, floats = self.input_shape, 0
            for layer in self.layers:
                shape = layer.output_shape(shape)
                floats += int(np.prod(shape))
            cached = self._sample_bytes_cache = (key, floats * np.dtype(backend.floatx()).itemsize)
        pieces = -(-n // max(1, self.cpu_chunk_bytes // cached[1]))
        return -(-n // pieces)

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

        Shuffling depends only on (seed, epoch), so a run resumed with
        initial_epoch=k (from a model saved after epoch k) gives the same batches, and
        on the CPU bit-for-bit the same weights, as an uninterrupted one.

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
            GPU (CuPy): shuffling is drawn on the host from (seed, epoch); the
            im2col/col2im and max-pool kernels are gather-style (one thread per
            output, no atomics) and CuPy's reductions run in a fixed order for a
            given shape, so all of these are deterministic. Matrix products go to
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
        initial_epoch = int(initial_epoch)
        if seed is not None and (not utils.is_int(seed) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}.")
        x = self._check_x(x, "fit")
        self._check_y(y, len(x), "fit", x.shape[1:])
        if validation_data is not None:
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
            x_val = self._check_x(validation_data[0], "validation_data x", x.shape[1:])
            self._check_y(validation_data[1], len(x_val), "validation_data y", x.shape[1:])
        callbacks = _callback_list(callbacks)
        self._build_for(x)
        if seed is None:
            seed = int(utils.global_rng().integers(2**31))
        seed = int(seed)
        history = History()
        steps = -(-len(x) // batch_size)
        names = ["loss", *(name for name, _ in self.metrics)]
        if validation_data is not None:
            names += [f"val_{name}" for name in names]
        params = {"epochs": epochs, "steps": steps, "verbose": verbose, "metrics": names}
        for callback in [*callbacks, history]:
            callback.set_model(self)
            callback.set_params(params)
        self.history = history
        self.stop_training = False

        # On the GPU the training set moves to the device once; batches are gathered there.
        x_data = backend.to_device(x) if backend.backend_name() == "cupy" else x
        y_data = backend.to_device(np.asarray(y))
        n = len(x)
        interrupt = _InterruptFlag()
        for callback in callbacks:
            callback.on_train_begin()
        with interrupt:
            for epoch in range(initial_epoch, epochs):
                if interrupt.raised:  # Ctrl-C during validation or a callback: stop here
                    print(f"Interrupted: training stopped after epoch {epoch}.")
                    break
                for callback in callbacks:
                    callback.on_epoch_begin(epoch)
                order = (
                    np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
                )
                order = backend.to_device(order)
                logs = self._fit_epoch(
                    x_data,
                    y_data,
                    order,
                    batch_size,
                    steps,
                    epoch,
                    epochs,
                    verbose,
                    interrupt,
                    callbacks,
                )
                if validation_data is not None and not interrupt.raised:
                    val = self.evaluate(
                        validation_data[0],
                        validation_data[1],
                        batch_size=batch_size,
                        return_dict=True,
                    )
                    logs.update({f"val_{k}": v for k, v in val.items()})
                if verbose:
                    print(_epoch_line(epoch, epochs, steps, logs))
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

    def _fit_epoch(
        self,
        x_data,
        y_data,
        order,
        batch_size,
        steps,
        epoch,
        epochs,
        verbose,
        interrupt,
        callbacks,
    ):
        xp = backend.xp()
        # Sums stay on the device; the host reads them at sync points only (every step on the CPU).
        sync_every = 1 if xp is np else 50
        loss_sum = xp.zeros((), dtype=np.float64)
        correct = [xp.zeros((), dtype=np.float64) for _ in self.metrics]
        seen = 0
        snapshot = self._snapshot()
        start = time.perf_counter()
        bar = tqdm(
            total=steps,
            desc=f"Epoch {epoch + 1}/{epochs}",
            unit="step",
            disable=verbose != 1,
            leave=False,
            dynamic_ncols=True,
        )
        logs, synced_step = {}, None

        def sync(step):
            """Read the sums, check the model is finite (else roll back) and snapshot it."""
            nonlocal logs, snapshot, synced_step
            logs, synced_step = self._epoch_logs(loss_sum, correct, seen), step
            if not (np.isfinite(logs["loss"]) and self._params_finite()):
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
            for step in range(steps):
                idx = order[step * batch_size : (step + 1) * batch_size]
                xb = self._batch(x_data, idx)
                yb = y_data[idx]
                loss, y_pred = self._train_step(xb, yb)
                loss_sum += loss * len(idx)
                for i, (_, fn) in enumerate(self.metrics):
                    correct[i] += fn(yb, y_pred)
                seen += len(idx)
                if (step + 1) % sync_every == 0 or step + 1 == steps or interrupt.raised:
                    sync(step)
                bar.update(1)
                for callback in callbacks:
                    callback.on_train_batch_end(step)
                if interrupt.raised:
                    # Ctrl-C may come after this step's sync point (in a callback, say):
                    # the partial epoch's logs are then read now.
                    if synced_step != step:
                        sync(step)
                    logs["steps"] = step + 1
                    break
        finally:
            bar.close()
        logs["time"] = time.perf_counter() - start
        return logs

    def _epoch_logs(self, loss_sum, correct, seen):
        logs = {"loss": float(backend.to_numpy(loss_sum)) / seen}
        for (name, _), count in zip(self.metrics, correct):
            logs[name] = float(backend.to_numpy(count)) / seen
        return logs

    def _state_arrays(self):
        """The parameters and the optimizer's slot arrays: what a training step changes."""
        return self.params + (self.optimizer.slot_arrays() if self.optimizer is not None else [])

    def _snapshot(self, into=None):
        """Copies of parameters, optimizer slots and step count (into ``into`` when given)."""
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

    def _params_finite(self):
        xp = backend.xp()
        return bool(all(bool(xp.isfinite(p).all()) for p in self.params))

    def evaluate(self, x, y, batch_size=32, verbose=0, return_dict=False):
        """The mean loss (and metrics) over (x, y), in batches: loss or [loss, *metrics]."""
        self._require_compiled("evaluate")
        batch_size = utils.positive_int(batch_size, "batch_size")
        x = self._check_x(x, "evaluate")
        self._check_y(y, len(x), "evaluate", x.shape[1:])
        self._build_for(x)
        y = np.asarray(y)
        xp = backend.xp()
        loss_sum = xp.zeros((), dtype=np.float64)
        correct = [xp.zeros((), dtype=np.float64) for _ in self.metrics]
        for start in tqdm(
            range(0, len(x), batch_size),
            disable=verbose != 1,
            desc="evaluate",
            leave=False,
        ):
            part = slice(start, start + batch_size)
            y_pred = self.forward(self._batch(x, part))
            yb = backend.to_device(y[part])
            loss_sum += self.loss.compute(yb, y_pred) * len(yb)
            for i, (_, fn) in enumerate(self.metrics):
                correct[i] += fn(yb, y_pred)
        logs = self._epoch_logs(loss_sum, correct, len(x))
        if return_dict:
            return logs
        return logs["loss"] if not self.metrics else list(logs.values())

    def predict(self, x, batch_size=32, verbose=0):
        """The model's outputs as a NumPy array, computed batch by batch."""
        batch_size = utils.positive_int(batch_size, "batch_size")
        x = self._check_x(x, "predict")
        self._build_for(x)
        outputs = [
            backend.to_numpy(self.forward(self._batch(x, slice(start, start + batch_size))))
            for start in tqdm(
                range(0, len(x), batch_size),
                disable=verbose != 1,
                desc="predict",
                leave=False,
            )
        ]
        return (
            np.concatenate(outputs)
            if outputs
            else np.zeros((0, *self.output_shape), backend.floatx())
        )

    def _require_compiled(self, what):
        if self.loss is None or self.optimizer is None:
            raise NotCompiledError(
                f"{what}: the model must be compiled first: call model.compile(optimizer, loss)."
            )

    def _check_x(self, x, what, input_shape=None):
        """A NumPy (or device) array of numbers whose per-sample shape fits the model.

        ``input_shape`` is the expected per-sample shape (default: the model's own).
        An unbuilt model is not built here (see _build_for): the layers only check
        that they can take x's shape, so a refused call leaves the model as it was.
        """
        if not self.layers:
            raise ValueError(f"{what}: the model has no layers.")
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
        expected = input_shape if input_shape is not None else self.input_shape
        if expected is None:  # unbuilt model: the layers say whether x's shape works
            try:
                self._output_shape_for(x.shape[1:])
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

    def _check_y(self, y, n, what, input_shape=None):
        """Targets of n samples that the loss accepts for the model's outputs.

        ``input_shape`` is the per-sample input shape the outputs come from (needed
        when the model is not built yet).
        """
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
        if input_shape is not None and not self.built:
            output_shape = self._output_shape_for(input_shape)
        else:
            output_shape = self.output_shape
        try:
            self.loss.check_targets(y, output_shape)
        except ValueError as exc:
            raise type(exc)(f"{what}: {exc}") from None

    def _build_for(self, x):
        """Build an unbuilt model for x's per-sample shape (after every check passed)."""
        if not self.built:
            self.build(x.shape[1:])

    def _batch(self, data, idx):
        """Rows ``idx`` of ``data`` as a floatx device array."""
        return (
            backend.to_device(data[idx], dtype=backend.floatx())
            if not backend.is_gpu_array(data)
            else data[idx].astype(backend.floatx(), copy=False)
        )


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
