"""Trainer: Keras's compile / fit / evaluate / predict / train_on_batch for engine.Model
(keras.Model takes keras's Trainer as a base in the same way).

As in Keras 3, a step is a method a subclass may override:

    train_step(data)     one optimizer step on a batch; returns the logs (device scalars)
    test_step(data)      the loss and metrics of a batch
    predict_step(data)   the outputs of a batch

``data`` is (inputs, targets, sample_weight): lists of device arrays, one per model input
and per output with a loss (sample_weight: None, or one array or None per such output).
fit is the loop around train_step, with its safety net (NaN rollback, Ctrl-C), the
callbacks (engine/callbacks/: the progress display is one) and the checks of what users
pass in (engine/data_adapter.py: arrays, or datasets that yield batches).

After engine.distribute.init() under mpiexec, fit, evaluate and train_on_batch run
data-parallel: each rank steps on its share of every global batch and the gradients,
logs and errors are agreed over MPI (engine/distribute/); one process runs as before.
"""

import contextlib
import signal
import threading
import warnings

import numpy as np

import optim
from engine import backend, distribute, utils
from engine import data_adapter as data
from engine.callbacks import Callback, CallbackList, History, ProgbarLogger, TerminateOnNaN
from engine.compile_utils import CompiledLoss, CompiledMetrics
from engine.metrics import Mean
from optim.schedules import LearningRateSchedule


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
        self._global_samples = None  # distributed: the global batch's size of that step

    # -- compile --------------------------------------------------------------------

    def compile(
        self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None
    ):
        """Choose the optimizer, the loss(es) and metrics (instances or Keras names).

        As Keras's: ``metrics`` ignore sample and class weights, ``weighted_metrics`` use them.
        """
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'.")
        # Everything is resolved first: a typo leaves the model as it was.
        optimizer = optim.get(optimizer)
        names = self.output_names if self.built else ["output"]
        compiled_loss = CompiledLoss(loss, loss_weights, names)
        compiled_metrics = CompiledMetrics(metrics, compiled_loss, weighted_metrics)
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
        loss, losses, _ = self.compiled_loss(y, y_pred, sample_weights=sample_weight)
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
        a batch; on the CPU it runs in cache-sized pieces (backend.training_chunk_bytes).

        Distributed (engine.distribute), the batch is this rank's share of the global batch
        and the gradients are the global batch's, summed over the ranks; the loss and
        predictions stay this rank's.
        """
        replicas = distribute.current()
        if replicas is None:
            loss, losses, y_pred, grads = self._share_loss_and_gradients(
                x, y, sample_weight, len(x[0])
            )
            loss, grads = self._add_regularization(loss, grads)
            return loss, losses, y_pred, grads
        n, total, error = len(x[0]), self._global_samples, None
        if total is None:  # called outside fit: the ranks' shares make the batch
            total = distribute.global_count(n)
        if total < replicas.size and distribute.synchronizes(self):
            raise distribute.mark_agreed(  # every rank knows total: all raise it alike
                ValueError(
                    f"A batch of {total} samples leaves ranks of the {replicas.size} with "
                    "none, and synchronized BatchNormalization needs every rank's forward: "
                    f"use batches (the last one too) of at least {replicas.size} samples."
                )
            )
        try:
            if n:
                loss, losses, y_pred, grads = self._share_loss_and_gradients(
                    x, y, sample_weight, total
                )
            else:
                loss, losses, y_pred, grads = self._empty_share()
        except Exception as exc:  # agreed with the other ranks before anything changes
            error, grads = exc, None
        where = ""
        if self._step_key is not None:
            where = f" in epoch {self._step_key[1] + 1}, step {self._step_key[2] + 1}"
        moving = distribute.moving_statistics(self)  # per rank: averaged at every step
        grads = replicas.sum_gradients(grads, self._trained_weights(), error, where, moving)
        loss, grads = self._add_regularization(loss, grads)
        return loss, losses, y_pred, grads

    def _share_loss_and_gradients(self, x, y, sample_weight, total):
        """The loss of these n samples and the gradients of their part of a ``total``-sample
        batch (n / total of their mean's; n == total in one process), without the
        regularizers."""
        n = len(x[0])
        size = self._chunk_size(n)
        if size >= n:
            key = self._step_key
            loss, losses, y_pred, grads = self._loss_and_gradients(
                x, y, sample_weight, key, n / total
            )
            return loss, losses, y_pred, self._zeros_for_missing(grads)
        # The losses are (weighted) sums over the samples divided by their count, so the
        # pieces' gradients, each scaled by its share of the batch, add up to the batch's
        # (up to float rounding).
        loss_sum, loss_sums, preds, totals = 0, None, [], None
        for piece, start in enumerate(range(0, n, size)):
            part = slice(start, start + size)
            xc, yc = [a[part] for a in x], [t[part] for t in y]
            wc = (
                None
                if sample_weight is None
                else [w if w is None else w[part] for w in sample_weight]
            )
            m = len(xc[0])
            key = None if self._step_key is None else (*self._step_key, piece)
            loss, losses, y_pred, grads = self._loss_and_gradients(xc, yc, wc, key, m / total)
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
        return loss_sum / n, [s / n for s in loss_sums], y_pred, self._zeros_for_missing(totals)

    def _empty_share(self):
        """A rank whose share of a batch smaller than the job is empty: no loss, no
        predictions, zero gradients."""
        xp, dtype = backend.xp(), backend.floatx()
        losses = [xp.zeros((), dtype) for loss in self.compiled_loss.losses if loss is not None]
        y_pred = [xp.zeros((0, *t.sample_shape), dtype) for t in self.outputs]
        return (
            xp.zeros((), dtype),
            losses,
            y_pred,
            self._zeros_for_missing([None] * len(self._trained_weights())),
        )

    def _loss_and_gradients(self, x, y, sample_weight, key, scale):
        y_pred, tape = self._plan().run_with_tape(x, training=True, key=key)
        loss, losses, dys = self.compiled_loss(y, y_pred, True, sample_weight)
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
        pieces = -(-n // max(backend.MIN_PIECE_SAMPLES, limit // sample_bytes))
        return -(-n // pieces)

    # -- fit --------------------------------------------------------------------------

    @distribute.guarded
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One optimisation step on one batch; returns the batch loss as a float.

        A non-finite loss or weight raises NonFiniteLossError and puts the weights and
        the optimizer state back to what they were before this batch. Distributed, the
        batch is the global one: rank 0's weights are broadcast, each rank steps on its
        share, and the loss is the global batch's.
        """
        replicas = distribute.current()
        with _agreement(replicas, " checking train_on_batch's data"):
            self._require_compiled("train_on_batch")
            xs, ys, weights = self._arrays(x, y, sample_weight, class_weight, "train_on_batch")
            self._build_for(xs)
        if replicas is not None:
            replicas.broadcast_state(self, None)
        snapshot = self._snapshot()
        self.reset_metrics()
        batch = next(data.ArrayBatches(xs, ys, weights, len(xs[0])).in_order())
        if replicas is None:
            loss = float(backend.to_numpy(self.train_step(batch)["loss"]))
        else:
            batch, self._global_samples = distribute.shard_batch(batch, *_rank_and_size())
            try:
                loss = replicas.reduced_logs(self, self.train_step(batch))["loss"]
            finally:
                self._global_samples = None
        if not (np.isfinite(loss) and self._weights_finite()):
            self._restore(snapshot)
            raise NonFiniteLossError(
                f"train_on_batch: the loss became {loss} (or a weight non-finite) at optimizer "
                f"step {self.optimizer.iterations + 1}; the model keeps its weights from before "
                "this batch. Try a smaller learning rate, or look for NaN/inf in the data."
            )
        return loss

    @distribute.guarded
    def fit(
        self,
        x=None,
        y=None,
        batch_size=32,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
        seed=None,
    ):
        """Train for ``epochs`` epochs; returns a History whose .history holds per-epoch means.

        Keras 3's arguments. ``x`` and ``y`` are arrays (see engine/data_adapter.py), or
        ``x`` is a dataset that yields batches (x, y) or (x, y, sample_weight): an object
        with __len__ and __getitem__ (a PyDataset), or a Python generator (then
        ``steps_per_epoch`` batches make an epoch; without it, all it yields). For arrays,
        ``validation_split`` keeps the last fraction of the samples (before shuffling) to
        validate on; ``sample_weight`` weighs each sample's loss (sum(w_i * l_i) / N, as
        Keras), ``class_weight`` {class: weight} gives each sample its class's weight.
        ``validation_data`` is (x_val, y_val) or a dataset; ``validation_freq`` an int
        (every n-th epoch) or the epochs (1-based) to validate after. ``verbose``: 0
        silent, 1 (or 'auto') a progress bar and one line per epoch, 2 the lines only.
        ``seed``: the shuffling and the layers' random draws (default: drawn from the
        global generator, which utils.set_random_seed seeds).

        Every argument and the data (``validation_data`` too; a dataset's first batch)
        are checked before the first step; a mistake raises ValueError/TypeError and
        changes nothing. A dataset's later batches are checked as they come: a bad one
        stops training with an error naming it, the steps before it done.

        Shuffling and the layers' random draws (Dropout, augmentation) depend only on
        (seed, epoch, step), so a run resumed with initial_epoch=k (from a model saved
        after epoch k) gives the same batches, and on the CPU bit-for-bit the same
        weights, as an uninterrupted one.

        Safety:
            A NaN or infinite loss (or weight) raises NonFiniteLossError (a
            FloatingPointError) naming the epoch and step; the weights and the
            optimizer state are put back to their values after the last finite step
            checked (with a TerminateOnNaN callback, training stops there instead, as
            Keras's does). On the CPU every step is checked; on the GPU every 50th step
            and the last one (to avoid a device sync per step), so the model goes back at
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

        Distributed (engine.distribute.init() under mpiexec): ``batch_size`` is the global
        batch, which each rank takes a share of; the weights start as rank 0's and stay
        identical on every rank, the logs are the global batch's (reduced over the ranks),
        only rank 0 shows progress, and an error on any rank stops every rank with it.
        On the CPU the weights equal a one-process run's up to float rounding.
        """
        replicas = distribute.current()
        with _agreement(replicas, " checking fit's arguments and data"):
            train, validation, validate_after, user_callbacks, verbose = self._fit_setup(
                x,
                y,
                batch_size,
                epochs,
                verbose,
                initial_epoch,
                seed,
                steps_per_epoch,
                validation_steps,
                validation_batch_size,
                validation_freq,
                validation_split,
                validation_data,
                sample_weight,
                class_weight,
                callbacks,
            )
        seed = int(utils.global_rng().integers(2**31) if seed is None else seed)
        if replicas is not None:
            seed = replicas.broadcast_state(self, seed)
            train = distribute.ShardedBatches(train, *_rank_and_size())
            if validation is not None:
                validation = distribute.ShardedBatches(validation, *_rank_and_size())
        names = list(self.metrics_names)
        if validation is not None:
            names += [f"val_{name}" for name in names]
        history = History()
        progbar = [ProgbarLogger()] if verbose and distribute.is_chief() else []
        extra = [history, *progbar]  # Keras's order: last
        params = {"epochs": epochs, "steps": train.steps, "verbose": verbose, "metrics": names}
        callbacks = CallbackList([*user_callbacks, *extra], model=self, params=params)
        run = _FitRun(train, shuffle, seed, callbacks, user_callbacks, extra, replicas)
        self.history, self.stop_training = history, False
        callbacks.on_train_begin()
        with run.interrupt:
            logs = self._fit_epochs(
                run, range(int(initial_epoch), epochs), validation, validate_after
            )
        callbacks.on_train_end(logs)
        return history

    def _fit_setup(
        self,
        x,
        y,
        batch_size,
        epochs,
        verbose,
        initial_epoch,
        seed,
        steps_per_epoch,
        validation_steps,
        validation_batch_size,
        validation_freq,
        validation_split,
        validation_data,
        sample_weight,
        class_weight,
        callbacks,
    ):
        """fit's checks, then its (training batches, validation batches or None, the
        validation test, the user's callbacks, verbose) with the model built."""
        self._require_compiled("fit")
        batch_size = utils.positive_int(batch_size, "batch_size")
        epochs = utils.positive_int(epochs, "epochs")
        if not utils.is_int(initial_epoch) or not 0 <= initial_epoch < epochs:
            raise ValueError(
                f"initial_epoch must be an int in [0, epochs={epochs}), got {initial_epoch!r}."
            )
        if seed is not None and (not utils.is_int(seed) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}.")
        verbose = _verbosity(verbose)
        steps_per_epoch = _optional_positive(steps_per_epoch, "steps_per_epoch")
        validation_steps = _optional_positive(validation_steps, "validation_steps")
        validation_batch_size = _optional_positive(validation_batch_size, "validation_batch_size")
        validate_after = _validation_epochs(validation_freq)
        if validation_split is not None and validation_split != 0:
            utils.check_number("validation_split", validation_split, 0, 1, high_open=True)
        train, split = self._training_data(
            x,
            y,
            sample_weight,
            class_weight,
            batch_size,
            steps_per_epoch,
            validation_split,
            validation_batch_size or batch_size,
            validation_steps,
        )
        validation = split
        if validation_data is not None:  # as Keras: it takes the place of validation_split
            validation = self._validation_data(
                validation_data,
                validation_batch_size or batch_size,
                validation_steps,
                train.sample_shapes,
            )
        user_callbacks = _callback_list(callbacks)
        self._build_for_shapes(train.sample_shapes)
        return train, validation, validate_after, user_callbacks, verbose

    def _fit_epochs(self, run, epochs, validation, validate_after):
        """The epochs of fit, each followed by validation and on_epoch_end; the last logs."""
        train, callbacks = run.train, run.callbacks
        start_rate, log_rate = self.optimizer.learning_rate, self._rate_is_scheduled()
        logs = {}
        for epoch in epochs:
            if run.interrupted(agree=True):  # Ctrl-C during validation or a callback
                _say(f"Interrupted: training stopped after epoch {epoch}.")
                break
            callbacks.on_epoch_begin(epoch)
            train.on_epoch_begin()
            known = train.steps is not None
            logs, steps_done = self._fit_epoch(run, epoch)
            train.on_epoch_end()
            if not known:  # a generator's first pass ends where it runs out
                train.steps = steps_done
            ran_out = known and getattr(train, "exhausted", False) and not self.stop_training
            if steps_done == 0:
                _warn_ran_out(epochs.stop, train.steps)
                break
            interrupted = run.interrupted(agree=True)
            if validation is not None and validate_after(epoch) and not interrupted:
                val = self._evaluate_batches(validation.in_order(), callbacks)
                logs.update({f"val_{k}": v for k, v in val.items()})
            rate = self.optimizer.learning_rate
            log_rate = log_rate or rate != start_rate
            if log_rate:  # as Keras's 'learning_rate' log, once the rate moves
                logs["learning_rate"] = float(rate)
            if interrupted:
                for callback in run.extra:  # History and the progress line only
                    callback.on_epoch_end(epoch, logs)
                _say(
                    f"Interrupted: training stopped after step {steps_done} of epoch "
                    f"{epoch + 1}; the model keeps its weights."
                )
                break
            callbacks.on_epoch_end(epoch, logs)
            if ran_out:
                _warn_ran_out(epochs.stop, train.steps)
                break
            if run.agreed_stop(self):
                break
        return logs

    def _rate_is_scheduled(self):
        return isinstance(getattr(self.optimizer, "_learning_rate", None), LearningRateSchedule)

    def _fit_epoch(self, run, epoch):
        """One epoch of train_step calls: (the epoch's logs as floats, the steps done).
        It ends early at Ctrl-C, when a callback sets stop_training, or (with
        TerminateOnNaN) at a non-finite loss."""
        self.reset_metrics()
        snapshot = self._snapshot()
        batch_begin = run.callbacks.listeners("on_train_batch_begin")
        batch_end = run.callbacks.listeners("on_train_batch_end")
        logs, synced_step, step_logs, steps_done = {}, None, {}, 0

        def sync(step):
            """Read the logs, check the model is finite (else roll back) and snapshot it;
            False when the step went non-finite and TerminateOnNaN stopped training.
            Distributed, the logs are reduced over the ranks, so all decide alike."""
            nonlocal logs, snapshot, synced_step
            logs, synced_step = run.floats(self, step_logs), step
            if np.isfinite(logs["loss"]) and self._weights_finite():
                snapshot = self._snapshot(snapshot)
                return True
            self._restore(snapshot)
            if not run.terminate_on_nan:
                raise distribute.mark_agreed(
                    NonFiniteLossError(
                        f"The loss became {logs['loss']} (or a weight non-finite) in epoch "
                        f"{epoch + 1}, by step {step + 1}; training stopped and the model "
                        "keeps its last finite weights. Try a smaller learning rate, "
                        "or look for NaN/inf in the data."
                    )
                )
            for callback in run.terminate_on_nan:
                callback.on_train_batch_end(step, logs)
            self.stop_training = True
            return False

        steps = run.train.steps
        try:
            for step, batch in enumerate(run.train.batches(run.seed, epoch, run.shuffle)):
                for listener in batch_begin:
                    listener(step)
                self._step_key = run.step_key(epoch, step)
                self._global_samples = run.train_samples()
                step_logs = self.train_step(batch)
                steps_done = step + 1
                if (
                    (step + 1) % run.sync_every == 0 or step + 1 == steps or run.interrupted()
                ) and not sync(step):
                    break
                for listener in batch_end:
                    listener(step, logs if synced_step == step else step_logs)
                if run.should_stop(self):
                    # Ctrl-C may come after this step's sync point (in a callback, say):
                    # the partial epoch's logs are then read now.
                    break
            if steps_done and synced_step != steps_done - 1:
                sync(steps_done - 1)
        finally:
            self._step_key = self._global_samples = None
        return logs, steps_done

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

    @distribute.guarded
    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=32,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
    ):
        """The mean loss (and metrics) over (x, y), in batches: loss or [loss, *metrics]
        (a dict with return_dict). ``x`` may be a dataset yielding (x, y[, sample_weight])
        batches (``steps`` of them; default all); ``sample_weight`` as in fit.

        Distributed, each rank evaluates its share of every batch and the results are the
        whole data's (totals and counts summed over the ranks)."""
        replicas = distribute.current()
        with _agreement(replicas, " checking evaluate's arguments and data"):
            self._require_compiled("evaluate")
            batch_size = utils.positive_int(batch_size, "batch_size")
            verbose = _verbosity(verbose)
            steps = _optional_positive(steps, "steps")
            if data.is_dataset(x):
                _no_arrays_with_a_dataset("evaluate", y=y, sample_weight=sample_weight)
                source = data.DatasetBatches(self, x, "evaluate", steps)
            else:
                xs, ys, weights = self._arrays(x, y, sample_weight, None, "evaluate")
                steps = _capped(steps, xs, batch_size, "steps")
                source = data.ArrayBatches(xs, ys, weights, batch_size, steps, on_device=False)
            user_callbacks = _callback_list(callbacks)
            self._build_for_shapes(source.sample_shapes)
        if replicas is not None:
            source = distribute.ShardedBatches(source, *_rank_and_size())
        progbar = [ProgbarLogger()] if verbose and distribute.is_chief() else []
        params = {"epochs": 1, "steps": source.steps, "verbose": verbose}
        callback_list = CallbackList([*user_callbacks, *progbar], model=self, params=params)
        logs = self._evaluate_batches(source.in_order(), callback_list)
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def _evaluate_batches(self, batches, callbacks):
        """test_step over ``batches``, with the test hooks; the logs as floats.
        Distributed, the batches are this rank's shares (an empty one is skipped), each
        batch's logs this rank's, and the final logs the whole data's."""
        self.reset_metrics()
        callbacks.on_test_begin()
        batch_begin = callbacks.listeners("on_test_batch_begin")
        batch_end = callbacks.listeners("on_test_batch_end")
        replicas = distribute.current()
        logs = {}
        for step, batch in enumerate(batches):
            for listener in batch_begin:
                listener(step)
            if replicas is None or len(batch[0][0]):
                logs = self.test_step(batch)
            if batch_end:
                step_logs = _floats(logs)
                for listener in batch_end:
                    listener(step, step_logs)
        logs = _floats(logs) if replicas is None else replicas.reduced_logs(self, logs)
        callbacks.on_test_end(logs)
        return logs

    def predict(self, x, batch_size=32, verbose="auto", steps=None, callbacks=None):
        """The model's outputs as NumPy arrays (a list for several outputs), batch by batch.
        ``x`` may be a dataset yielding x or (x, ...) batches (``steps`` of them)."""
        batch_size = utils.positive_int(batch_size, "batch_size")
        verbose = _verbosity(verbose)
        steps = _optional_positive(steps, "steps")
        if data.is_dataset(x):
            source = data.DatasetBatches(self, x, "predict", steps, targets=False)
        else:
            xs = data.standardize_inputs(self, x, "predict")
            steps = _capped(steps, xs, batch_size, "steps")
            source = data.ArrayBatches(xs, [], None, batch_size, steps, on_device=False)
        user_callbacks = _callback_list(callbacks)
        self._build_for_shapes(source.sample_shapes)
        progbar = [ProgbarLogger()] if verbose and distribute.is_chief() else []
        params = {"epochs": 1, "steps": source.steps, "verbose": verbose}
        callback_list = CallbackList([*user_callbacks, *progbar], model=self, params=params)
        callback_list.on_predict_begin()
        batch_begin = callback_list.listeners("on_predict_batch_begin")
        batch_end = callback_list.listeners("on_predict_batch_end")
        parts = []
        for step, batch in enumerate(source.in_order()):
            for listener in batch_begin:
                listener(step)
            outputs = [backend.to_numpy(y) for y in self.predict_step(batch)]
            parts.append(outputs)
            for listener in batch_end:
                listener(step, {"outputs": outputs})
        callback_list.on_predict_end()
        outputs = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
        return outputs[0] if len(outputs) == 1 else outputs

    # -- the data ----------------------------------------------------------------------------

    def _arrays(self, x, y, sample_weight, class_weight, what):
        """Checked (inputs, targets, sample weights or None) of arrays."""
        xs = data.standardize_inputs(self, x, what)
        ys = data.standardize_targets(self, y, len(xs[0]), what, _one(xs))
        weights = data.standardize_sample_weight(self, sample_weight, ys, what)
        if class_weight is not None:
            if weights is not None:
                raise ValueError(
                    f"{what}: class_weight and sample_weight cannot both be given (as in Keras)."
                )
            weights = data.class_weight_to_sample_weight(self, class_weight, ys, what, _one(xs))
        return xs, ys, weights

    def _training_data(
        self, x, y, sample_weight, class_weight, batch_size, steps, split, val_batch, val_steps
    ):
        """fit's (training batches, validation batches from validation_split or None)."""
        if data.is_dataset(x):
            _no_arrays_with_a_dataset("fit", y=y, sample_weight=sample_weight)
            if split:
                raise ValueError(
                    "fit: validation_split needs arrays; with a dataset, give validation_data."
                )
            return data.DatasetBatches(self, x, "fit", steps, class_weight), None
        xs, ys, weights = self._arrays(x, y, sample_weight, None, "fit")
        validation = None
        if split:
            # Keras splits x, y and sample_weight; class weights apply to training only.
            arrays = [*xs, *ys, *(weights or [])]
            train, held = data.split_validation(arrays, split, "fit")
            cut = [len(xs), len(xs) + len(ys)]
            xs, ys, weights = train[: cut[0]], train[cut[0] : cut[1]], train[cut[1] :] or None
            vx, vy, vw = held[: cut[0]], held[cut[0] : cut[1]], held[cut[1] :] or None
            val_steps = _capped(val_steps, vx, val_batch, "validation_steps")
            validation = data.ArrayBatches(vx, vy, vw, val_batch, val_steps)
        if class_weight is not None:
            if weights is not None:
                raise ValueError(
                    "fit: class_weight and sample_weight cannot both be given (as in Keras)."
                )
            weights = data.class_weight_to_sample_weight(self, class_weight, ys, "fit", _one(xs))
        steps = _capped(steps, xs, batch_size, "steps_per_epoch")
        return data.ArrayBatches(xs, ys, weights, batch_size, steps), validation

    def _validation_data(self, validation_data, batch_size, steps, input_shape):
        if data.is_dataset(validation_data):
            return data.DatasetBatches(self, validation_data, "validation_data", steps)
        xs, ys = data.check_validation_data(self, validation_data, input_shape)
        steps = _capped(steps, xs, batch_size, "validation_steps")
        return data.ArrayBatches(xs, ys, None, batch_size, steps)

    # -- checks ---------------------------------------------------------------------------

    def _require_compiled(self, what):
        if self.compiled_loss is None or self.optimizer is None:
            raise NotCompiledError(
                f"{what}: the model must be compiled first: call model.compile(optimizer, loss)."
            )

    def _build_for(self, xs):
        """Build an unbuilt model for the inputs' per-sample shape (after every check passed)."""
        self._build_for_shapes(data.sample_shapes(xs))

    def _build_for_shapes(self, shapes):
        if not self.built:
            self.build(shapes)


class _FitRun:
    """What one fit call's epochs share; distributed, what its ranks agree on."""

    def __init__(self, train, shuffle, seed, callbacks, user_callbacks, extra, replicas=None):
        self.train, self.shuffle, self.seed = train, shuffle, seed
        self.callbacks = callbacks
        self.extra = extra  # History and the progress display
        self.terminate_on_nan = [c for c in user_callbacks if isinstance(c, TerminateOnNaN)]
        self.sync_every = backend.sync_interval()
        self.interrupt = _InterruptFlag()
        self.replicas = replicas  # engine.distribute's DataParallel, or None
        if replicas is not None:
            replicas.interrupt, replicas.interrupted = self.interrupt, False

    def step_key(self, epoch, step):
        """The random key of a step: (seed, epoch, step), and the rank when distributed."""
        if self.replicas is None:
            return (self.seed, epoch, step)
        return (self.seed, epoch, step, self.replicas.rank)

    def train_samples(self):
        """The global batch's size of the step about to run (None in one process)."""
        return None if self.replicas is None else self.train.samples

    def interrupted(self, agree=False):
        """Ctrl-C was pressed: on this process, or (distributed) on any rank, as agreed in
        the last step's allreduce, or now (``agree``: a collective every rank makes)."""
        if self.replicas is None:
            return self.interrupt.raised
        if agree:
            local = self.interrupt.raised or self.replicas.interrupted
            self.replicas.interrupted = self.replicas.agree_any(local)
        return self.replicas.interrupted

    def agreed_stop(self, model):
        """model.stop_training, set on every rank when a callback set it on any."""
        if self.replicas is not None:
            model.stop_training = self.replicas.agree_any(model.stop_training)
        return model.stop_training

    def should_stop(self, model):
        """After a step's callbacks: Ctrl-C, or a callback set stop_training (distributed:
        on any rank, agreed in one small allreduce)."""
        if self.replicas is None:
            return self.interrupt.raised or model.stop_training
        stop, interrupted = self.replicas.agree_flags(
            [model.stop_training, self.interrupt.raised or self.replicas.interrupted]
        )
        model.stop_training, self.replicas.interrupted = stop, interrupted
        return stop or interrupted

    def floats(self, model, logs):
        """The logs as floats: distributed, the global batch's (reduced over the ranks)."""
        if self.replicas is None:
            return _floats(logs)
        return self.replicas.reduced_logs(model, logs)


def _agreement(replicas, where):
    """A block whose exception on any rank is raised on every rank (one process: as is)."""
    return contextlib.nullcontext() if replicas is None else replicas.agreement(where)


def _rank_and_size():
    return distribute.rank(), distribute.size()


def _say(text):
    """print, on rank 0 only when distributed."""
    if distribute.is_chief():
        print(text)


def _one(xs):
    """The single input's per-sample shape (for the checks of an unbuilt model)."""
    return tuple(xs[0].shape[1:]) if len(xs) == 1 else None


def _floats(logs):
    return {k: float(backend.to_numpy(v)) for k, v in logs.items()}


def _verbosity(verbose):
    """verbose as 0, 1 or 2 ('auto' is 1, as in Keras)."""
    if verbose == "auto":
        return 1
    if not (utils.is_int(verbose) or isinstance(verbose, bool)) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}.")
    return int(verbose)


def _optional_positive(value, what):
    return None if value is None else utils.positive_int(value, what)


def _capped(steps, xs, batch_size, what):
    """``steps`` batches of arrays, checked against how many there are (None: all)."""
    available = -(-len(xs[0]) // batch_size)
    if steps is not None and steps > available:
        raise ValueError(
            f"{what}={steps} asks for {steps} steps, but {len(xs[0])} samples make only "
            f"{available} batches of {batch_size}."
        )
    return steps


def _validation_epochs(freq):
    """validation_freq as a test of the (0-based) epoch: an int n (every n-th epoch) or the
    1-based epochs to validate after, as Keras's."""
    if utils.is_int(freq) and freq > 0:
        return lambda epoch: (epoch + 1) % freq == 0
    if (
        isinstance(freq, (list, tuple, set))
        and freq
        and all(utils.is_int(e) and e > 0 for e in freq)
    ):
        chosen = {int(e) for e in freq}
        return lambda epoch: epoch + 1 in chosen
    raise ValueError(
        f"validation_freq must be a positive int or a list of epochs (1-based), got {freq!r}."
    )


def _no_arrays_with_a_dataset(what, **given):
    for name, value in given.items():
        if value is not None:
            raise ValueError(
                f"{what}: {name} must be None when x is a dataset: its batches carry the "
                "targets and sample weights, (x, y) or (x, y, sample_weight)."
            )


def _warn_ran_out(epochs, steps):
    warnings.warn(
        "Your input ran out of data; interrupting training. Make sure that your dataset or "
        f"generator can generate at least steps_per_epoch * epochs batches ({steps} * "
        f"{epochs}).",
        stacklevel=4,  # the user's fit call
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
