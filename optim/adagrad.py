"""Adagrad (keras/src/optimizers/adagrad.py)."""

from engine import backend
from optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """acc += g^2;  w -= lr g / sqrt(acc + eps), acc starting at initial_accumulator_value."""

    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7):
        super().__init__(learning_rate)
        if (
            isinstance(initial_accumulator_value, bool)
            or not isinstance(initial_accumulator_value, (int, float))
            or initial_accumulator_value < 0
        ):
            raise ValueError(
                "initial_accumulator_value must be a non-negative number, "
                f"got {initial_accumulator_value!r}."
            )
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon < 0:
            raise ValueError(f"epsilon must be a non-negative number, got {epsilon!r}.")
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

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
