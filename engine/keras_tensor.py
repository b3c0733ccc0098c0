"""KerasTensor: a symbolic tensor, the value a layer returns when it is called on
engine.Input(...) or on another KerasTensor. It holds no data: its shape (with the
batch axis None, as Keras prints it), its dtype and where it comes from, which is
how engine.Model finds the graph between its inputs and outputs.

    x = Input(shape=(28, 28, 1))     # KerasTensor shape (None, 28, 28, 1)
    y = Conv2D(32, 3)(x)             # KerasTensor shape (None, 26, 26, 32)
    y.node                           # the Node (layer call) that made y
"""


class KerasTensor:
    def __init__(self, shape, dtype, node=None, index=0, name=None):
        self.shape = (None, *shape)
        self.dtype = dtype
        self.node = node  # the Node whose output this is
        self.index = index  # which of that node's outputs
        self.name = name

    @property
    def sample_shape(self):
        """The shape of one sample: ``shape`` without the batch axis."""
        return self.shape[1:]

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def layer(self):
        """The layer that produced this tensor."""
        return self.node.layer

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"{self!r} is symbolic (it describes a layer's output while a model is being "
            "built) and holds no values; build a Model from it and call the model on data."
        )

    def __bool__(self):
        raise TypeError(f"{self!r} is symbolic: it has no truth value.")
