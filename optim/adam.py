"""Adam (keras/src/optimizers/adam.py), epsilon added to the uncorrected sqrt(v)."""

import math

from engine import backend
from optim.optimizer import Optimizer, check_number


class Adam(Optimizer):
    """alpha = lr * sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    w -= alpha * m / (sqrt(v) + eps); with amsgrad, v is replaced by max(v_hat, v)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
        super().__init__(learning_rate)
        self.beta_1 = check_number("beta_1", beta_1, 0, 1, high_open=True)
        self.beta_2 = check_number("beta_2", beta_2, 0, 1, high_open=True)
        self.epsilon = check_number("epsilon", epsilon, low=0)
        self.amsgrad = bool(amsgrad)
        self.slot_names = ("m", "v", "v_hat") if self.amsgrad else ("m", "v")
        self._scratch = {}  # (shape, dtype) -> two work arrays, so updates allocate nothing

    def update(self, param, grad, slots, lr):
        xp = backend.get_array_module(param)
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m, v = slots["m"], slots["v"]
        key = (param.shape, param.dtype, xp.__name__)
        if key not in self._scratch:
            self._scratch[key] = (xp.empty_like(param), xp.empty_like(param))
        tmp, den = self._scratch[key]
        # The formulas above, operation by operation (same rounding), written in place.
        xp.subtract(grad, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        xp.multiply(grad, grad, out=tmp)
        tmp -= v
        tmp *= 1 - self.beta_2
        v += tmp
        if self.amsgrad:
            xp.maximum(slots["v_hat"], v, out=slots["v_hat"])
            v = slots["v_hat"]
        xp.sqrt(v, out=den)
        den += self.epsilon
        xp.multiply(m, alpha, out=tmp)
        tmp /= den
        param -= tmp

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }
