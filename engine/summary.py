"""model.summary(): Keras's table of layers, output shapes and parameter counts.

A Sequential model shows one row per layer; a functional model also shows its
InputLayers and, in a fourth column, the calls each layer takes its inputs from
('conv2d[0][0]': layer, call, output), as Keras prints them.
"""

import numpy as np

from engine import backend


def summary_text(model, connections):
    """The summary of a built ``model`` as one string; ``connections`` adds the inputs column."""
    in_model = {id(n) for n in model._nodes} | {id(t.node) for t in model.inputs}
    rows = []
    for layer in model.layers if connections else model._own_layers():
        calls = [n for n in layer.inbound_nodes if id(n) in in_model]
        shapes = {str(t.shape) for n in calls for t in n.outputs}
        shape = shapes.pop() if len(shapes) == 1 else "multiple"
        row = [f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"]
        if connections:
            sources = [
                f"{t.node.layer.name}[{_call_index(t.node, in_model)}][{t.index}]"
                for n in calls
                for t in n.inputs
            ]
            row.append(", ".join(sources) or "-")
        rows.append(row)
    # Keras's widths, the first two widened for names and shapes that would not fit.
    first = max([33] + [len(row[0]) + 2 for row in rows])
    second = max([26] + [len(row[1]) + 2 for row in rows])
    widths = (first, second, 13, 30) if connections else (first, second, 13)

    def line(cells):  # the parameter count right-aligned, the other columns left
        text = "".join(  # a name as wide as its column still gets a space after it
            c.rjust(w) if i == 2 else c.ljust(w - 1) + " "
            for i, (c, w) in enumerate(zip(cells, widths))
        )
        return text.rstrip() if connections else text

    header = ("Layer (type)", "Output Shape", "Param #", "Connected to")[: len(widths)]
    lines = [f'Model: "{model.name}"', "_" * sum(widths), line(header), "=" * sum(widths)]
    for i, row in enumerate(rows):
        lines.append(line(row))
        lines.append(("_" if i < len(rows) - 1 else "=") * sum(widths))
    itemsize = np.dtype(backend.floatx()).itemsize
    total = model.count_params()
    trainable = int(sum(w.size for w in model.trainable_weights))
    frozen = total - trainable
    lines += [
        f"Total params: {total:,} ({human_bytes(total * itemsize)})",
        f"Trainable params: {trainable:,} ({human_bytes(trainable * itemsize)})",
        f"Non-trainable params: {frozen:,} ({human_bytes(frozen * itemsize)})",
        "_" * sum(widths),
    ]
    return "\n".join(lines)


def _call_index(node, in_model):
    return [n for n in node.layer.inbound_nodes if id(n) in in_model].index(node)


def human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
