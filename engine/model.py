"""Model: a graph of layer calls from inputs to outputs, Keras's functional API.

    inputs = Input(shape=(28, 28, 1))
    x = Conv2D(32, 3, activation="relu")(inputs)
    outputs = Dense(10)(Flatten()(x))
    model = Model(inputs, outputs, name="net")

A Model is a Layer, so it can be called inside another model (a nested model), and it
trains with compile / fit / evaluate / predict (engine.trainer.Trainer). Sequential
(engine/sequential.py) is a Model whose graph is a chain. The graph runs through
engine.graph: one Plan per setting (backend, fusion, which weights train), built once.
"""

import math

from engine import backend, graph, saving, serialization, summary, utils
from engine.keras_tensor import KerasTensor
from engine.trainer import Trainer
from layers.base import Layer, assign_weights
from layers.input_layer import InputLayer


@serialization.register_model("Functional")
class Model(Trainer, Layer):
    def __init__(self, inputs=None, outputs=None, name=None, trainable=True):
        Layer.__init__(self, name=name or utils.unique_name("functional"), trainable=trainable)
        Trainer.__init__(self)
        self._inputs, self._outputs, self._nodes, self._layers = [], [], [], []
        self._plans = {}
        if inputs is None and outputs is None and type(self) is not Model:
            return  # a subclass (Sequential) sets its graph itself
        if inputs is None or outputs is None:
            raise ValueError(
                "Model(inputs, outputs) needs both: the Input tensors and the outputs."
            )
        self._set_graph(inputs, outputs)

    # -- the graph ------------------------------------------------------------------

    def _set_graph(self, inputs, outputs):
        self._single_input = isinstance(inputs, KerasTensor)
        self._single_output = isinstance(outputs, KerasTensor)
        inputs, outputs = _tensor_list(inputs, "inputs"), _tensor_list(outputs, "outputs")
        nodes, first_visit = _nodes_between(inputs, outputs)
        self._inputs, self._outputs = inputs, outputs
        self._nodes = [node for node in nodes if not node.is_input]
        self._layers = _layers_by_depth(nodes, first_visit)
        names = [layer.name for layer in self._layers]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(
                    f"The name {name!r} is used by {names.count(name)} layers of model "
                    f"{self.name!r}; every layer of a model needs its own name."
                )
        self.built = True
        self._plans = {}

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def input(self):
        return self._inputs[0] if self._single_input else self.inputs

    @property
    def output(self):
        return self._outputs[0] if self._single_output else self.outputs

    @property
    def input_shape(self):
        """The per-sample input shape (a list of them for several inputs)."""
        if not self._inputs:
            return None
        shapes = [t.sample_shape for t in self._inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @input_shape.setter
    def input_shape(self, value):
        if value is not None:  # Layer.__init__ clears it; a model's comes from its graph
            raise AttributeError("A model's input shape comes from its inputs.")

    @property
    def output_shape(self):
        """The per-sample output shape (a list of them for several outputs)."""
        shapes = [t.sample_shape for t in self._outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_names(self):
        """The names of the output layers, as Keras names the losses and metrics per output."""
        return [t.node.layer.name for t in self._outputs]

    @property
    def input_names(self):
        return [t.node.layer.name for t in self._inputs]

    @property
    def layers(self):
        """The model's layers in Keras's order (by depth from the inputs), InputLayers included."""
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        """A layer of the model by name, or by index into ``layers``."""
        if index is not None:
            if not utils.is_int(index) or not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f"get_layer: index {index!r} is outside the model's {len(self.layers)} layers."
                )
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name!r}. Existing layers are: "
            f"{[layer.name for layer in self.layers]}."
        )

    def compute_output_shape(self, input_shape):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        own = [t.sample_shape for t in self._inputs]
        if [utils.standardize_shape(s) for s in shapes] != own:
            raise ValueError(
                f"Model {self.name!r} expects inputs of shape "
                f"{', '.join(str((None, *s)) for s in own)}, got "
                f"{', '.join(str((None, *tuple(s))) for s in shapes)}."
            )
        return self.output_shape

    def check_input_shape(self, input_shape):
        return self.compute_output_shape(input_shape)

    def _output_shape_for(self, input_shape):
        """The output shape for ``input_shape`` (ValueError if it does not fit); builds nothing."""
        return self.compute_output_shape(input_shape)

    @property
    def mixes_samples(self):
        return any(layer.mixes_samples for layer in self._own_layers())

    def sample_floats(self):
        """How many numbers one sample's layer outputs take (nested models counted inside):
        what the CPU's training pieces are sized by."""
        total = 0
        for node in self._nodes:
            if isinstance(node.layer, Model):
                total += node.layer.sample_floats()
            else:
                total += sum(math.prod(t.sample_shape) for t in node.outputs)
        return total

    def build(self, input_shape=None):
        """A functional model is built when it is made; this only checks the shape."""
        if input_shape is not None:
            self.compute_output_shape(input_shape)

    # -- weights --------------------------------------------------------------------

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freeze (False) or unfreeze the model and every layer in it, nested ones too."""
        self._trainable = bool(value)
        Layer.trainable_changes += 1
        for layer in self._own_layers():
            layer.trainable = value

    def _own_layers(self):
        """The layers that hold weights or computation (no InputLayers)."""
        return [layer for layer in self._layers if not isinstance(layer, InputLayer)]

    @property
    def params(self):
        """Every weight by path ('dense_1/kernel', 'inner/conv2d/bias'), in get_weights() order."""
        named, seen = {}, set()
        for layer in self._own_layers():
            for name, w in layer.params.items():
                if id(w) not in seen:
                    seen.add(id(w))
                    named[f"{layer.name}/{name}"] = w
        return named

    @property
    def weights(self):
        return list(self.params.values())

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return _unique(w for layer in self._own_layers() for w in layer.trainable_weights)

    @property
    def regularized_weights(self):
        seen, pairs = set(), []
        for layer in self._own_layers():
            for w, regularizer in layer.regularized_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    pairs.append((w, regularizer))
        return pairs

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def count_params(self):
        self._require_built("count_params")
        return int(sum(w.size for w in self.weights))

    def get_weights(self):
        """Copies of every weight as NumPy arrays, in Keras's order and layout."""
        self._require_built("get_weights")
        return [backend.to_numpy(w).copy() for w in self.weights]

    def set_weights(self, weights):
        """Replace every weight (Keras's order and layout).

        Every array is checked (count, shape, numeric dtype) before any is copied:
        a refused call changes nothing.
        """
        self._require_built("set_weights")
        params = self.params
        assign_weights(list(params), list(params.values()), weights)

    # -- running --------------------------------------------------------------------

    def _plan(self, input_gradients=False):
        key = (
            backend.backend_name(),
            backend.fusion_enabled(),
            bool(input_gradients),
            Layer.trainable_changes,
        )
        plan = self._plans.get(key)
        if plan is None:
            fuse = backend.fusion_enabled()
            plan = graph.Plan(self._inputs, self._outputs, self._nodes, fuse, input_gradients)
            self._plans = {key: plan}
        return plan

    def __call__(self, inputs, training=False):
        if isinstance(inputs, dict):
            inputs = self._inputs_from_dict(inputs)
        return Layer.__call__(self, inputs, training=training)

    def _inputs_from_dict(self, inputs):
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise ValueError(
                f"Model {self.name!r} takes inputs {self.input_names}; the dict lacks {missing}."
            )
        return [inputs[name] for name in self.input_names]

    def forward(self, x, ctx):
        xs = x if isinstance(x, list) else [x]
        plan = self._plan(input_gradients=any(ctx.needs_input_grad))
        if ctx.for_backward:
            outputs, ctx.tape = plan.run_with_tape(xs, ctx.training, key=ctx.key)
            ctx.as_list = isinstance(x, list)
        else:
            outputs = plan.run(xs, ctx.training, key=ctx.key)
        return outputs[0] if len(outputs) == 1 else outputs

    def backward(self, ctx, dy):
        params = self.params
        dys = dy if len(self._outputs) > 1 else [dy]
        input_grads, grads = ctx.tape.backward(dys, list(params.values()))
        if ctx.needs_weight_grads:
            ctx.grads.update((name, g) for name, g in zip(params, grads) if g is not None)
        return input_grads if ctx.as_list else input_grads[0]

    def forward_with_tape(self, inputs, training=True, key=None, input_gradients=False):
        """(outputs, tape) for a batch: the training forward whose tape.backward(dy) gives
        the gradients. ``inputs`` and the outputs are arrays, or lists for several."""
        xs = inputs if isinstance(inputs, list) else [inputs]
        outputs, tape = self._plan(input_gradients).run_with_tape(xs, training, key)
        return (outputs[0] if self._single_output else outputs), tape

    # -- saving ---------------------------------------------------------------------

    def get_config(self):
        """The graph as data: each layer's config and the tensors each of its calls took
        ([layer name, call index, output index]), then the model's inputs and outputs."""
        in_model = {id(n) for n in self._nodes} | {id(t.node) for t in self._inputs}

        def calls(layer):
            return [n for n in layer.inbound_nodes if id(n) in in_model]

        def ref(tensor):
            node = tensor.node
            return [node.layer.name, calls(node.layer).index(node), tensor.index]

        entries = []
        for layer in self._layers:
            entry = serialization.layer_entry(layer)
            entry["inbound_nodes"] = [
                {"inputs": [ref(t) for t in node.inputs], "as_list": node.as_list}
                for node in calls(layer)
                if not node.is_input
            ]
            entries.append(entry)
        config = {
            "name": self.name,
            "layers": entries,
            "input_layers": [ref(t) for t in self._inputs],
            "output_layers": [ref(t) for t in self._outputs],
            "single_input": self._single_input,
            "single_output": self._single_output,
        }
        if not self.trainable:
            config["trainable"] = False
        return config

    def save_weights(self, path):
        saving.save_weights(self, path)

    def load_weights(self, path):
        saving.load_weights(self, path)

    def save(self, path):
        """Write one .npz file: architecture, weights, optimizer and its state (no pickle)."""
        saving.save_model(self, path)

    _summary_shows_connections = True

    def summary(self, line_length=None, print_fn=None, style="plain"):
        """Print Keras's table: each layer's output shape and parameters, then the totals.

        ``style``: 'plain' (the default) or 'box', Keras 3's box table, whose width is
        ``line_length`` (Keras's default from the terminal's width when None; the plain
        table is fixed). ``print_fn`` receives the text (default: print).
        """
        self._require_built("summary")
        if style not in ("plain", "box"):
            raise ValueError(f"summary: unknown style {style!r}; expected 'plain' or 'box'.")
        if style == "box":
            text = summary.box_summary_text(self, line_length)
        else:
            text = summary.summary_text(self, connections=self._summary_shows_connections)
        (print_fn or print)(text)

    def _require_built(self, what):
        if not self.built:
            raise ValueError(
                f"{what}: the model is not built yet; give the first layer input_shape=, "
                "call build(input_shape) or fit it on data first."
            )


def _tensor_list(value, what):
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(isinstance(v, KerasTensor) for v in values):
        raise TypeError(
            f"Model {what} must be tensors from engine.Input and layer calls, got {value!r}."
        )
    return list(values)


def _nodes_between(inputs, outputs):
    """The nodes from ``inputs`` to ``outputs``, each after the nodes of its inputs (a
    depth-first walk back from the outputs, as Keras's _build_map), and each layer's
    position in the order the walk first reached it."""
    input_ids = {id(t) for t in inputs}
    order, done, active, first_visit = [], set(), set(), {}

    def visit(tensor):
        node = tensor.node
        if id(node) in done:
            return
        if id(tensor) in input_ids and not node.is_input:
            done.add(id(node))  # an intermediate tensor given as an input: the graph starts here
            return
        if node.is_input and id(tensor) not in input_ids:
            raise ValueError(
                f"Graph disconnected: the outputs depend on {tensor.name!r} (from Input layer "
                f"{node.layer.name!r}), which is not among the model's inputs."
            )
        if id(node) in active:
            raise ValueError(f"The graph has a cycle through layer {node.layer.name!r}.")
        first_visit.setdefault(id(node.layer), len(first_visit))
        active.add(id(node))
        for t in node.inputs:
            visit(t)
        active.discard(id(node))
        done.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t)
    for t in inputs:  # inputs the outputs do not use still belong to the model
        if t.node.is_input and t.node not in order:
            order.insert(0, t.node)
            first_visit[id(t.node.layer)] = -1
    return order, first_visit


def _layers_by_depth(nodes, first_visit):
    """The graph's layers as Keras orders them (keras/src/ops/function.py map_graph): by
    decreasing depth from the outputs, ties by first visit. This is get_weights() order."""
    layers = {id(node.layer): node.layer for node in nodes}
    in_graph = {id(n) for n in nodes}
    node_depth, layer_depth = {}, {}
    for node in reversed(nodes):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        for parent in node.parents:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    return sorted(
        layers.values(), key=lambda layer: (-layer_depth[id(layer)], first_visit[id(layer)])
    )


def _unique(weights):
    seen, out = set(), []
    for w in weights:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out
