"""RMSprop (keras/src/optimizers/rmsprop.py)."""

from engine import backend
from engine.utils import check_number
from optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """v = rho v + (1 - rho) g^2;  step = lr g / sqrt(v + eps) (centered: v - mean_g^2 + eps);
    with momentum, mom = momentum mom + step and w -= mom, else w -= step."""

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
        **kwargs,
    ):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_number("rho", rho, 0, 1)
        self.momentum = check_number("momentum", momentum, 0, 1)
        self.epsilon = check_number("epsilon", epsilon, low=0)
        self.centered = bool(centered)
        self.slot_names = ("velocity",)
        if self.momentum > 0:
            self.slot_names += ("momentum",)
        if self.centered:
            self.slot_names += ("average_gradient",)

    def update(self, param, grad, slots, lr):
        xp = backend.get_array_module(param)
        velocity = slots["velocity"]
        velocity *= self.rho
        velocity += (1 - self.rho) * (grad * grad)
        if self.centered:
            average = slots["average_gradient"]
            average *= self.rho
            average += (1 - self.rho) * grad
            denominator = velocity - average * average + self.epsilon
        else:
            denominator = velocity + self.epsilon
        increment = lr * grad / xp.sqrt(denominator)
        if self.momentum > 0:
            slots["momentum"] *= self.momentum
            slots["momentum"] += increment
            param -= slots["momentum"]
        else:
            param -= increment

    def get_config(self):
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }
