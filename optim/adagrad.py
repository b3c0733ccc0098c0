"""Adagrad (keras/src/optimizers/adagrad.py)."""

from engine import backend
from engine.utils import check_number
from optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """acc += g^2;  w -= lr g / sqrt(acc + eps), acc starting at initial_accumulator_value."""

    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = check_number(
            "initial_accumulator_value", initial_accumulator_value, low=0
        )
        self.epsilon = check_number("epsilon", epsilon, low=0)

    def initial_slot(self, name, param):
        xp = backend.get_array_module(param)
        return xp.full_like(param, self.initial_accumulator_value)

    def update(self, param, grad, slots, lr):
        xp = backend.get_array_module(param)
        accumulator = slots["accumulator"]
        accumulator += grad * grad
        param -= lr * grad / xp.sqrt(accumulator + self.epsilon)

    def get_config(self):
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }
