"""The fusion pass: pairs of consecutive steps that run faster as one.

A fused step is a class registered here with

    backends                       the backends it runs on (e.g. ("numpy",))
    can_fuse(first, second)        True when it can run layer ``first`` then ``second``
    __init__(first, second)        the step; it has forward(x, ctx), backward(ctx, dy),
                                   params (the weights its ctx.grads names), name and
                                   trainable_weights, as a layer does

engine.graph.Plan runs this pass over any model's graph (Sequential or functional) when
backend.fusion_enabled(): a step whose single output is read by exactly one single-input
step, and is not itself an output of the model, is offered with that step to each
registered class in turn. layers/conv_pool.py registers the CPU's Conv2D + 2x2 max pooling,
layers/batchnorm_pool.py its BatchNormalization + 2x2 max pooling. A fused step whose
outputs depend on the whole batch says so with mixes_samples, as a layer does.
"""

from engine import backend

_FUSED_STEPS = []


def register(step_class):
    """Class decorator: make ``step_class`` a fused step the pass may use."""
    _FUSED_STEPS.append(step_class)
    return step_class


def fused_step_for(first, second):
    """The registered fused step for layer ``first`` then layer ``second``, or None."""
    for step_class in _FUSED_STEPS:
        if backend.backend_name() in step_class.backends and step_class.can_fuse(first, second):
            return step_class(first, second)
    return None


def fuse(steps, keep):
    """``steps`` (engine.graph.Step, in run order) with fusable pairs merged into one step.
    ``keep``: slots that must stay visible (the model's outputs)."""
    readers = {}
    for step in steps:
        for i in step.inputs:
            readers[i] = readers.get(i, 0) + 1
    by_input = {step.inputs[0]: step for step in steps if len(step.inputs) == 1}
    fused, absorbed = [], set()
    for step in steps:
        if id(step) in absorbed:
            continue
        second = None
        if len(step.outputs) == 1 and step.outputs[0] not in keep:
            out = step.outputs[0]
            candidate = by_input.get(out)
            if candidate is not None and readers.get(out) == 1 and not candidate.as_list:
                second = candidate
        layer = second and fused_step_for(step.layer, second.layer)
        if layer is None:
            fused.append(step)
            continue
        step.layer, step.outputs = layer, second.outputs
        absorbed.add(id(second))
        fused.append(step)
    return fused
