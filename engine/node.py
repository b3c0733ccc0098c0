"""Node: one call of a layer on symbolic tensors, the unit of a model's graph.

A layer called twice (a shared layer) has two nodes, each with its own inputs and
outputs and one set of weights between them (Keras 3's keras/src/ops/node.py).

    node.layer       the layer called
    node.inputs      the KerasTensors it was called on (a list)
    node.outputs     the KerasTensors it returned (a list)
    node.as_list     whether the layer was called on a list (its forward takes a list)
    node.index       its position in layer.inbound_nodes
"""

from engine.keras_tensor import KerasTensor


class Node:
    def __init__(self, layer, inputs, output_shapes, dtype, as_list=False):
        self.layer = layer
        self.inputs = list(inputs)
        self.as_list = as_list  # the layer takes a list of arrays (it was called on a list)
        self.index = len(layer.inbound_nodes)
        layer.inbound_nodes.append(self)
        base = layer.name if self.index == 0 else f"{layer.name}_{self.index}"
        self.outputs = [
            KerasTensor(shape, dtype, node=self, index=i, name=base if i == 0 else f"{base}_{i}")
            for i, shape in enumerate(output_shapes)
        ]

    @property
    def is_input(self):
        """True for the node of an InputLayer, where a graph starts."""
        return not self.inputs

    @property
    def parents(self):
        """The nodes that made this node's inputs."""
        return [x.node for x in self.inputs]

    def __repr__(self):
        return f"<Node {self.layer.name}[{self.index}]>"


def as_tensor_list(value):
    """(KerasTensors, True) for a tensor or a list/tuple of them; (None, False) otherwise."""
    if isinstance(value, KerasTensor):
        return [value], True
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, KerasTensor) for v in value)
    ):
        return list(value), True
    return None, False
