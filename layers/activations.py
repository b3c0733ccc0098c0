"""Activation functions, usable as ``activation=`` strings and as layers.

A Function computes y = f(x) and the gradient backward(dy, saved), where ``saved`` is what
saved_for_backward(x, y) chose to keep:

- the output y, for functions whose derivative is a function of y (relu, sigmoid, tanh,
  softmax, relu6, hard_sigmoid): a layer with a fused activation keeps only its output,
  which forward may have computed in place over x (Dense and Conv2D do);
- the input x, for those whose derivative is not (``needs_input = True``: gelu, silu,
  softplus, elu, leaky_relu, ...). They never write over x, since backward reads it.

The names are Keras's (keras.activations), 'swish' and 'hard_swish' being its aliases of
'silu' and 'hard_silu'. A function with arguments is named by a config when they differ
from Keras's defaults: {"name": "gelu", "approximate": True}, {"name": "elu", "alpha": 0.5}.
"""

import math

import numpy as np

from engine import backend, initializers, regularizers, special, utils
from layers.base import Layer, initializer_config


class Function:
    """f and its derivative; see the module docstring for what backward receives."""

    name = None
    needs_input = False

    def forward(self, x, inplace=False):
        raise NotImplementedError

    def backward(self, dy, saved):
        raise NotImplementedError

    def saved_for_backward(self, x, y):
        """What backward needs: the input for needs_input functions, else the output."""
        return x if self.needs_input else y

    def get_config(self):
        """The arguments that rebuild this function (none for most)."""
        return {}


def _number(value, what, minimum=None):
    """``value`` as a float, or a ValueError naming ``what``: a finite real number (not a
    bool), at least ``minimum`` when given."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or (minimum is not None and value < minimum)
    ):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{what} must be a finite number{bound}, got {value!r}.")
    return float(value)


# Selections are written as arithmetic (max, min, products with a 0/1 mask), not xp.where:
# on NumPy, where with a mask of random signs runs 5-10x slower than an arithmetic pass
# (11.7 ms against 1.3 ms on MNIST's first convolution map at batch 128, float32).


def _sigmoid_parts(x):
    """(e, r) = (exp(-|x|), 1 / (1 + e)): sigmoid(x) is r for x >= 0 and e r below, with no
    overflow and no cancellation."""
    xp = backend.get_array_module(x)
    e = xp.abs(x)
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    r = e + 1
    xp.divide(1, r, out=r)
    return e, r


def _sigmoid(x):
    xp = backend.get_array_module(x)
    e, r = _sigmoid_parts(x)
    r *= xp.maximum(e, x >= 0)  # e below 0, 1 above (e <= 1)
    return r


def _sigmoid_and_complement(x):
    """(sigmoid(x), 1 - sigmoid(x)), the second without the cancellation of 1 - sigmoid."""
    xp = backend.get_array_module(x)
    e, r = _sigmoid_parts(x)
    return r * xp.maximum(e, x >= 0), r * xp.maximum(e, x < 0)


def _softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), finite for any x."""
    xp = backend.get_array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def _relu6(a):
    xp = backend.get_array_module(a)
    return xp.minimum(xp.maximum(a, 0), 6)


# -- functions whose derivative is written in their output y ---------------------------


class _Linear(Function):
    name = "linear"

    def forward(self, x, inplace=False):
        return x

    def backward(self, dy, y):
        return dy


class _ReLU(Function):
    name = "relu"

    # On NumPy, max against an array of zeros shaped like x runs 2-7x faster than against
    # the scalar 0 (NumPy's contiguous loop); one kept zero buffer of up to this many
    # elements serves every call (bigger inputs get fresh zeros). Same values, NaN too.
    _ZEROS_MAX = 2**20
    _zeros = np.zeros(0, np.float32)

    def forward(self, x, inplace=False):
        xp = backend.get_array_module(x)
        out = x if inplace else None
        if xp is not np:
            return xp.maximum(x, 0, out=out)
        zeros = self._zeros
        if zeros.dtype != x.dtype or zeros.size < x.size:
            if x.size > self._ZEROS_MAX:
                return np.maximum(x, np.zeros_like(x), out=out)
            zeros = self._zeros = np.zeros(x.size, x.dtype)
        return np.maximum(x, zeros[: x.size].reshape(x.shape), out=out)

    def backward(self, dy, y):
        return dy * (y > 0)


class _ReLU6(Function):
    """min(max(x, 0), 6); the derivative is 0 at both kinks, as JAX's."""

    name = "relu6"

    def forward(self, x, inplace=False):
        return _relu6(x)

    def backward(self, dy, y):
        return dy * ((y > 0) & (y < 6))


class _Sigmoid(Function):
    name = "sigmoid"

    def forward(self, x, inplace=False):
        return _sigmoid(x)

    def backward(self, dy, y):
        return dy * y * (1 - y)


class _HardSigmoid(Function):
    """Keras 3's hard_sigmoid: relu6(x + 3) / 6 (Keras 2's was clip(0.2 x + 0.5, 0, 1))."""

    name = "hard_sigmoid"

    def forward(self, x, inplace=False):
        return _relu6(x + 3) / 6

    def backward(self, dy, y):
        return dy * ((y > 0) & (y < 1)) / 6


class _Tanh(Function):
    name = "tanh"

    def forward(self, x, inplace=False):
        xp = backend.get_array_module(x)
        return xp.tanh(x, out=x if inplace else None)

    def backward(self, dy, y):
        # (1 - y)(1 + y), not 1 - y*y: as |y| -> 1, y*y rounds and 1 - y*y loses digits.
        return dy * ((1 - y) * (1 + y))


class _Softmax(Function):
    name = "softmax"

    def forward(self, x, inplace=False):
        xp = backend.get_array_module(x)
        e = xp.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def backward(self, dy, y):
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


# -- functions whose derivative needs their input x ------------------------------------


class _LeakyReLU(Function):
    """x for x >= 0, negative_slope * x below (the derivative at 0 is 1, as JAX's)."""

    name = "leaky_relu"
    needs_input = True

    def __init__(self, negative_slope=0.2):
        self.negative_slope = _number(negative_slope, "leaky_relu negative_slope", minimum=0)

    def forward(self, x, inplace=False):
        xp = backend.get_array_module(x)
        return xp.maximum(x, 0) + self.negative_slope * xp.minimum(x, 0)

    def backward(self, dy, x):
        return dy * (x >= 0) + (dy * self.negative_slope) * (x < 0)

    def get_config(self):
        return {"negative_slope": self.negative_slope}


class _ELU(Function):
    """x for x > 0, alpha * (exp(x) - 1) below; expm1 keeps the digits near 0."""

    name = "elu"
    needs_input = True

    def __init__(self, alpha=1.0):
        self.alpha = _number(alpha, "elu alpha")

    def forward(self, x, inplace=False):
        xp = backend.get_array_module(x)
        return xp.maximum(x, 0) + self.alpha * xp.expm1(xp.minimum(x, 0))

    def backward(self, dy, x):
        xp = backend.get_array_module(dy)
        return dy * ((x > 0) + self.alpha * xp.exp(xp.minimum(x, 0)) * (x <= 0))

    def get_config(self):
        return {"alpha": self.alpha}


class _SELU(_ELU):
    """scale * elu(x, alpha) with the self-normalising constants (JAX's digits)."""

    name = "selu"
    ALPHA = 1.6732632423543772848170429916717
    SCALE = 1.0507009873554804934193349852946

    def __init__(self):
        super().__init__(self.ALPHA)

    def forward(self, x, inplace=False):
        return self.SCALE * super().forward(x)

    def backward(self, dy, x):
        return super().backward(dy * self.SCALE, x)

    def get_config(self):
        return {}


class _GELU(Function):
    """x * Phi(x), Phi the standard normal CDF: exactly 0.5 * erfc(-x / sqrt(2)) (Keras's
    default, approximate=False), or with approximate=True through tanh:
    0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))."""

    name = "gelu"
    needs_input = True
    _C = math.sqrt(2 / math.pi)
    _SQRT_HALF = math.sqrt(0.5)
    _INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)

    def __init__(self, approximate=False):
        if not isinstance(approximate, (bool, np.bool_)):
            raise ValueError(f"gelu approximate must be True or False, got {approximate!r}.")
        self.approximate = bool(approximate)

    def _tanh_term(self, x):
        xp = backend.get_array_module(x)
        return xp.tanh(self._C * (x + 0.044715 * (x * x * x)))

    def forward(self, x, inplace=False):
        if self.approximate:
            return x * (0.5 * (1 + self._tanh_term(x)))
        return 0.5 * x * special.erfc(-x * self._SQRT_HALF)

    def backward(self, dy, x):
        xp = backend.get_array_module(x)
        if self.approximate:
            t = self._tanh_term(x)
            slope = self._C * (1 + 3 * 0.044715 * (x * x))
            return dy * (0.5 * (1 + t) + 0.5 * x * ((1 - t) * (1 + t)) * slope)
        cdf = 0.5 * special.erfc(-x * self._SQRT_HALF)
        pdf = self._INV_SQRT_2PI * xp.exp(-0.5 * (x * x))
        return dy * (cdf + x * pdf)

    def get_config(self):
        return {"approximate": self.approximate}


class _SiLU(Function):
    """x * sigmoid(x) (Keras's silu, also named swish)."""

    name = "silu"
    needs_input = True

    def forward(self, x, inplace=False):
        return x * _sigmoid(x)

    def backward(self, dy, x):
        s, complement = _sigmoid_and_complement(x)
        return dy * (s * (1 + x * complement))


class _HardSiLU(Function):
    """x * hard_sigmoid(x) (Keras's hard_silu, also named hard_swish)."""

    name = "hard_silu"
    needs_input = True

    def forward(self, x, inplace=False):
        return x * (_relu6(x + 3) / 6)

    def backward(self, dy, x):
        a = x + 3
        return dy * (_relu6(a) / 6 + x * ((a > 0) & (a < 6)) / 6)


class _Softplus(Function):
    """log(1 + exp(x)), finite for any x; its derivative is sigmoid(x)."""

    name = "softplus"
    needs_input = True

    def forward(self, x, inplace=False):
        return _softplus(x)

    def backward(self, dy, x):
        return dy * _sigmoid(x)


class _Mish(Function):
    """x * tanh(softplus(x))."""

    name = "mish"
    needs_input = True

    def forward(self, x, inplace=False):
        xp = backend.get_array_module(x)
        return x * xp.tanh(_softplus(x))

    def backward(self, dy, x):
        xp = backend.get_array_module(x)
        t = xp.tanh(_softplus(x))
        return dy * (t + x * ((1 - t) * (1 + t)) * _sigmoid(x))


FUNCTIONS = {
    f.name: f
    for f in (
        _Linear(),
        _ReLU(),
        _ReLU6(),
        _LeakyReLU(),
        _ELU(),
        _SELU(),
        _GELU(),
        _Sigmoid(),
        _HardSigmoid(),
        _SiLU(),
        _HardSiLU(),
        _Softplus(),
        _Mish(),
        _Tanh(),
        _Softmax(),
    )
}
FUNCTIONS["swish"] = FUNCTIONS["silu"]  # Keras's aliases
FUNCTIONS["hard_swish"] = FUNCTIONS["hard_silu"]


def _unknown(identifier):
    return ValueError(
        f"Unknown activation {identifier!r}; expected one of {', '.join(FUNCTIONS)} or None "
        '(or a config such as {"name": "gelu", "approximate": True}).'
    )


def get(identifier):
    """The activation Function for a name ('relu', ...), a config {"name": ..., arguments},
    a Function, or None (linear)."""
    if identifier is None:
        return FUNCTIONS["linear"]
    if isinstance(identifier, Function):
        return identifier
    if isinstance(identifier, str) and identifier in FUNCTIONS:
        return FUNCTIONS[identifier]
    if isinstance(identifier, dict) and identifier.get("name") in FUNCTIONS:
        arguments = {k: v for k, v in identifier.items() if k != "name"}
        try:
            return type(FUNCTIONS[identifier["name"]])(**arguments)
        except TypeError:
            takes = ", ".join(FUNCTIONS[identifier["name"]].get_config()) or "no arguments"
            raise ValueError(
                f"Activation {identifier['name']!r} takes {takes}; got {identifier!r}."
            ) from None
    raise _unknown(identifier)


def serialize(function):
    """A Function as saved in a config: its name, or {"name", arguments} when they are not
    the defaults."""
    config, default = function.get_config(), FUNCTIONS.get(function.name)
    if default is not None and config == default.get_config():
        return function.name
    return {"name": function.name, **config}


class Activation(Layer):
    """Applies an activation function: Activation('relu'), Activation('gelu')."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = get(activation)

    def forward(self, x, ctx):
        y = self.activation.forward(x)
        if ctx.for_backward:
            ctx.saved = self.activation.saved_for_backward(x, y)
        return y

    def backward(self, ctx, dy):
        return self.activation.backward(dy, ctx.saved)

    def get_config(self):
        return {**super().get_config(), "activation": serialize(self.activation)}


class _FixedActivation(Activation):
    """An Activation layer whose function is fixed by the class."""

    function = None

    def __init__(self, **kwargs):
        super().__init__(self.function, **kwargs)

    def get_config(self):
        return Layer.get_config(self)


class ReLU(_FixedActivation):
    """max(x, 0)."""

    function = "relu"


class Sigmoid(_FixedActivation):
    """1 / (1 + exp(-x))."""

    function = "sigmoid"


class Tanh(_FixedActivation):
    """tanh(x)."""

    function = "tanh"


class Softmax(_FixedActivation):
    """exp(x) / sum(exp(x)) over the last axis."""

    function = "softmax"


class LeakyReLU(Activation):
    """x for x >= 0, negative_slope * x below; Keras's layer default slope is 0.3 (the
    'leaky_relu' string's is 0.2, as keras.activations.leaky_relu)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(_LeakyReLU(negative_slope), **kwargs)

    @property
    def negative_slope(self):
        return self.activation.negative_slope

    def get_config(self):
        return {**Layer.get_config(self), "negative_slope": self.negative_slope}


class ELU(Activation):
    """x for x > 0, alpha * (exp(x) - 1) below."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(_ELU(alpha), **kwargs)

    @property
    def alpha(self):
        return self.activation.alpha

    def get_config(self):
        return {**Layer.get_config(self), "alpha": self.alpha}


class PReLU(Layer):
    """x for x > 0, alpha * x below, with a trainable alpha of the input's per-sample shape;
    ``shared_axes`` (1-based, the batch axis being 0, as Keras) share one alpha along those
    axes: shared_axes=[1, 2] gives one alpha per channel of an (H, W, C) map.

    The derivative at x = 0 is 0, for the input and for alpha, as Keras's
    relu(x) - alpha * relu(-x) gives it.
    """

    def __init__(
        self,
        alpha_initializer="zeros",
        alpha_regularizer=None,
        alpha_constraint=None,
        shared_axes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        initializers.get(alpha_initializer)  # an unknown name fails here, not at build time
        self.alpha_initializer = alpha_initializer
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        if alpha_constraint is not None:
            raise ValueError(
                f"PReLU alpha_constraint: weight constraints are not supported, "
                f"got {alpha_constraint!r}; pass None."
            )
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not axes or not all(utils.is_int(a) and a >= 1 for a in axes):
                raise ValueError(
                    "PReLU shared_axes must be None, an int or a list of ints >= 1 "
                    f"(axis 0 is the batch), got {shared_axes!r}."
                )
            self.shared_axes = sorted({int(a) for a in axes})

    def compute_output_shape(self, input_shape):
        input_shape = utils.standardize_shape(input_shape)
        if self.shared_axes and self.shared_axes[-1] > len(input_shape):
            raise ValueError(
                f"PReLU {self.name!r}: shared_axes {self.shared_axes} name an axis beyond "
                f"inputs of shape {(None, *input_shape)}."
            )
        return input_shape

    def build(self, input_shape):
        input_shape = super().build(input_shape)
        shape = [
            1 if axis + 1 in (self.shared_axes or ()) else d for axis, d in enumerate(input_shape)
        ]
        self.alpha = self.add_weight(
            "alpha", shape, self.alpha_initializer, regularizer=self.alpha_regularizer
        )

    def forward(self, x, ctx):
        xp = backend.get_array_module(x)
        if ctx.for_backward:
            ctx.x = x
        return xp.maximum(x, 0) + self.alpha * xp.minimum(x, 0)

    def backward(self, ctx, dy):
        xp = backend.get_array_module(dy)
        x = ctx.x
        if ctx.needs_weight_grads:
            axes = (0, *(self.shared_axes or ()))
            ctx.grads["alpha"] = (dy * xp.minimum(x, 0)).sum(axis=axes, keepdims=True)[0]
        if not ctx.needs_input_grad[0]:
            return None
        return dy * ((x > 0) + self.alpha * (x < 0))

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": initializer_config(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
            "alpha_constraint": None,
            "shared_axes": self.shared_axes,
        }
