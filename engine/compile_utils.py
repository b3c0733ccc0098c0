"""What compile() resolves: a loss (and weight) per output, and metrics per output.

As Keras: ``loss`` is one loss for every output, a list with one per output (None: that
output is not trained), or a dict by output name; ``loss_weights`` likewise scales each
output's loss in the total that is minimised. ``metrics`` is a list for a model with one
output; for several, a list with one entry (a name or a list of names) per output, or a
dict by output name. With several outputs the logs name each output's loss and metrics
'<output>_loss', '<output>_<metric>', as Keras does.
"""

from engine import losses
from engine import metrics as metrics_module


def _per_output(value, names, what, make):
    """``value`` (one, a list or a dict) spread over the outputs ``names`` through ``make``."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"compile(): {what} names outputs {unknown}; the outputs are {names}.")
        return [make(value[name]) if name in value else None for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(
                f"compile(): {what} has {len(value)} entries; the model has {len(names)} "
                f"outputs {names}."
            )
        return [None if v is None else make(v) for v in value]
    return [make(value) for _ in names]


class CompiledLoss:
    """losses[i] (a Loss, or None) and weights[i] for output i."""

    def __init__(self, loss, loss_weights, output_names):
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'.")
        self.losses = _per_output(loss, output_names, "loss", losses.get)
        if all(item is None for item in self.losses):
            raise ValueError("compile() needs a loss for at least one output.")
        if loss_weights is None:
            self.weights = [1.0] * len(output_names)
        else:
            weights = _per_output(loss_weights, output_names, "loss_weights", float)
            self.weights = [1.0 if w is None else w for w in weights]
        self.output_names = output_names
        self.reduction = (
            "sum_over_batch_size"
            if all(
                getattr(item, "reduction", None) == "sum_over_batch_size"
                for item in self.losses
                if item is not None
            )
            else None
        )

    @property
    def single(self):
        return len(self.losses) == 1

    @property
    def log_names(self):
        """Names of the per-output losses in the logs (none for a single output)."""
        if self.single:
            return []
        return [f"{name}_loss" for name, loss in zip(self.output_names, self.losses) if loss]

    def __call__(self, ys, y_preds, with_gradients=False, sample_weights=None):
        """(total, per-output values, per-output gradients or None) for targets ``ys`` (one
        per output with a loss), predictions ``y_preds`` (one per output) and sample
        weights (None, or one array or None per output with a loss)."""
        total, values, dys = None, [], []
        target = 0
        for loss, weight, y_pred in zip(self.losses, self.weights, y_preds):
            if loss is None:
                dys.append(None)
                continue
            y = ys[target]
            sample_weight = sample_weights[target] if sample_weights else None
            target += 1
            if with_gradients:
                value, dy = loss.value_and_gradient(y, y_pred, sample_weight)
                dys.append(dy if weight == 1 else dy * weight)
            else:
                value = loss.compute(y, y_pred, sample_weight)
            values.append(value)
            weighted = value if weight == 1 else value * weight
            total = weighted if total is None else total + weighted
        return total, values, (dys if with_gradients else None)


class CompiledMetrics:
    """The metric objects of each output, and the names they log under.

    As Keras's: ``metrics`` ignore sample weights, ``weighted_metrics`` take them (a
    weighted metric whose name is taken is logged as 'weighted_<name>'); a name used twice
    gets '_1', '_2', ... .
    """

    def __init__(self, metrics, compiled_loss, weighted_metrics=None):
        plain = self._per_output(metrics, compiled_loss, "metrics")
        weighted = self._per_output(weighted_metrics, compiled_loss, "weighted_metrics")
        self.per_output, self.weighted_per_output = plain, weighted
        # (output index, index of its targets, metric, log name, weighted); only outputs
        # with a loss have targets
        names = compiled_loss.output_names
        self._updates, taken = [], {}
        for is_weighted, made in ((False, plain), (True, weighted)):
            target = 0
            for i, (name, metrics_i, loss) in enumerate(zip(names, made, compiled_loss.losses)):
                for metric in metrics_i:
                    log_name = _log_name(metric.name, name, len(names), is_weighted, taken)
                    self._updates.append((i, target, metric, log_name, is_weighted))
                target += loss is not None

    @staticmethod
    def _per_output(metrics, compiled_loss, what):
        """One list of Metric objects per output, from compile()'s argument ``what``."""
        names = compiled_loss.output_names
        if metrics is None:
            metrics = []
        if not isinstance(metrics, (list, tuple, dict)):
            raise TypeError(f"{what} must be a list of names, got {metrics!r}.")
        if len(names) == 1:
            entries = [list(metrics.values()) if isinstance(metrics, dict) else list(metrics)]
        elif not metrics:
            entries = [[] for _ in names]
        else:
            entries = _per_output(metrics, names, what, lambda m: m)
        made = []
        for name, entry, loss in zip(names, entries, compiled_loss.losses):
            entry = [] if entry is None else entry if isinstance(entry, (list, tuple)) else [entry]
            if entry and loss is None:
                raise ValueError(
                    f"compile(): {what} for output {name!r}, which has no loss and so no targets."
                )
            made.append([metrics_module.get(m, loss) for m in entry])
        return made

    @property
    def metrics(self):
        return [metric for _, _, metric, _, _ in self._updates]

    @property
    def names(self):
        return [log_name for _, _, _, log_name, _ in self._updates]

    def metric_named(self, log_name):
        """The metric logged as ``log_name``, or None."""
        return next((m for _, _, m, name, _ in self._updates if name == log_name), None)

    def update_state(self, ys, y_preds, sample_weights=None):
        """``sample_weights``: None, or one array (or None) per output with a loss."""
        for i, target, metric, _, weighted in self._updates:
            weight = sample_weights[target] if weighted and sample_weights else None
            metric.update_state(ys[target], y_preds[i], weight)

    def results(self):
        return {log_name: metric.result() for _, _, metric, log_name, _ in self._updates}


def _log_name(metric_name, output_name, outputs, weighted, taken):
    """The metric's name in the logs (Keras's CompileMetrics.result): output-prefixed when
    the model has several outputs, made unique; ``taken`` counts the names used so far."""
    prefix = f"{output_name}_" if outputs > 1 else ""
    name = prefix + metric_name
    if name in taken and weighted:
        name = f"{prefix}weighted_{metric_name}"
    if name in taken:
        taken[name] += 1
        return f"{name}_{taken[name] - 1}"
    taken[name] = 1
    return name
