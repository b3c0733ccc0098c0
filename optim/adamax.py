"""Adamax (keras/src/optimizers/adamax.py): Adam with the infinity norm."""

from engine import backend
from engine.utils import check_number
from optim.optimizer import Optimizer


class Adamax(Optimizer):
    """m += (g - m)(1 - b1);  u = max(b2 u, |g|);  w -= lr m / ((1 - b1^t)(u + eps))."""

    slot_names = ("momentum", "norm")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = check_number("beta_1", beta_1, 0, 1, high_open=True)
        self.beta_2 = check_number("beta_2", beta_2, 0, 1, high_open=True)
        self.epsilon = check_number("epsilon", epsilon, low=0)

    def update(self, param, grad, slots, lr):
        xp = backend.get_array_module(param)
        m, u = slots["momentum"], slots["norm"]
        m += (grad - m) * (1 - self.beta_1)
        xp.maximum(self.beta_2 * u, xp.abs(grad), out=u)
        beta_1_power = self.beta_1 ** (self.iterations + 1)
        param -= (lr * m) / ((1 - beta_1_power) * (u + self.epsilon))

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }
