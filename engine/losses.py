"""Losses with Keras's names, formulas and reduction ('sum_over_batch_size').

Each loss reduces the last axis to one value per sample, l_i (``call``, shape (N, ...)),
and the loss is their mean; with sample weights w (N,) (or shaped like l) it is
sum(w_i * l_i) / N, Keras's weighted 'sum_over_batch_size' (N counts the weights, not
their sum). ``gradient`` is d(loss)/d(y_pred), shaped like y_pred.

    y_pred: (N, ..., K) predictions (logits or probabilities)
    y_true: like y_pred, or integer labels (N, ...) for the sparse loss
    sample_weight: None, or (N,) / the shape of the per-sample losses
"""

import numpy as np

from engine import backend

EPSILON = 1e-7  # keras.backend.epsilon()


def _prepare(y_true, y_pred, dtype=None):
    xp = backend.get_array_module(y_pred)
    return xp, xp.asarray(y_true, dtype=dtype or y_pred.dtype)


def _count(y_pred):
    """Number of per-sample losses: every axis but the last."""
    return max(1, int(np.prod(y_pred.shape[:-1])))


def _log_softmax(z, xp):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def _softplus(x, xp):
    # log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)).
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


class Loss:
    """Base class: ``compute`` gives the loss as a 0-d array (on the device).

    Subclasses implement ``call`` (the per-sample losses) and ``mean_and_gradient`` (the
    unweighted mean and its gradient in one pass), and may implement ``mean`` alone when
    it is cheaper. ``reduction`` says how per-sample losses become the loss:
    'sum_over_batch_size' (the mean, Keras's default) lets the CPU cut a batch into pieces
    whose gradients add up exactly; a loss that is not such a mean sets None.
    """

    name = None
    reduction = "sum_over_batch_size"

    def __call__(self, y_true, y_pred, sample_weight=None):
        return float(backend.to_numpy(self.compute(y_true, y_pred, sample_weight)))

    def call(self, y_true, y_pred):
        """The per-sample losses l_i, shape y_pred.shape[:-1]."""
        raise NotImplementedError

    def mean_and_gradient(self, y_true, y_pred):
        """(mean of the per-sample losses, its gradient with respect to y_pred)."""
        raise NotImplementedError

    def mean(self, y_true, y_pred):
        return self.mean_and_gradient(y_true, y_pred)[0]

    def compute(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            return self.mean(y_true, y_pred)
        values = self.call(y_true, y_pred)
        return (values * _weights(sample_weight, values)).sum() / values.size

    def gradient(self, y_true, y_pred, sample_weight=None):
        return self.value_and_gradient(y_true, y_pred, sample_weight)[1]

    def value_and_gradient(self, y_true, y_pred, sample_weight=None):
        """(0-d loss array, gradient): one call per training step."""
        value, grad = self.mean_and_gradient(y_true, y_pred)
        if sample_weight is None:
            return value, grad
        # Sample i's part of the mean's gradient, times w_i, is its part of the weighted sum's.
        values = self.call(y_true, y_pred)
        w = _weights(sample_weight, values)
        value = (values * w).sum() / values.size
        return value, grad * w.reshape(w.shape + (1,) * (grad.ndim - w.ndim))

    def check_targets(self, y_true, output_shape):
        """Raise ValueError when targets (N, ...) can't go with outputs (N, *output_shape)."""
        expected = tuple(output_shape)
        if tuple(np.shape(y_true)[1:]) != expected:
            dims = ", ".join(map(str, expected))
            raise ValueError(
                f"{type(self).__name__} needs targets of shape (N, {dims}) "
                f"like the model's output, got {np.shape(y_true)}."
            )

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _weights(sample_weight, values):
    """Sample weights (N,) or shaped like the per-sample losses, as values' dtype, shaped to
    broadcast against them."""
    xp = backend.get_array_module(values)
    w = xp.asarray(sample_weight, dtype=values.dtype)
    return w.reshape(w.shape + (1,) * (values.ndim - w.ndim))


class _FromLogits(Loss):
    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}


class SparseCategoricalCrossentropy(_FromLogits):
    """-log p[label] with integer labels; from logits, a stable log-softmax."""

    name = "sparse_categorical_crossentropy"

    def _labels(self, y_true, y_pred):
        xp = backend.get_array_module(y_pred)
        labels = xp.asarray(y_true)
        if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
            labels = labels[..., 0]
        return labels.astype(xp.int64, copy=False).reshape(-1)

    def _logp_and_probs(self, y_true, y_pred):
        xp = backend.get_array_module(y_pred)
        labels = self._labels(y_true, y_pred)
        k = y_pred.shape[-1]
        rows = xp.arange(labels.shape[0])
        if self.from_logits:
            logp = _log_softmax(y_pred.reshape(-1, k), xp)
            return logp, labels, rows
        total = y_pred.reshape(-1, k).sum(axis=-1, keepdims=True)
        probs = y_pred.reshape(-1, k) / total
        return probs, labels, rows

    def call(self, y_true, y_pred):
        xp = backend.get_array_module(y_pred)
        values, labels, rows = self._logp_and_probs(y_true, y_pred)
        if self.from_logits:
            picked = values[rows, labels]
        else:
            picked = xp.log(xp.clip(values[rows, labels], EPSILON, 1 - EPSILON))
        return -picked.reshape(y_pred.shape[:-1])

    def mean(self, y_true, y_pred):
        return self.call(y_true, y_pred).mean()

    def mean_and_gradient(self, y_true, y_pred):
        xp = backend.get_array_module(y_pred)
        values, labels, rows = self._logp_and_probs(y_true, y_pred)
        m = labels.shape[0]
        if self.from_logits:
            # The fused softmax-crossentropy gradient: (softmax - onehot) / N.
            loss = -values[rows, labels].mean()
            grad = xp.exp(values)
            grad[rows, labels] -= 1
            grad /= m
        else:
            p = values[rows, labels]
            loss = -xp.log(xp.clip(p, EPSILON, 1 - EPSILON)).mean()
            inside = (p > EPSILON) & (p < 1 - EPSILON)
            total = y_pred.reshape(-1, y_pred.shape[-1]).sum(axis=-1)
            # d/dy_j of -log(y_t / sum(y)) = (1 - [j == t] / p_t) / sum(y), zero where clipped.
            scale = (inside / total / m).astype(y_pred.dtype)[:, None]
            grad = xp.broadcast_to(scale, (m, y_pred.shape[-1])).copy()
            grad[rows, labels] -= scale[:, 0] / xp.clip(p, EPSILON, 1)
        return loss, grad.reshape(y_pred.shape)

    def check_targets(self, y_true, output_shape):
        y_true = np.asarray(y_true)
        k = output_shape[-1]
        if y_true.ndim == len(output_shape) + 1 and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        if tuple(y_true.shape[1:]) != tuple(output_shape[:-1]):
            raise ValueError(
                f"SparseCategoricalCrossentropy needs integer labels of shape (N,) for outputs "
                f"of shape (N, {k}), got labels of shape {np.shape(y_true)}; one-hot labels "
                "go with CategoricalCrossentropy."
            )
        if not (
            np.issubdtype(y_true.dtype, np.integer) or np.issubdtype(y_true.dtype, np.floating)
        ):
            raise ValueError(f"Labels must be integers, got dtype {y_true.dtype}.")
        if y_true.size and np.issubdtype(y_true.dtype, np.floating):
            if not np.all(np.isfinite(y_true)) or np.any(y_true != np.round(y_true)):
                bad = y_true[~np.isfinite(y_true) | (y_true != np.round(y_true))].flat[0]
                raise ValueError(f"Labels must be whole numbers 0..{k - 1}, got {bad}.")
        if y_true.size and (y_true.min() < 0 or y_true.max() > k - 1):
            bad = y_true.min() if y_true.min() < 0 else y_true.max()
            raise ValueError(
                f"Label {bad} is outside 0..{k - 1}: the model's last layer has {k} outputs."
            )


class CategoricalCrossentropy(_FromLogits):
    """-sum(y_true * log p) with one-hot (or soft) targets."""

    name = "categorical_crossentropy"

    def call(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        if self.from_logits:
            return -(t * _log_softmax(y_pred, xp)).sum(axis=-1)
        p = xp.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
        return -(t * xp.log(p)).sum(axis=-1)

    def mean_and_gradient(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        m = _count(y_pred)
        if self.from_logits:
            logp = _log_softmax(y_pred, xp)
            loss = -(t * logp).sum() / m
            grad = (xp.exp(logp) * t.sum(axis=-1, keepdims=True) - t) / m
            return loss, grad
        total = y_pred.sum(axis=-1, keepdims=True)
        p = y_pred / total
        clipped = xp.clip(p, EPSILON, 1 - EPSILON)
        loss = -(t * xp.log(clipped)).sum() / m
        g = -t / clipped * ((p > EPSILON) & (p < 1 - EPSILON))  # d loss / d p, per sample
        grad = (g - (g * p).sum(axis=-1, keepdims=True)) / total / m  # through p = y / sum(y)
        return loss, grad


class BinaryCrossentropy(_FromLogits):
    """-(t log p + (1 - t) log(1 - p)), averaged over the last axis."""

    name = "binary_crossentropy"

    def call(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        if self.from_logits:
            return (t * _softplus(-y_pred, xp) + (1 - t) * _softplus(y_pred, xp)).mean(axis=-1)
        p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
        return -(t * xp.log(p) + (1 - t) * xp.log(1 - p)).mean(axis=-1)

    def mean_and_gradient(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        size = y_pred.size
        if self.from_logits:
            # -log(sigmoid(z)) = softplus(-z); -log(1 - sigmoid(z)) = softplus(z).
            loss = (t * _softplus(-y_pred, xp) + (1 - t) * _softplus(y_pred, xp)).sum() / size
            e = xp.exp(-xp.abs(y_pred))
            sigmoid = xp.where(y_pred >= 0, 1 / (1 + e), e / (1 + e))
            return loss, (sigmoid - t) / size
        p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
        loss = -(t * xp.log(p) + (1 - t) * xp.log(1 - p)).sum() / size
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        return loss, (-t / p + (1 - t) / (1 - p)) * inside / size


class _Elementwise(Loss):
    """Losses that are a mean of an elementwise term f(t, p)."""

    def term(self, xp, t, p):
        raise NotImplementedError

    def term_gradient(self, xp, t, p):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        return self.term(xp, t, y_pred).mean(axis=-1)

    def mean(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        return self.term(xp, t, y_pred).mean()

    def mean_and_gradient(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        return self.mean(y_true, y_pred), self.term_gradient(xp, t, y_pred) / y_pred.size


class MeanSquaredError(_Elementwise):
    name = "mean_squared_error"

    def term(self, xp, t, p):
        return (p - t) ** 2

    def term_gradient(self, xp, t, p):
        return 2 * (p - t)


class MeanAbsoluteError(_Elementwise):
    name = "mean_absolute_error"

    def term(self, xp, t, p):
        return xp.abs(p - t)

    def term_gradient(self, xp, t, p):
        return xp.sign(p - t)


class MeanAbsolutePercentageError(_Elementwise):
    """100 * |t - p| / max(|t|, eps)."""

    name = "mean_absolute_percentage_error"

    def term(self, xp, t, p):
        return 100 * xp.abs((t - p) / xp.maximum(xp.abs(t), EPSILON))

    def term_gradient(self, xp, t, p):
        return 100 * xp.sign(p - t) / xp.maximum(xp.abs(t), EPSILON)


class MeanSquaredLogarithmicError(_Elementwise):
    """(log(max(p, eps) + 1) - log(max(t, eps) + 1))^2."""

    name = "mean_squared_logarithmic_error"

    def term(self, xp, t, p):
        return (xp.log(xp.maximum(p, EPSILON) + 1) - xp.log(xp.maximum(t, EPSILON) + 1)) ** 2

    def term_gradient(self, xp, t, p):
        shifted = xp.maximum(p, EPSILON) + 1
        diff = xp.log(shifted) - xp.log(xp.maximum(t, EPSILON) + 1)
        return 2 * diff / shifted * (p > EPSILON)


class KLDivergence(Loss):
    """sum(t * log(t / p)) over the last axis, t and p clipped to [eps, 1]."""

    name = "kl_divergence"

    def _terms(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        t = xp.clip(t, EPSILON, 1)
        return t * xp.log(t / xp.clip(y_pred, EPSILON, 1))

    def call(self, y_true, y_pred):
        return self._terms(y_true, y_pred).sum(axis=-1)

    def mean(self, y_true, y_pred):
        return self._terms(y_true, y_pred).sum() / _count(y_pred)

    def mean_and_gradient(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        t = xp.clip(t, EPSILON, 1)
        inside = (y_pred > EPSILON) & (y_pred < 1)
        grad = -t / xp.clip(y_pred, EPSILON, 1) * inside / _count(y_pred)
        return self.mean(y_true, y_pred), grad


class CosineSimilarity(Loss):
    """-sum(l2_normalize(t) * l2_normalize(p)) over the last axis: -1 is best."""

    name = "cosine_similarity"

    @staticmethod
    def _inverse_norm(xp, a):
        # Keras's l2_normalize: a * min(rsqrt(sum(a^2)), 1 / eps).
        return xp.minimum(1 / xp.sqrt((a * a).sum(axis=-1, keepdims=True)), 1 / EPSILON)

    def _products(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        return t * self._inverse_norm(xp, t) * (y_pred * self._inverse_norm(xp, y_pred))

    def call(self, y_true, y_pred):
        return -self._products(y_true, y_pred).sum(axis=-1)

    def mean(self, y_true, y_pred):
        return -self._products(y_true, y_pred).sum() / _count(y_pred)

    def mean_and_gradient(self, y_true, y_pred):
        xp, t = _prepare(y_true, y_pred)
        tn = t * self._inverse_norm(xp, t)
        inv = self._inverse_norm(xp, y_pred)
        pn = y_pred * inv
        # d(pn)/dp projects out pn's own direction while the norm is above eps.
        radial = (tn * pn).sum(axis=-1, keepdims=True) * pn * (inv < 1 / EPSILON)
        return self.mean(y_true, y_pred), -(tn - radial) * inv / _count(y_pred)


LOSSES = {
    cls.name: cls
    for cls in (
        SparseCategoricalCrossentropy,
        CategoricalCrossentropy,
        BinaryCrossentropy,
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        KLDivergence,
        CosineSimilarity,
    )
}
ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
}


def get(identifier):
    """A Loss from an instance or a Keras name ('sparse_categorical_crossentropy', 'mse', ...)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        name = ALIASES.get(identifier.lower(), identifier.lower())
        if name in LOSSES:
            return LOSSES[name]()
    raise ValueError(
        f"Unknown loss {identifier!r}; expected a Loss instance or one of "
        f"{', '.join(sorted([*LOSSES, *ALIASES]))}."
    )
