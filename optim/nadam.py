"""Nadam (keras/src/optimizers/nadam.py): Adam with Nesterov momentum and a momentum
schedule u_t = beta_1 (1 - 0.5 * 0.96^t)."""

from engine import backend
from engine.utils import check_number
from optim.optimizer import Optimizer


class Nadam(Optimizer):
    """At step t, with U_t = u_1 ... u_t:
    m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2);
    m_hat = u_{t+1} m / (1 - U_t u_{t+1}) + (1 - u_t) g / (1 - U_t);  v_hat = v / (1 - b2^t);
    w -= lr m_hat / (sqrt(v_hat) + eps).

    Keras keeps U_t in a variable; here it follows from the step count (the same products
    in the same order), so snapshots, saved files and resumed runs need nothing more.
    """

    slot_names = ("momentum", "velocity")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = check_number("beta_1", beta_1, 0, 1, high_open=True)
        self.beta_2 = check_number("beta_2", beta_2, 0, 1, high_open=True)
        self.epsilon = check_number("epsilon", epsilon, low=0)
        self._u_product = (0, 1.0)  # (t, U_t)

    def _u(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96**t)

    def _u_product_at(self, t):
        """U_t, from the cached U_{t-1} when the steps go in order (else from U_0 = 1)."""
        done, product = self._u_product
        if done != t - 1:
            done, product = 0, 1.0
        for s in range(done + 1, t + 1):
            product = product * self.beta_1 * (1.0 - 0.5 * 0.96**s)  # Keras's order
        self._u_product = (t, product)
        return product

    def _update_params(self, grads, params, lr):
        t = self.iterations + 1
        self._step_constants = (t, self._u(t), self._u(t + 1), self._u_product_at(t))
        super()._update_params(grads, params, lr)

    def update(self, param, grad, slots, lr):
        xp = backend.get_array_module(param)
        t, u_t, u_next, u_product = self._step_constants
        m, v = slots["momentum"], slots["velocity"]
        m += (grad - m) * (1 - self.beta_1)
        v += (grad * grad - v) * (1 - self.beta_2)
        m_hat = (u_next * m) / (1 - u_product * u_next) + ((1 - u_t) * grad) / (1 - u_product)
        v_hat = v / (1 - self.beta_2**t)
        param -= (m_hat * lr) / (xp.sqrt(v_hat) + self.epsilon)

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }
