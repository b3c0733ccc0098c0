"""Sequential: a stack of layers, with Keras's compile / fit / evaluate / predict
(engine.trainer.Trainer) and its weights, summary and saving."""

import numpy as np

from engine import backend, utils
from engine.trainer import Trainer


class Sequential(Trainer):
    """A linear stack of layers, trained with compile() and fit() as in Keras.

    Data are channels-last: images (N, H, W, C). NumPy inputs of any numeric dtype
    (uint8, float64) are cast to floatx() batch by batch and moved to the device.
    """

    def __init__(self, layers=None, name=None):
        from layers.base import Layer

        self._layer_type = Layer
        self.name = name or utils.unique_name("sequential")
        self.layers = []
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.stop_training = False
        self.history = None
        for layer in layers or []:
            self.add(layer)

    # -- building -------------------------------------------------------------------

    def add(self, layer):
        if not isinstance(layer, self._layer_type):
            raise TypeError(
                f"Sequential.add expects a Layer, got {type(layer).__name__}: {layer!r}."
            )
        if self.layers and self.built:
            # Validate the new layer against the current output before accepting it.
            layer.build(self.output_shape)
        self.layers.append(layer)
        if len(self.layers) == 1 and layer.input_shape is not None:
            self.build(layer.input_shape)

    @property
    def built(self):
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_shape(self):
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self):
        shape = self.input_shape
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def build(self, input_shape):
        """Build every layer for per-sample inputs of ``input_shape`` (a leading None is dropped).

        The whole stack is checked first: a shape that does not fit builds nothing.
        """
        if not self.layers:
            raise ValueError("Sequential.build: the model has no layers; add some first.")
        shape = utils.standardize_shape(input_shape)
        # Check the whole stack first, so a bad shape leaves no layer half-built.
        self._output_shape_for(shape)
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.output_shape(shape)

    def _output_shape_for(self, input_shape):
        """The model's per-sample output shape for ``input_shape``; builds nothing.

        Raises ValueError naming the first layer that cannot take its input.
        """
        shape = utils.standardize_shape(input_shape)
        for layer in self.layers:
            if layer.built and layer.input_shape != shape:
                raise ValueError(
                    f"Layer {layer.name!r} was built for inputs {layer.input_shape}, "
                    f"but receives {shape}."
                )
            shape = layer.output_shape(shape)
        return shape

    @property
    def params(self):
        """Every parameter array, in get_weights() order."""
        return [p for layer in self.layers for p in layer.params.values()]

    def count_params(self):
        self._require_built("count_params")
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print):
        """Print Keras's table: Layer (type), Output Shape, Param #, then the totals."""
        self._require_built("summary")
        rows = []
        shape = self.input_shape
        for layer in self.layers:
            shape = layer.output_shape(shape)
            rows.append(
                (
                    f"{layer.name} ({type(layer).__name__})",
                    str((None, *shape)),
                    f"{layer.count_params():,}",
                )
            )
        widths = (33, 26, 13)
        line = lambda cells: "".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )
        total = self.count_params()
        itemsize = np.dtype(backend.floatx()).itemsize
        lines = [
            f'Model: "{self.name}"',
            "_" * sum(widths),
            line(("Layer (type)", "Output Shape", "Param #")),
            "=" * sum(widths),
        ]
        for i, row in enumerate(rows):
            lines.append(line(row))
            lines.append(("_" if i < len(rows) - 1 else "=") * sum(widths))
        lines += [
            f"Total params: {total:,} ({_human_bytes(total * itemsize)})",
            f"Trainable params: {total:,} ({_human_bytes(total * itemsize)})",
            "Non-trainable params: 0 (0.00 B)",
            "_" * sum(widths),
        ]
        print_fn("\n".join(lines))

    # -- forward and backward -------------------------------------------------------

    def forward(self, x, training=False):
        """The model's output for one device batch."""
        for step in self._steps():
            x = step(x, training=training)
        return x

    def backward(self, dy, input_gradient=True):
        """Backpropagate dy through every layer, filling each layer's grads; return the
        gradient for the model's input. With input_gradient=False (training, which never
        uses it) a first layer that can skip computing it does, and None is returned."""
        first, *rest = self._steps()
        for step in reversed(rest):
            dy = step.backward(dy)
        if not input_gradient and getattr(first, "can_skip_input_gradient", False):
            return first.backward(dy, input_gradient=False)
        return first.backward(dy)

    def _steps(self):
        """What forward and backward run: the layers, except that on the CPU each Conv2D
        with the 2x2 max pooling after it runs as one fused step (layers/conv_pool.py)."""
        from layers import conv_pool

        key = (backend.backend_name(), conv_pool.ENABLED, self.built, *map(id, self.layers))
        cached = getattr(self, "_steps_cache", None)
        if cached is None or cached[0] != key:
            steps = self.layers
            if key[:3] == ("numpy", True, True):
                steps = conv_pool.fuse(self.layers)
            cached = self._steps_cache = (key, steps)
        return cached[1]

    # -- weights --------------------------------------------------------------------

    def get_weights(self):
        """Copies of every parameter as NumPy arrays, in Keras's order and layout."""
        self._require_built("get_weights")
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Replace every parameter (Keras's order and layout).

        Every array is checked (count, shape, numeric dtype) before any is copied:
        a refused call changes nothing.
        """
        self._require_built("set_weights")
        params = self.params
        if isinstance(weights, (str, bytes, dict, np.ndarray)) or not hasattr(weights, "__iter__"):
            raise TypeError(
                f"set_weights expects a list of {len(params)} arrays (as get_weights returns), "
                f"got {type(weights).__name__}."
            )
        weights = list(weights)
        if len(weights) != len(params):
            raise ValueError(
                f"set_weights expects {len(params)} arrays for this model, got {len(weights)}."
            )
        arrays = []
        names = [f"{layer.name}/{k}" for layer in self.layers for k in layer.params]
        for name, p, w in zip(names, params, weights):
            try:
                w = backend.to_numpy(w)
            except (ValueError, TypeError) as exc:
                raise TypeError(
                    f"set_weights: {name} is not an array of numbers ({exc})."
                ) from None
            if w.shape != p.shape:
                raise ValueError(
                    f"set_weights: {name} has shape {p.shape}, got an array of shape {w.shape}."
                )
            if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
                raise ValueError(f"set_weights: {name} needs numbers, got dtype {w.dtype}.")
            arrays.append(w)
        for p, w in zip(params, arrays):
            p[...] = backend.to_device(w, dtype=p.dtype)

    def save_weights(self, path):
        from engine import saving

        saving.save_weights(self, path)

    def load_weights(self, path):
        from engine import saving

        saving.load_weights(self, path)

    def save(self, path):
        """Write one .npz file: architecture, weights, optimizer and its state (no pickle)."""
        from engine import saving

        saving.save_model(self, path)

    def get_config(self):
        return {
            "name": self.name,
            "layers": [
                {"class_name": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
        }

    # -- checks ---------------------------------------------------------------------

    def _require_built(self, what):
        if not self.built:
            raise ValueError(
                f"{what}: the model is not built yet; give the first layer input_shape=, "
                "call build(input_shape) or fit it on data first."
            )


def _human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
