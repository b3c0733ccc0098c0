"""model.summary(): Keras's table of layers, output shapes and parameter counts.

A Sequential model shows one row per layer; a functional model also shows its
InputLayers and, in a fourth column, the calls each layer takes its inputs from
('conv2d[0][0]': layer, call, output), as Keras prints them. Two styles: the plain
table (the default, summary_text) and Keras 3's box table (style="box",
box_summary_text).
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
            _cell(c, w, i, last=i == len(widths) - 1) for i, (c, w) in enumerate(zip(cells, widths))
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


def _cell(text, width, column, last):
    """One cell of the plain table: the parameter count right-aligned (two spaces before
    a column after it), the other columns left-aligned with at least one space after."""
    if column == 2:
        return text.rjust(width) if last else text.rjust(width - 2) + "  "
    return text.ljust(width - 1) + " "


def _call_index(node, in_model):
    return [n for n in node.layer.inbound_nodes if id(n) in in_model].index(node)


def human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


# -- Keras 3's box table (summary(style="box")) -----------------------------------------

_BOX = {  # Keras draws its table with rich: heavy lines around the header, light below
    "top": "┏━┳┓",
    "header": "┃┃┃",
    "below_header": "┡━╇┩",
    "row": "│││",
    "between": "├─┼┤",
    "bottom": "└─┴┘",
}


def box_summary_text(model, line_length=None):
    """The summary as Keras 3 prints it: a box table (its column widths from line_length,
    by default 88, or 108 with the 'Connected to' column, capped by the terminal's width
    as Keras's), then the totals, trainable and non-trainable parameters and, once the
    optimizer has its slots, its parameters (counted as Keras's optimizer variables: the
    slots, the step count and a learning-rate number)."""
    import shutil

    connections = model._summary_shows_connections and not _sequential_like(model)
    if connections:
        default, positions = 108, (0.3, 0.56, 0.74, 1.0)
        header = ("Layer (type)", "Output Shape", "Param #", "Connected to")
    else:
        default, positions = 88, (0.45, 0.80, 1.0)
        header = ("Layer (type)", "Output Shape", "Param #")
    if line_length is None:
        line_length = min(default, shutil.get_terminal_size().columns - 4)
    widths, current = [], 0
    for position in positions:
        widths.append(int(position * line_length) - current)
        current += widths[-1]
    if min(widths) < 4:
        raise ValueError(f"summary: line_length={line_length} is too narrow for the table.")
    widths = _shrink(widths, sum(widths) + len(widths) + 1 - line_length)

    layers = model.layers if model._summary_shows_connections else model._own_layers()
    rows = [_row(model, layer, connections) for layer in layers]
    lines = [f'Model: "{model.name}"', _rule(_BOX["top"], widths)]
    lines += _cells(header, widths, _BOX["header"])
    lines.append(_rule(_BOX["below_header"], widths))
    for i, row in enumerate(rows):
        lines += _cells(row, widths, _BOX["row"])
        lines.append(_rule(_BOX["between"] if i < len(rows) - 1 else _BOX["bottom"], widths))
    itemsize = np.dtype(backend.floatx()).itemsize
    trainable = int(sum(w.size for w in model.trainable_weights))
    frozen = model.count_params() - trainable
    slots = _optimizer_params(model)
    total = trainable + frozen + (slots or 0)
    lines += [
        f" Total params: {total:,} ({human_bytes(total * itemsize)})",
        f" Trainable params: {trainable:,} ({human_bytes(trainable * itemsize)})",
        f" Non-trainable params: {frozen:,} ({human_bytes(frozen * itemsize)})",
    ]
    if slots is not None:
        lines.append(f" Optimizer params: {slots:,} ({human_bytes(slots * itemsize)})")
    return "\n".join(lines)


def _sequential_like(model):
    """Keras shows no 'Connected to' column for a functional model that is a chain: one
    input, each call taking the previous call's only output, no layer called twice."""
    nodes = model._nodes
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    if len({id(n.layer) for n in nodes}) != len(nodes):
        return False
    previous = model.inputs[0]
    for node in nodes:
        if len(node.inputs) != 1 or node.inputs[0] is not previous or len(node.outputs) != 1:
            return False
        previous = node.outputs[0]
    return True


def _row(model, layer, connections):
    in_model = {id(n) for n in model._nodes} | {id(t.node) for t in model.inputs}
    calls = [n for n in layer.inbound_nodes if id(n) in in_model]
    shapes = {str(t.shape) for n in calls for t in n.outputs}
    row = [
        f"{layer.name} ({type(layer).__name__})",
        shapes.pop() if len(shapes) == 1 else "multiple",
        f"{layer.count_params():,}",
    ]
    if connections:
        sources = [
            f"{t.node.layer.name}[{_call_index(t.node, in_model)}][{t.index}]"
            for n in calls
            for t in n.inputs
        ]
        row.append(", ".join(sources) or "-")
    return row


def _optimizer_params(model):
    """How many numbers Keras's optimizer variables would hold, or None before it has any."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or optimizer.slots is None:
        return None
    from optim.schedules import LearningRateSchedule

    slots = sum(int(a.size) for s in optimizer.slots for a in s.values())
    rate_variable = not isinstance(optimizer._learning_rate, LearningRateSchedule)
    return slots + 1 + rate_variable  # the step count and the learning rate, as Keras's


def _shrink(widths, excess):
    """Column widths narrowed by ``excess`` characters in all, as rich's ratio_reduce."""
    result, remaining, columns = [], excess, len(widths)
    for width in widths:
        cut = min(width, round(remaining / columns)) if remaining > 0 else 0
        result.append(width - cut)
        remaining -= cut
        columns -= 1
    return result


def _rule(chars, widths):
    left, line, middle, right = chars
    return left + middle.join(line * w for w in widths) + right


def _wrap(text, width):
    """Rich's wrapping of a cell: at spaces, a word too long cut to width with '…'."""
    lines = []
    for word in text.split(" "):
        if len(word) > width:
            word = word[: width - 1] + "…"
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _cells(cells, widths, chars):
    """The lines of one table row; a cell too long for its column wraps, as rich wraps."""
    left, middle, right = chars
    wrapped = [_wrap(c, w - 2) for c, w in zip(cells, widths)]
    lines = []
    for k in range(max(len(parts) for parts in wrapped)):
        texts = []
        for i, (parts, w) in enumerate(zip(wrapped, widths)):
            text = parts[k] if k < len(parts) else ""
            texts.append(" " + (text.rjust(w - 2) if i == 2 else text.ljust(w - 2)) + " ")
        lines.append(left + middle.join(texts) + right)
    return lines
