"""AdamW (keras/src/optimizers/adamw.py): Adam with decoupled weight decay."""

from optim.adam import Adam


class AdamW(Adam):
    """Adam whose parameters first decay, w -= w * weight_decay * lr, every step (the base
    optimizer's weight decay, which AdamW requires: 0.004 by default, as Keras)."""

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        **kwargs,
    ):
        if weight_decay is None:
            raise ValueError("AdamW needs weight_decay as a number, e.g. 0.004; got None.")
        super().__init__(
            learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=weight_decay,
            **kwargs,
        )
