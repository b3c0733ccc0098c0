"""Running a model's graph: the Plan (what to run, in which order, and which gradients
are needed) and the Tape (the record of one training forward, which backward replays
in reverse).

    plan = Plan(model.inputs, model.outputs, nodes, fuse=True, input_gradients=False)
    outputs = plan.run(inputs, training=False)                  # inference: keeps nothing
    outputs, tape = plan.run_with_tape(inputs, training=True)   # keeps what backward needs
    input_grads, weight_grads = tape.backward(output_grads, model.trainable_weights)

Values live in numbered slots, one per tensor of the graph. A step's outputs that no
later step reads are dropped as soon as possible, so inference streams through the
graph. Backward visits the recorded steps in reverse, sums the gradients of a tensor that
feeds several steps (DeZero's ``x.grad = x.grad + gx``), skips steps whose outputs reach
no loss, and tells each layer which input gradients are needed (Chainer's
``backward(indexes, grad_outputs)``): the first layer of a model never computes the
gradient of the data, and a frozen prefix of the graph runs no backward at all.
"""

from engine import backend, fusion
from engine.context import Context
from engine.workspace import Workspace


class Step:
    """One call to run: a layer (or a fused pair of layers) and its slots."""

    def __init__(self, layer, inputs, outputs, as_list, index):
        self.layer = layer
        self.inputs = inputs  # slot numbers
        self.outputs = outputs
        self.as_list = as_list  # the layer takes a list of arrays
        self.index = index  # the node's position in the model: part of its random key
        self.needs_input_grad = (False,) * len(inputs)
        self.needs_weight_grads = False
        self.needs_backward = False
        self.frees = ()  # slots whose last reader this step is
        # Scratch buffers reused from call to call: one set for calls that keep what
        # backward needs (alive until that backward), one for inference calls.
        self.workspaces = {True: Workspace(), False: Workspace()}

    def __repr__(self):
        return f"<Step {getattr(self.layer, 'name', self.layer)} {self.inputs}->{self.outputs}>"


class Plan:
    def __init__(self, inputs, outputs, nodes, fuse, input_gradients):
        """``nodes``: the graph's nodes in an order where each comes after its inputs' nodes
        (InputLayer nodes excluded). ``fuse``: run engine.fusion's planning pass.
        ``input_gradients``: backward returns the gradients of the model's inputs."""
        slots = {}

        def slot(tensor):
            if id(tensor) not in slots:
                slots[id(tensor)] = len(slots)
            return slots[id(tensor)]

        self.input_slots = [slot(t) for t in inputs]
        steps = []
        for index, node in enumerate(nodes):
            ins = [slots[id(t)] for t in node.inputs]
            steps.append(
                Step(node.layer, ins, [slot(t) for t in node.outputs], node.as_list, index)
            )
        self.output_slots = [slots[id(t)] for t in outputs]
        self.slot_count = len(slots)
        if fuse:
            steps = fusion.fuse(steps, keep=set(self.output_slots))
        self.steps = steps
        self._mark_gradients(bool(input_gradients))
        self._mark_last_reads()
        self._tape_alive = False

    def _mark_gradients(self, input_gradients):
        """Which slots need a gradient: those downstream of a trainable weight (or of the
        inputs, when their gradients are asked for)."""
        requires = [False] * self.slot_count
        for s in self.input_slots:
            requires[s] = input_gradients
        for step in self.steps:
            step.needs_weight_grads = bool(step.layer.trainable_weights)
            step.needs_input_grad = tuple(requires[i] for i in step.inputs)
            step.needs_backward = step.needs_weight_grads or any(step.needs_input_grad)
            for o in step.outputs:
                requires[o] = step.needs_backward

    def _mark_last_reads(self):
        last = {}
        for position, step in enumerate(self.steps):
            for i in step.inputs:
                last[i] = position
        kept = set(self.output_slots)
        for position, step in enumerate(self.steps):
            step.frees = tuple(i for i in set(step.inputs) if last[i] == position and i not in kept)

    @property
    def mixes_samples(self):
        """True when some layer's output for a sample depends on other samples."""
        return any(getattr(step.layer, "mixes_samples", False) for step in self.steps)

    def run(self, inputs, training=False, key=None):
        """The outputs (a list) for a list of input arrays, keeping nothing for backward."""
        return self._run(inputs, training, None, key)

    def run_with_tape(self, inputs, training=True, key=None):
        """(outputs, Tape): the outputs, and the record backward replays.

        ``key`` (a tuple of ints) seeds each layer's random draws with (*key, node index).
        """
        tape = Tape(self, exclusive=not self._tape_alive)
        return self._run(inputs, training, tape, key), tape

    def _run(self, inputs, training, tape, key):
        values = [None] * self.slot_count
        for s, x in zip(self.input_slots, inputs):
            values[s] = x
        for step in self.steps:
            keep = tape is not None and step.needs_backward
            ctx = Context(
                training=training,
                for_backward=keep,
                needs_input_grad=step.needs_input_grad,
                needs_weight_grads=step.needs_weight_grads,
                key=None if key is None else (*key, step.index),
                workspace=tape.workspace(step) if keep else step.workspaces[False],
            )
            xs = [values[i] for i in step.inputs]
            y = step.layer.forward(xs if step.as_list else xs[0], ctx)
            ys = y if len(step.outputs) > 1 else [y]
            for o, v in zip(step.outputs, ys):
                values[o] = v
            if keep:
                tape.record(step, ctx, ys)
            for i in step.frees:
                values[i] = None
        return [values[s] for s in self.output_slots]


class Tape:
    """The steps of one training forward with their contexts; backward() once."""

    def __init__(self, plan, exclusive):
        self.plan = plan
        # The steps' kept workspaces serve one tape at a time: a second forward before the
        # first one's backward (two passes through one model) gets buffers of its own.
        self.exclusive = exclusive
        if exclusive:
            plan._tape_alive = True
        self.records = []
        self.released = False

    def workspace(self, step):
        return step.workspaces[True] if self.exclusive else Workspace()

    def record(self, step, ctx, outputs):
        like = [(o.shape, o.dtype) for o in outputs] if len(outputs) > 1 else None
        self.records.append((step, ctx, like))

    def backward(self, output_grads, weights):
        """(gradients of the plan's inputs, gradients of ``weights``): two lists, None where a
        gradient was not computed (an input whose gradient was not asked for, a weight no
        loss depends on). ``output_grads`` has one array (or None: no loss) per output."""
        if self.released:
            raise RuntimeError(
                "This tape's backward already ran: each forward serves one backward."
            )
        xp = backend.xp()
        grads = [None] * self.plan.slot_count
        for s, g in zip(self.plan.output_slots, output_grads):
            grads[s] = _add(grads[s], g)
        by_weight = {}
        try:
            for step, ctx, like in reversed(self.records):
                dys = [grads[o] for o in step.outputs]
                if all(d is None for d in dys):
                    continue  # no loss depends on this step
                if like is not None:  # several outputs, some of which reach no loss
                    dys = [xp.zeros(*sd) if d is None else d for d, sd in zip(dys, like)]
                dx = step.layer.backward(ctx, dys if like is not None else dys[0])
                for name, g in ctx.grads.items():
                    param = step.layer.params[name]
                    previous = by_weight.get(id(param))
                    by_weight[id(param)] = g if previous is None else previous + g
                ctx.release()
                for o in step.outputs:
                    grads[o] = None
                dxs = dx if step.as_list else [dx]
                for slot, need, d in zip(step.inputs, step.needs_input_grad, dxs):
                    if need and d is not None:
                        grads[slot] = _add(grads[slot], d)
        finally:
            self.release()
        return [grads[s] for s in self.plan.input_slots], [by_weight.get(id(w)) for w in weights]

    def release(self):
        """Free the contexts and hand the workspaces back (backward does it)."""
        self.records = []
        self.released = True
        if self.exclusive:
            self.plan._tape_alive = False
            self.exclusive = False

    def __del__(self):
        self.release()


def _add(total, g):
    """total + g as a new array (never in place: g may be another step's array)."""
    if g is None:
        return total
    return g if total is None else total + g
