"""Context: the record of one call of a layer, handed to its forward and backward.

A layer object holds only its configuration and weights; everything that belongs to
one call (what backward needs, the mode, the randomness, scratch buffers, the weight
gradients) lives in the Context of that call. So one layer can be called several times
in a graph (a shared layer) and each call keeps its own record, as Chainer's
FunctionNode and PyTorch's autograd ctx do.

    ctx.training            training mode (Dropout drops, BatchNormalization uses batch
                            statistics); independent of for_backward
    ctx.for_backward        a backward call will follow: forward keeps on ctx what it needs
    ctx.needs_input_grad    one bool per input: backward may return None where False
    ctx.needs_weight_grads  backward fills ctx.grads[name] for the layer's trainable weights
    ctx.grads               weight name -> gradient, filled by backward
    ctx.rng                 a NumPy Generator for this call's random draws
    ctx.workspace           scratch buffers (engine.workspace) that stay the layer's
                            until this call's backward returns
"""

import numpy as np

from engine import utils
from engine.workspace import Workspace


class Context:
    def __init__(
        self,
        training=False,
        for_backward=False,
        needs_input_grad=(True,),
        needs_weight_grads=True,
        key=None,
        workspace=None,
    ):
        self.training = bool(training)
        self.for_backward = bool(for_backward)
        self.needs_input_grad = tuple(needs_input_grad)
        self.needs_weight_grads = bool(needs_weight_grads)
        self.key = key
        self.workspace = workspace if workspace is not None else Workspace()
        self.grads = {}
        self._rng = None

    @property
    def rng(self):
        """The generator of this call: from ``key`` (a tuple of ints the trainer derives from
        (seed, epoch, step, node)), so a resumed run draws what the uninterrupted one drew;
        without a key, the global generator (utils.set_random_seed seeds it)."""
        if self._rng is None:
            self._rng = utils.global_rng() if self.key is None else np.random.default_rng(self.key)
        return self._rng

    def release(self):
        """Drop what forward kept (the tape does it once backward has used it)."""
        kept = [k for k in self.__dict__ if not k.startswith("_") and k not in _OWN]
        for name in kept:
            del self.__dict__[name]
        self.grads = {}

    def __getattr__(self, name):
        # Reached only for a name forward did not keep (or release() dropped).
        raise NotKeptError(
            f"backward() reads {name!r}, which forward did not keep on this Context: call "
            "forward(x, ctx) with ctx.for_backward first (each forward serves one backward)."
        )


class NotKeptError(RuntimeError, AttributeError):
    """backward asked a Context for something its forward did not keep."""


_OWN = {
    "training",
    "for_backward",
    "needs_input_grad",
    "needs_weight_grads",
    "key",
    "workspace",
    "grads",
}
