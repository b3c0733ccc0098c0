"""SGD with optional momentum and Nesterov momentum (keras/src/optimizers/sgd.py)."""

from engine.utils import check_number
from optim.optimizer import Optimizer


class SGD(Optimizer):
    """v = momentum * v - lr * g;  w += v  (Nesterov: w += momentum * v - lr * g)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_number("momentum", momentum, 0, 1)
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum > 0 else ()

    def update(self, param, grad, slots, lr):
        if not slots:
            param -= lr * grad
            return
        velocity = slots["momentum"]
        velocity *= self.momentum
        velocity -= lr * grad
        if self.nesterov:
            param += self.momentum * velocity - lr * grad
        else:
            param += velocity

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "nesterov": self.nesterov,
        }
