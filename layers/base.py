"""The Layer protocol: what every layer implements, and what the engine does for it.

A layer is called on symbolic tensors to build a graph (``Conv2D(32, 3)(Input((28, 28, 1)))``,
then engine.Model), or on arrays to compute at once (``layer(x)``). It holds its
configuration and its weights; everything that belongs to one call lives in that call's
engine.context.Context, so a layer can be shared by several calls in one graph.

What a layer implements (shapes are per sample, without the batch axis; a layer called on a
list of tensors receives lists of shapes and arrays):

    __init__(..., **kwargs)         its arguments, checked at once; name=, input_shape=,
                                    trainable= go to Layer.__init__
    build(input_shape)              create the weights with add_weight(); called once, on the
                                    first call, after compute_output_shape accepted the shape
    compute_output_shape(shape)     the output shape; a ValueError naming the layer and the
                                    shape when the input cannot be taken
    forward(x, ctx) -> y            the output for the batch x (N, ...). With ctx.for_backward
                                    keep on ctx what backward needs; ctx.training is the mode
                                    (see engine/context.py for ctx.rng and ctx.workspace)
    backward(ctx, dy) -> dx         the gradient for the input (a list for several inputs,
                                    None where ctx.needs_input_grad[i] is False); with
                                    ctx.needs_weight_grads, ctx.grads[name] = the gradient of
                                    weight ``name`` (the engine sums them for shared layers)
    get_config()                    the constructor arguments, for saving

and may declare:

    mixes_samples = True            a sample's output depends on the other samples of the
                                    batch (BatchNormalization): training batches are then
                                    never cut into pieces
    fuse_with(next_layer)           a step that runs self and the layer after it as one
                                    (engine/fusion.py asks; None when it cannot)

Weights are arrays of the active backend, updated in place by the optimizers: a layer's
``params`` maps each weight's name to its array, in creation order, which is Keras's
get_weights() order (trainable weights first, as Keras creates them).
"""

import numpy as np

from engine import backend, initializers, utils
from engine.context import Context
from engine.node import Node, as_tensor_list


class Layer:
    mixes_samples = False
    trainable_changes = 0  # counts trainable flips, so models know to re-plan their graphs

    def __init__(self, name=None, input_shape=None, trainable=True):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Layer name must be a non-empty string, got {name!r}.")
        self.name = name or utils.unique_name(utils.snake_case(type(self).__name__))
        self.input_shape = None if input_shape is None else utils.standardize_shape(input_shape)
        self._params = {}
        self._non_trainable = set()
        self._regularizers = {}
        self._trainable = bool(trainable)
        self.built = False
        self.inbound_nodes = []

    # -- weights --------------------------------------------------------------------

    def add_weight(self, name, shape, initializer="zeros", trainable=True, regularizer=None):
        """Create weight ``name``: drawn on the host, cast to floatx(), moved to the device.
        Non-trainable weights (moving statistics) are saved and loaded, never optimized;
        a ``regularizer``'s penalty joins the loss (engine/regularizers.py)."""
        values = initializers.get(initializer)(tuple(shape), utils.global_rng())
        self._params[name] = backend.to_device(np.asarray(values), dtype=backend.floatx())
        if not trainable:
            self._non_trainable.add(name)
        if regularizer is not None:
            self._regularizers[name] = regularizer
        return self._params[name]

    @property
    def params(self):
        """Weight name -> array, in creation (get_weights) order."""
        return self._params

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """False freezes the layer: no gradient is computed for its weights, and the
        optimizer never sees them (recompile a model after changing it, as in Keras)."""
        self._trainable = bool(value)
        Layer.trainable_changes += 1

    @property
    def weights(self):
        """Every weight array, trainable and not, in get_weights() order."""
        return list(self.params.values())

    @property
    def regularized_weights(self):
        """(weight, regularizer) pairs: the penalties this layer adds to the loss."""
        return [(self._params[name], r) for name, r in self._regularizers.items()]

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [w for name, w in self.params.items() if name not in self._non_trainable]

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [w for name, w in self.params.items() if name in self._non_trainable]

    def count_params(self):
        return int(sum(p.size for p in self.weights))

    def get_weights(self):
        """Copies of the weights as NumPy arrays, in Keras's order (kernel, bias, ...)."""
        return [backend.to_numpy(p).copy() for p in self.weights]

    def set_weights(self, weights):
        """Replace the weights (Keras's order and layout); a refused call changes nothing."""
        assign_weights([f"{self.name}/{k}" for k in self.params], self.weights, weights)

    # -- shapes and building --------------------------------------------------------

    def build(self, input_shape):
        """Record the per-sample input shape; subclasses create their weights after this."""
        input_shape = standardize_shapes(input_shape)
        if self.built and self.input_shape is not None and input_shape != self.input_shape:
            raise ValueError(
                f"Layer {self.name!r} was built for inputs of shape {self.input_shape}, "
                f"got {input_shape}."
            )
        self.compute_output_shape(input_shape)  # validates the shape before anything is made
        self.input_shape = input_shape
        self.built = True
        return input_shape

    def compute_output_shape(self, input_shape):
        return standardize_shapes(input_shape)

    def check_input_shape(self, input_shape):
        """The output shape for ``input_shape``; a built layer also checks it is the shape it
        was built for. Builds nothing."""
        input_shape = standardize_shapes(input_shape)
        if self.built and self.input_shape is not None and input_shape != self.input_shape:
            raise ValueError(
                f"Layer {self.name!r} was built for inputs {self.input_shape}, "
                f"but receives {input_shape}."
            )
        return self.compute_output_shape(input_shape)

    # -- calling --------------------------------------------------------------------

    def __call__(self, inputs, training=False):
        """On KerasTensors: add this call to the graph and return its output tensor(s).
        On arrays: build if needed and return forward's output (inference unless
        training=True)."""
        tensors, symbolic = as_tensor_list(inputs)
        if symbolic:
            return self._call_symbolic(tensors, isinstance(inputs, (list, tuple)))
        if isinstance(inputs, (list, tuple)):
            x = [_device_array(a) for a in inputs]
            shape = [tuple(a.shape[1:]) for a in x]
        else:
            x = _device_array(inputs)
            shape = tuple(x.shape[1:])
        if not self.built:
            self.build(shape)
        else:
            self.check_input_shape(shape)
        return self.forward(x, Context(training=training))

    def _call_symbolic(self, tensors, as_list):
        shapes = [t.sample_shape for t in tensors]
        shape = shapes if as_list else shapes[0]
        if not self.built:
            self.build(shape)
        output = self.check_input_shape(shape)
        several = isinstance(output, list)
        node = Node(self, tensors, output if several else [output], backend.floatx(), as_list)
        return node.outputs if several else node.outputs[0]

    def forward(self, x, ctx):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward(x, ctx).")

    def backward(self, ctx, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward(ctx, dy).")

    # -- the graph ------------------------------------------------------------------

    @property
    def input(self):
        """The tensor(s) this layer was first called on (Keras's layer.input)."""
        inputs = self._first_node("input").inputs
        return inputs[0] if len(inputs) == 1 and not self.inbound_nodes[0].as_list else inputs

    @property
    def output(self):
        """The tensor(s) the first call of this layer returned (Keras's layer.output)."""
        outputs = self._first_node("output").outputs
        return outputs[0] if len(outputs) == 1 else outputs

    def _first_node(self, what):
        if not self.inbound_nodes:
            raise AttributeError(
                f"Layer {self.name!r} has no {what} yet: it has not been called on a tensor "
                "(engine.Input or another layer's output)."
            )
        return self.inbound_nodes[0]

    # -- saving ---------------------------------------------------------------------

    def get_config(self):
        """Constructor arguments that rebuild this layer (saved with the model)."""
        config = {"name": self.name}
        if not self.trainable:
            config["trainable"] = False
        if self.input_shape is not None and not isinstance(self.input_shape, list):
            config["input_shape"] = list(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def standardize_shapes(shape):
    """A per-sample shape tuple, or a list of them for a layer with several inputs."""
    if isinstance(shape, list) and shape and all(isinstance(s, (tuple, list)) for s in shape):
        return [utils.standardize_shape(s) for s in shape]
    return utils.standardize_shape(shape)


def _device_array(a):
    """``a`` as an array of the active backend: host data are cast to floatx() and moved."""
    if backend.is_gpu_array(a) or (backend.backend_name() == "numpy" and isinstance(a, np.ndarray)):
        return a
    return backend.to_device(np.asarray(a), dtype=backend.floatx())


def assign_weights(names, params, weights, what="set_weights"):
    """Copy ``weights`` into the arrays ``params`` (named ``names`` in messages) after checking
    every one of them (count, shape, numeric dtype): a refused call changes nothing."""
    if isinstance(weights, (str, bytes, dict, np.ndarray)) or not hasattr(weights, "__iter__"):
        raise TypeError(
            f"{what} expects a list of {len(params)} arrays (as get_weights returns), "
            f"got {type(weights).__name__}."
        )
    weights = list(weights)
    if len(weights) != len(params):
        raise ValueError(f"{what} expects {len(params)} arrays for this model, got {len(weights)}.")
    arrays = []
    for name, p, w in zip(names, params, weights):
        try:
            w = backend.to_numpy(w)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{what}: {name} is not an array of numbers ({exc}).") from None
        if w.shape != p.shape:
            raise ValueError(
                f"{what}: {name} has shape {p.shape}, got an array of shape {w.shape}."
            )
        if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
            raise ValueError(f"{what}: {name} needs numbers, got dtype {w.dtype}.")
        arrays.append(w)
    for p, w in zip(params, arrays):
        p[...] = backend.to_device(w, dtype=p.dtype)


def initializer_config(initializer):
    """An initialiser as saved in a config: its name; a callable saves as 'zeros'
    because the saved weights, not the initialiser, carry its effect."""
    return initializer if isinstance(initializer, str) else "zeros"
