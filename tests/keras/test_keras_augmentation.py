"""The augmentation layers against Keras with the same draw, float32 and float64: forward and
d/dinput (through jax.vjp of Keras's ops).

Keras draws with JAX's generator and we with NumPy's, so the comparison fixes the draw: our
layer draws its parameters (angles, shifts, zooms, flips, contrast factors), Keras builds its
own transform from them with the layer's own matrix code (_compute_affine_matrix,
_get_translation_matrix, _get_zoom_matrix: private, but they are the formulas), and
keras.ops.image.affine_transform or the layer's transform_images applies it. The affine core
is compared alone too, for random transforms, every fill mode and interpolation.
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras_helpers import assert_close
from test_keras_layers import RTOL

from engine import affine
from layers import RandomContrast, RandomFlip, RandomRotation, RandomTranslation, RandomZoom

pytestmark = pytest.mark.keras

GEOMETRIC = [
    (mode, interpolation) for mode in affine.FILL_MODES for interpolation in affine.INTERPOLATIONS
]


def assert_matches(keras_fn, ours_fn, ours_backward, x, rtol, seed=0):
    """keras_fn(x) and its vjp against ours_fn(x) -> (y, kept) and ours_backward(dy, kept)."""
    dtype = x.dtype.name
    y_keras, pullback = jax.vjp(keras_fn, jnp.asarray(x))
    dy = np.random.default_rng(seed).standard_normal(x.shape).astype(dtype)
    (dx_keras,) = pullback(jnp.asarray(dy))
    y, kept = ours_fn(x)
    dx = ours_backward(dy, kept)
    assert y.dtype == dtype and dx.dtype == dtype
    y_keras, dx_keras = np.asarray(y_keras), np.asarray(dx_keras)
    assert y_keras.dtype == dtype
    floor = rtol * float(np.abs(y_keras).max())
    assert_close(y, y_keras, rtol, floor, "forward", group=f"forward {dtype}")
    floor = rtol * float(np.abs(dx_keras).max())
    assert_close(dx, dx_keras, rtol, floor, "d/dinput", group=f"gradients {dtype}")


def with_keras_zeros(transforms):
    """Our (N, 6) transforms as Keras's (N, 8): the projective entries c0, c1 are 0."""
    return np.concatenate([transforms, np.zeros((len(transforms), 2), transforms.dtype)], axis=1)


@pytest.mark.parametrize("fill_mode, interpolation", GEOMETRIC)
def test_affine_core_matches_keras_affine_transform(fill_mode, interpolation, floatx):
    """Rotation, anisotropic scale and shifts of up to a whole image: sampling well outside,
    where reflect and wrap fold the coordinates back several times."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 7, 8, 3)).astype(floatx)
    n = len(x)
    theta = rng.uniform(-np.pi, np.pi, n)
    scale = rng.uniform(0.6, 1.7, (2, n))
    shifts = rng.uniform(-9, 9, (2, n))
    transforms = np.stack(
        [
            scale[0] * np.cos(theta),
            -np.sin(theta),
            shifts[0],
            np.sin(theta),
            scale[1] * np.cos(theta),
            shifts[1],
        ],
        axis=1,
    ).astype(floatx)

    def keras_fn(v):
        return keras.ops.image.affine_transform(
            v, with_keras_zeros(transforms), interpolation, fill_mode, fill_value=0.75
        )

    assert_matches(
        keras_fn,
        lambda v: affine.affine_transform(v, transforms, interpolation, fill_mode, 0.75),
        affine.sample_adjoint,
        x,
        RTOL[floatx],
    )


def keras_rotation(layer, params, height, width):
    n = len(params["angle"])
    zeros, ones = np.zeros(n, params["angle"].dtype), np.ones(n, params["angle"].dtype)
    return layer._compute_affine_matrix(
        center_x=0.5,
        center_y=0.5,
        angle=jnp.asarray(params["angle"]),
        translate_x=zeros,
        translate_y=zeros,
        scale=ones,
        shear_x=zeros,
        shear_y=zeros,
        height=height,
        width=width,
    )


def keras_translation(layer, params, height, width):
    return layer._get_translation_matrix(jnp.asarray(params["translations"]))


def keras_zoom(layer, params, height, width):
    zooms = np.stack([params["width_zoom"], params["height_zoom"]], axis=1)
    return layer._get_zoom_matrix(jnp.asarray(zooms), height, width)


GEOMETRIC_LAYERS = {
    "rotation": (RandomRotation, keras.layers.RandomRotation, (0.4,), keras_rotation),
    "rotation-pair": (RandomRotation, keras.layers.RandomRotation, ((-0.1, 0.3),), keras_rotation),
    "translation": (
        RandomTranslation,
        keras.layers.RandomTranslation,
        (0.5, (-0.3, 0.6)),
        keras_translation,
    ),
    "zoom": (RandomZoom, keras.layers.RandomZoom, ((-0.5, 0.6),), keras_zoom),
    "zoom-two-factors": (RandomZoom, keras.layers.RandomZoom, (0.4, (-0.3, 0.2)), keras_zoom),
}


@pytest.mark.parametrize("fill_mode, interpolation", GEOMETRIC)
@pytest.mark.parametrize("case", sorted(GEOMETRIC_LAYERS))
def test_geometric_layers_with_the_same_draw(case, fill_mode, interpolation, floatx):
    ours_class, keras_class, factors, keras_matrix = GEOMETRIC_LAYERS[case]
    kwargs = {"fill_mode": fill_mode, "interpolation": interpolation, "fill_value": -0.5}
    ours, theirs = ours_class(*factors, **kwargs), keras_class(*factors, **kwargs)
    x = np.random.default_rng(5).standard_normal((5, 9, 7, 2)).astype(floatx)
    params = ours.draw(np.random.default_rng(6), x.shape)
    params = {k: v.astype(floatx) for k, v in params.items()}
    matrix = keras_matrix(theirs, params, 9, 7)
    # Our matrices are Keras's formulas, entry by entry ...
    ours_matrix = ours.transforms(params, 9, 7)
    np.testing.assert_allclose(
        ours_matrix, np.asarray(matrix)[:, :6], rtol=0, atol=1e-13 if floatx == "float64" else 1e-5
    )

    def keras_fn(v):
        return keras.ops.image.affine_transform(
            v, matrix, interpolation, fill_mode, fill_value=-0.5
        )

    # ... and the layer resamples as Keras's affine_transform does with them.
    assert_matches(
        keras_fn, lambda v: ours.augment(v, params), ours.augment_backward, x, RTOL[floatx]
    )


@pytest.mark.parametrize("mode", RandomFlip.MODES)
def test_flip_with_the_same_draw(mode, floatx):
    ours, theirs = RandomFlip(mode), keras.layers.RandomFlip(mode)
    x = np.random.default_rng(7).standard_normal((6, 5, 4, 2)).astype(floatx)
    params = {"flips": np.array([True, False, False, True, True, False])}
    transformation = {"flips": jnp.asarray(params["flips"][:, None, None, None])}
    assert_matches(
        lambda v: theirs.transform_images(v, transformation, training=True),
        lambda v: ours.augment(v, params),
        ours.augment_backward,
        x,
        RTOL[floatx],
    )


@pytest.mark.parametrize(
    "factor, value_range", [(0.5, (0, 255)), ((0.3, 0.7), (0, 1)), (1.0, (-1, 1))], ids=str
)
def test_contrast_with_the_same_draw(factor, value_range, floatx):
    """Per-channel means, the factor, and the clip to value_range (the inputs cross it)."""
    ours = RandomContrast(factor, value_range=value_range)
    theirs = keras.layers.RandomContrast(factor, value_range=value_range)
    assert theirs.factor == ours.factor  # the same range for f, Keras's (0, f) for a number
    low, high = value_range
    span = high - low
    x = np.random.default_rng(8).uniform(low - 0.1 * span, high + 0.1 * span, (4, 6, 5, 3))
    x = x.astype(floatx)
    params = ours.draw(np.random.default_rng(9), x.shape)
    params = {k: v.astype(floatx) for k, v in params.items()}
    transformation = {
        "contrast_factor": jnp.asarray(params["contrast_factor"][:, None, None, None])
    }
    assert_matches(
        lambda v: theirs.transform_images(v, transformation, training=True),
        lambda v: ours.augment(v, params),
        ours.augment_backward,
        x,
        RTOL[floatx],
    )


def test_inference_is_the_identity_on_both_sides(keras_float32):
    x = np.random.default_rng(10).uniform(0, 1, (2, 6, 6, 1)).astype("float32")
    for ours, theirs in [
        (RandomFlip(), keras.layers.RandomFlip()),
        (RandomRotation(0.3), keras.layers.RandomRotation(0.3)),
        (RandomTranslation(0.2, 0.2), keras.layers.RandomTranslation(0.2, 0.2)),
        (RandomZoom(0.2), keras.layers.RandomZoom(0.2)),
        (RandomContrast(0.5, value_range=(0, 1)), keras.layers.RandomContrast(0.5, (0, 1))),
    ]:
        np.testing.assert_array_equal(np.asarray(theirs(x, training=False)), x)
        np.testing.assert_array_equal(ours(x), x)
