"""Adam (keras/src/optimizers/adam.py), epsilon added to the uncorrected sqrt(v)."""

import math

import numpy as np

from engine import backend
from engine.utils import check_number
from optim.optimizer import Optimizer


class Adam(Optimizer):
    """alpha = lr * sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    w -= alpha * m / (sqrt(v) + eps); with amsgrad, v is replaced by max(v_hat, v).

    On NumPy the slots of all parameters are views into one flat array per slot name,
    so a step runs the formulas once over every parameter (about 20 NumPy calls for
    the tutorial network instead of 96, most of which only paid call overhead on the
    small biases and kernels). Every element goes through the same operations either
    way, so the results are bit for bit the same.
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        **kwargs,
    ):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = check_number("beta_1", beta_1, 0, 1, high_open=True)
        self.beta_2 = check_number("beta_2", beta_2, 0, 1, high_open=True)
        self.epsilon = check_number("epsilon", epsilon, low=0)
        self.amsgrad = bool(amsgrad)
        self.slot_names = ("m", "v", "v_hat") if self.amsgrad else ("m", "v")
        self._scratch = {}  # (shape, dtype) -> two work arrays, so updates allocate nothing
        self._flat = None  # the flat slot arrays and work arrays built with the slots

    def build(self, params):
        dtypes = {p.dtype for p in params}
        if not params or len(dtypes) != 1 or any(map(backend.is_gpu_array, params)):
            self._flat = None
            return super().build(params)
        # One flat zero array per slot name (and for the gradients and the work arrays);
        # each parameter's slots are reshaped views of its stretch of them.
        (dtype,), total = dtypes, sum(p.size for p in params)
        flat = {name: np.zeros(total, dtype) for name in (*self.slot_names, "g", "tmp", "den")}
        bounds = np.cumsum([0] + [p.size for p in params])
        stretches = [(p.shape, a, b) for p, a, b in zip(params, bounds[:-1], bounds[1:])]
        self.slots = [
            {name: flat[name][a:b].reshape(shape) for name in self.slot_names}
            for shape, a, b in stretches
        ]
        # Each parameter's step, computed in the flat "tmp", is subtracted through these.
        steps = [flat["tmp"][a:b].reshape(shape) for shape, a, b in stretches]
        self._flat = (self.slots, flat, steps)

    def _update_params(self, grads, params, lr):
        flat_for, flat, steps = self._flat or (None, None, None)
        if (
            flat_for is not self.slots  # slots built some other way (set by hand, GPU)
            or len(params) != len(steps)
            or any(g.dtype != s.dtype or g.shape != s.shape for g, s in zip(grads, steps))
        ):
            return super()._update_params(grads, params, lr)
        np.concatenate([g.reshape(-1) for g in grads], out=flat["g"])
        v_hat = flat["v_hat"] if self.amsgrad else None
        self._step(flat["g"], flat["m"], flat["v"], v_hat, flat["tmp"], flat["den"], np, lr)
        for param, step in zip(params, steps):
            param -= step

    def slot_arrays(self):
        """The flat arrays when the slots are views into them: fewer, larger copies."""
        if self._flat is not None and self._flat[0] is self.slots:
            return [self._flat[1][name] for name in self.slot_names]
        return super().slot_arrays()

    def update(self, param, grad, slots, lr):
        xp = backend.get_array_module(param)
        key = (param.shape, param.dtype, xp.__name__)
        if key not in self._scratch:
            self._scratch[key] = (xp.empty_like(param), xp.empty_like(param))
        tmp, den = self._scratch[key]
        self._step(grad, slots["m"], slots["v"], slots.get("v_hat"), tmp, den, xp, lr)
        param -= tmp

    def _step(self, grad, m, v, v_hat, tmp, den, xp, lr):
        """Update m, v (and v_hat) in place; leave the parameter's step alpha*m/(sqrt(v)+eps)
        in tmp (den is a work array)."""
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        # The formulas above, operation by operation (same rounding), written in place.
        xp.subtract(grad, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        xp.multiply(grad, grad, out=tmp)
        tmp -= v
        tmp *= 1 - self.beta_2
        v += tmp
        if v_hat is not None:
            xp.maximum(v_hat, v, out=v_hat)
            v = v_hat
        xp.sqrt(v, out=den)
        den += self.epsilon
        xp.multiply(m, alpha, out=tmp)
        tmp /= den

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }
