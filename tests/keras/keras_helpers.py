"""One comparison helper for the Keras parity suite, after tinygrad's helper_test_op.

assert_matches_keras(build_keras, build_ours, inputs, rtol, atol) builds the same
stack of layers on both sides, copies one set of random weights into both with
get_weights/set_weights, and compares the forward output, the gradient with
respect to the input and the gradient of every weight. Keras's gradients come
from its own autodiff (jax.grad through model.stateless_call); ours from
model.forward_with_tape(x) then tape.backward(dy), with the same random upstream dy.

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


def assert_matches_keras(build_keras, build_ours, inputs, rtol, atol=None, seed=0, **options):
    """Compare a stack of Keras layers with ours: forward, d/dinput and d/dweights.

    build_keras, build_ours: no-argument callables returning a layer or a list of layers
    inputs: (N, ...) NumPy array in the current floatx
    atol: absolute floor for elements near zero (default rtol * max |Keras value|: a sum
          that nearly cancels, or a tanh derivative (1 - y)(1 + y) taken from a saturated
          y, is accurate relative to the array's scale, not to itself)
    options: training, initial_weights (see assert_models_match)
    """
    x = np.asarray(inputs)
    dtype = backend.floatx()
    assert x.dtype == dtype, f"inputs are {x.dtype}, floatx is {dtype}"
    k_layers = _as_list(build_keras())
    for layer in k_layers:
        # The weights are replaced below; Keras's random initialisers would cost a JAX compile
        # per shape (about half a second each), zeros cost nothing.
        for attr in (
            "kernel_initializer",
            "bias_initializer",
            "depthwise_initializer",
            "pointwise_initializer",
        ):
            if hasattr(layer, attr):
                setattr(layer, attr, keras.initializers.Zeros())
    k_model = keras.Sequential([keras.Input(x.shape[1:], dtype=dtype), *k_layers])
    ours = Sequential(_as_list(build_ours()))
    ours.build(x.shape[1:])
    assert_models_match(k_model, ours, [x], rtol, atol, seed, **options)


def assert_models_match(
    k_model, ours, inputs, rtol, atol=None, seed=0, training=True, initial_weights=None
):
    """The same model in Keras and in xpcnn (one list of inputs for both): one set of random
    weights (or ``initial_weights``) copied into both, then the outputs, the gradients of
    every input and of every trainable weight for the same random upstream gradients, in
    training mode (or inference mode with training=False)."""
    rng = np.random.default_rng(seed)
    dtype = backend.floatx()
    if initial_weights is None:
        initial_weights = random_weights(k_model.get_weights(), rng)
    k_model.set_weights(initial_weights)
    ours.set_weights(k_model.get_weights())
    several = len(k_model.outputs) > 1
    trainable = [v.value for v in k_model.trainable_variables]
    fixed = [v.value for v in k_model.non_trainable_variables]
    xs = [jnp.asarray(x) for x in inputs]

    def keras_forward(weights, xs):
        out = k_model.stateless_call(
            weights, fixed, xs if len(xs) > 1 else xs[0], training=training
        )
        return list(out[0]) if several else [out[0]]

    @jax.jit
    def keras_forward_and_gradients(weights, xs, dys):
        ys, pullback = jax.vjp(keras_forward, weights, xs)
        return ys, pullback(dys)

    # dy is drawn from the output shapes, known without running the model.
    shapes = [s.shape for s in jax.eval_shape(keras_forward, trainable, xs)]
    dys = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    ys_keras, (dw_keras, dxs_keras) = keras_forward_and_gradients(trainable, xs, dys)
    ys_keras = [np.asarray(y) for y in ys_keras]
    assert all(y.dtype == dtype for y in ys_keras), f"Keras computed in {ys_keras[0].dtype}"

    device = [backend.to_device(x) for x in inputs]
    ys, tape = ours.forward_with_tape(device, training=training, input_gradients=True)
    ys = ys if several else [ys]
    weights = ours.trainable_weights
    dxs, dw = tape.backward([backend.to_device(d) for d in dys], weights)
    trained = {id(w) for w in weights}
    names = [name for name, w in ours.params.items() if id(w) in trained]
    assert all(y.dtype == dtype for y in ys), f"ours computed in {ys[0].dtype}"

    def floor(ref):
        return rtol * float(np.abs(ref).max()) if atol is None else atol

    for i, (y, y_keras) in enumerate(zip(ys, ys_keras, strict=True)):
        assert_close(y, y_keras, rtol, floor(y_keras), f"forward {i}", group=f"forward {dtype}")
    grad_group = f"gradients {dtype}"
    for i, (dx, dx_keras) in enumerate(zip(dxs, dxs_keras, strict=True)):
        assert dx.dtype == dtype, f"d/dinput {i} computed in {dx.dtype}"
        what = "d/dinput" if len(dxs) == 1 else f"d/dinput {i}"
        assert_close(dx, np.asarray(dx_keras), rtol, floor(dx_keras), what, group=grad_group)
    assert len(dw) == len(dw_keras), f"{len(dw)} weight gradients, Keras has {len(dw_keras)}"
    for name, g, g_keras in zip(names, dw, dw_keras):
        g_keras = np.asarray(g_keras)
        assert_close(g, g_keras, rtol, floor(g_keras), f"d/d{name}", group=grad_group)


def print_worst_table(write_line):
    write_line("")
    write_line("Keras parity: worst relative difference measured per group")
    for group in (*GROUPS, *sorted(set(WORST) - set(GROUPS))):
        if group in WORST:
            value, where = WORST[group]
            write_line(f"  {group:<40} {value:10.3g}   ({where})")
