"""One comparison helper for the Keras parity suite, after tinygrad's helper_test_op.

assert_matches_keras(build_keras, build_ours, inputs, rtol, atol) builds the same
stack of layers on both sides, copies one set of random weights into both with
get_weights/set_weights, and compares the forward output, the gradient with
respect to the input and the gradient of every weight. Keras's gradients come
from its own autodiff (jax.grad through model.stateless_call); ours from
forward(x, training=True) then backward(dy), with the same random upstream dy.

Every comparison records its worst relative difference in WORST, per group, so
the suite can print what it measured (see print_worst_table).
"""

import os

import jax
import jax.numpy as jnp
import keras
import numpy as np

from engine import Sequential, backend

# group -> (worst relative difference, where it was measured)
WORST = {}
GROUPS = tuple(
    f"{group} {dtype}"
    for group in ("forward", "gradients", "losses", "optimizers", "end to end")
    for dtype in ("float64", "float32")
)


def relative_difference(ours, ref):
    """max |ours - ref| / max(|ref|, 1% of max |ref|): elementwise relative, except that
    elements below 1% of the array's largest are measured against that 1% (a sum that
    nearly cancels is accurate relative to its terms, not to itself)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    if not ref.size:
        return 0.0
    size = np.abs(ref)
    floor = 1e-2 * size.max()
    if floor == 0:
        return float(np.abs(ours - ref).max())
    return float((np.abs(ours - ref) / np.maximum(size, floor)).max())


def record(group, value, what):
    """Keep the largest relative difference seen for a group, with the test that measured it."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].removesuffix(" (call)")
    where = f"{test} {what}".strip()
    if group not in WORST or value > WORST[group][0]:
        WORST[group] = (value, where)


def assert_close(ours, ref, rtol, atol=0.0, what="", group=None):
    """Elementwise |ours - ref| <= atol + rtol * |ref|; on failure, name the worst element."""
    ours_np, ref_np = backend.to_numpy(ours), np.asarray(ref)
    assert ours_np.shape == ref_np.shape, f"{what}: shape {ours_np.shape} != Keras {ref_np.shape}"
    a, b = ours_np.astype(np.float64), ref_np.astype(np.float64)
    finite = np.isfinite(b)
    assert (np.isfinite(a) == finite).all(), f"{what}: non-finite values differ"
    a, b = np.where(finite, a, 0.0), np.where(finite, b, 0.0)  # equal infinities compare equal
    err = np.abs(a - b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nan_to_num(err / (atol + rtol * np.abs(b)), nan=0.0, posinf=np.inf)
    if group is not None:
        record(group, relative_difference(a, b), what)
    if ratio.size and ratio.max() > 1:
        i = np.unravel_index(np.argmax(ratio), ratio.shape)
        rel = err[i] / abs(b[i]) if b[i] else np.inf
        raise AssertionError(
            f"{what}: worst element at index {tuple(int(k) for k in i)}: ours {a[i]!r}, "
            f"Keras {b[i]!r}, |diff| {err[i]:.3g} (relative {rel:.3g}) > "
            f"atol {atol:g} + rtol {rtol:g} * |Keras|; {int((ratio > 1).sum())} of "
            f"{ratio.size} elements out of tolerance, max |diff| {err.max():.3g}"
        )


def _as_list(layers):
    return list(layers) if isinstance(layers, (list, tuple)) else [layers]


def random_weights(weights, rng):
    """Random weights shaped like ``weights``: kernels ~ N(0, 1/fan_in), biases ~ N(0, 0.25).

    Keras initialises biases to zero, which would hide a missing or misplaced bias.
    """
    out = []
    for w in weights:
        fan_in = int(np.prod(w.shape[:-1])) if w.ndim > 1 else 4
        out.append((rng.standard_normal(w.shape) / np.sqrt(fan_in)).astype(w.dtype))
    return out


def assert_matches_keras(build_keras, build_ours, inputs, rtol, atol=None, seed=0):
    """Compare a stack of Keras layers with ours: forward, d/dinput and d/dweights.

    build_keras, build_ours: no-argument callables returning a layer or a list of layers
    inputs: (N, ...) NumPy array in the current floatx
    atol: absolute floor for elements near zero (default rtol * max |Keras value|: a sum
          that nearly cancels, or a tanh derivative (1 - y)(1 + y) taken from a saturated
          y, is accurate relative to the array's scale, not to itself)
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(inputs)
    dtype = backend.floatx()
    assert x.dtype == dtype, f"inputs are {x.dtype}, floatx is {dtype}"
    k_layers = _as_list(build_keras())
    for layer in k_layers:
        # The weights are replaced below; Keras's random initialisers would cost a JAX compile
        # per shape (about half a second each), zeros cost nothing.
        for attr in ("kernel_initializer", "bias_initializer"):
            if hasattr(layer, attr):
                setattr(layer, attr, keras.initializers.Zeros())
    k_model = keras.Sequential([keras.Input(x.shape[1:], dtype=dtype), *k_layers])
    ours = Sequential(_as_list(build_ours()))
    ours.build(x.shape[1:])
    k_model.set_weights(random_weights(k_model.get_weights(), rng))
    ours.set_weights(k_model.get_weights())

    trainable = [v.value for v in k_model.trainable_variables]
    fixed = [v.value for v in k_model.non_trainable_variables]

    def keras_forward(weights, x):
        return k_model.stateless_call(weights, fixed, x, training=True)[0]

    @jax.jit
    def keras_forward_and_gradients(weights, x, dy):
        y, pullback = jax.vjp(keras_forward, weights, x)
        return y, pullback(dy)

    # dy is drawn from the output shape, known without running the model.
    y_shape = jax.eval_shape(keras_forward, trainable, jnp.asarray(x)).shape
    dy = rng.standard_normal(y_shape).astype(dtype)
    y_keras, (dw_keras, dx_keras) = keras_forward_and_gradients(trainable, jnp.asarray(x), dy)
    y_keras, dx_keras = np.asarray(y_keras), np.asarray(dx_keras)
    dw_keras = [np.asarray(g) for g in dw_keras]
    assert y_keras.dtype == dtype, f"Keras computed in {y_keras.dtype}, not {dtype}"

    y = ours.forward(backend.to_device(x), training=True)
    dx = ours.backward(backend.to_device(dy))
    dw = [g for layer in ours.layers for g in layer.grads.values()]
    names = [f"{layer.name}/{k}" for layer in ours.layers for k in layer.grads]
    assert y.dtype == dtype and dx.dtype == dtype, f"ours computed in {y.dtype}/{dx.dtype}"

    def floor(ref):
        return rtol * float(np.abs(ref).max()) if atol is None else atol

    assert_close(y, y_keras, rtol, floor(y_keras), "forward", group=f"forward {dtype}")
    grad_group = f"gradients {dtype}"
    assert_close(dx, dx_keras, rtol, floor(dx_keras), "d/dinput", group=grad_group)
    assert len(dw) == len(dw_keras), f"{len(dw)} weight gradients, Keras has {len(dw_keras)}"
    for name, g, g_keras in zip(names, dw, dw_keras):
        assert_close(g, g_keras, rtol, floor(g_keras), f"d/d{name}", group=grad_group)


def print_worst_table(write_line):
    write_line("")
    write_line("Keras parity: worst relative difference measured per group")
    for group in (*GROUPS, *sorted(set(WORST) - set(GROUPS))):
        if group in WORST:
            value, where = WORST[group]
            write_line(f"  {group:<40} {value:10.3g}   ({where})")
