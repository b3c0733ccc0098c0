"""Optimizer updates against steps computed by hand from Keras's formulas."""

import math

import numpy as np
import pytest

from engine import backend
from optim import OPTIMIZERS, SGD, Adagrad, Adam, Adamax, AdamW, Nadam, RMSprop, schedules

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([-0.25, 0.5, 1.0]), np.array([1.0, 0.0, -3.0])]
W0 = np.array([1.0, -2.0, 0.5])


def run(optimizer, steps=3):
    param = backend.to_device(W0.copy())
    for grad in GRADS[:steps]:
        optimizer.apply([backend.to_device(grad)], [param])
    return backend.to_numpy(param)


@pytest.fixture(autouse=True)
def _float64(float64):
    pass


def test_sgd_plain(backend_name):
    expected = W0 - 0.1 * sum(GRADS)
    np.testing.assert_allclose(run(SGD(learning_rate=0.1)), expected, rtol=1e-14)


def test_sgd_momentum(backend_name):
    w, v = W0.copy(), np.zeros(3)
    for g in GRADS:
        v = 0.9 * v - 0.1 * g
        w = w + v
    np.testing.assert_allclose(run(SGD(0.1, momentum=0.9)), w, rtol=1e-14)


def test_sgd_nesterov(backend_name):
    w, v = W0.copy(), np.zeros(3)
    for g in GRADS:
        v = 0.9 * v - 0.1 * g
        w = w + 0.9 * v - 0.1 * g
    np.testing.assert_allclose(run(SGD(0.1, momentum=0.9, nesterov=True)), w, rtol=1e-14)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam(backend_name, amsgrad):
    w, m, v, v_hat = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    for t, g in enumerate(GRADS, start=1):
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        v_hat = np.maximum(v_hat, v)
        w = w - alpha * m / (np.sqrt(v_hat if amsgrad else v) + eps)
    np.testing.assert_allclose(run(Adam(0.01, amsgrad=amsgrad)), w, rtol=1e-14)


def test_adam_first_step_moves_each_weight_by_about_the_learning_rate(backend_name):
    """Adam's first update is lr * g / (|g| + eps) per element: a sign step."""
    np.testing.assert_allclose(run(Adam(0.01), steps=1), W0 - 0.01 * np.sign(GRADS[0]), rtol=1e-6)


@pytest.mark.parametrize(
    "momentum, centered", [(0.0, False), (0.5, False), (0.0, True), (0.5, True)]
)
def test_rmsprop(backend_name, momentum, centered):
    w, vel, mom, avg = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    lr, rho, eps = 0.01, 0.9, 1e-7
    for g in GRADS:
        vel = rho * vel + (1 - rho) * g * g
        avg = rho * avg + (1 - rho) * g
        denominator = vel - avg * avg + eps if centered else vel + eps
        step = lr * g / np.sqrt(denominator)
        mom = momentum * mom + step
        w = w - (mom if momentum else step)
    np.testing.assert_allclose(
        run(RMSprop(0.01, momentum=momentum, centered=centered)), w, rtol=1e-13
    )


def test_adagrad(backend_name):
    w, acc = W0.copy(), np.full(3, 0.1)
    for g in GRADS:
        acc = acc + g * g
        w = w - 0.01 * g / np.sqrt(acc + 1e-7)
    np.testing.assert_allclose(run(Adagrad(0.01)), w, rtol=1e-14)


def test_keras_defaults():
    assert (SGD().learning_rate, SGD().momentum, SGD().nesterov) == (0.01, 0.0, False)
    adam = Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == (
        0.001,
        0.9,
        0.999,
        1e-7,
        False,
    )
    assert (RMSprop().learning_rate, RMSprop().rho, RMSprop().epsilon) == (0.001, 0.9, 1e-7)
    assert (Adagrad().learning_rate, Adagrad().initial_accumulator_value) == (0.001, 0.1)


def test_updates_are_in_place_and_count_iterations(backend_name):
    param = backend.to_device(W0.copy())
    optimizer = Adam()
    optimizer.apply([backend.to_device(GRADS[0])], [param])
    optimizer.apply([backend.to_device(GRADS[1])], [param])
    assert optimizer.iterations == 2
    assert not np.allclose(backend.to_numpy(param), W0)  # the same array object was updated


# -- AdamW, Nadam, Adamax (Keras 3's formulas, by hand) -------------------------------


def test_adamw_decays_then_steps_as_adam(backend_name):
    w, m, v = W0.copy(), np.zeros(3), np.zeros(3)
    lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-7
    for t, g in enumerate(GRADS, start=1):
        w = w - w * wd * lr
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        w = w - alpha * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(run(AdamW(0.01, weight_decay=0.1)), w, rtol=1e-14)
    assert AdamW().weight_decay == 0.004


def test_nadam(backend_name):
    w, m, v, u_product = W0.copy(), np.zeros(3), np.zeros(3), 1.0
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    for t, g in enumerate(GRADS, start=1):
        u_t, u_next = b1 * (1 - 0.5 * 0.96**t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product *= u_t
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
        w = w - lr * m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(run(Nadam(0.01)), w, rtol=1e-13)


def test_nadam_momentum_schedule_follows_the_step_count():
    """After a snapshot restore or a load, the product U_t comes from iterations alone."""
    a, b = Nadam(0.01), Nadam(0.01)
    pa, pb = backend.to_device(W0.copy()), backend.to_device(W0.copy())
    for g in GRADS:
        a.apply([backend.to_device(g)], [pa])
    b.apply([backend.to_device(GRADS[0])], [pb])
    b.iterations = 0  # as a restore would set it: the next step is step 1 again
    pb[...] = backend.to_device(W0)
    b.slots = None
    for g in GRADS:
        b.apply([backend.to_device(g)], [pb])
    np.testing.assert_array_equal(backend.to_numpy(pa), backend.to_numpy(pb))


def test_adamax(backend_name):
    w, m, u = W0.copy(), np.zeros(3), np.zeros(3)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    for t, g in enumerate(GRADS, start=1):
        m = m + (g - m) * (1 - b1)
        u = np.maximum(b2 * u, np.abs(g))
        w = w - lr * m / ((1 - b1**t) * (u + eps))
    np.testing.assert_allclose(run(Adamax(0.01)), w, rtol=1e-14)


def test_new_optimizers_have_keras_defaults():
    for cls in (Nadam, Adamax):
        opt = cls()
        assert (opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert AdamW().get_config()["weight_decay"] == 0.004


# -- clipping and weight decay on every optimizer ------------------------------------------


def test_weight_decay_comes_before_the_update(backend_name):
    w = W0.copy()
    for g in GRADS:
        w = w - w * 0.5 * 0.1  # decay with the step's learning rate
        w = w - 0.1 * g
    np.testing.assert_allclose(run(SGD(0.1, weight_decay=0.5)), w, rtol=1e-14)


def test_clipnorm_clips_each_gradient_to_that_norm(backend_name):
    w = W0.copy()
    for g in GRADS:
        w = w - 0.1 * g * 1.0 / max(np.linalg.norm(g), 1.0)
    np.testing.assert_allclose(run(SGD(0.1, clipnorm=1.0)), w, rtol=1e-14)


def test_clipvalue_clips_elementwise(backend_name):
    w = W0.copy()
    for g in GRADS:
        w = w - 0.1 * np.clip(g, -0.75, 0.75)
    np.testing.assert_allclose(run(SGD(0.1, clipvalue=0.75)), w, rtol=1e-14)


def test_global_clipnorm_scales_all_gradients_together(backend_name):
    a, b = backend.to_device(W0.copy()), backend.to_device(2 * W0)
    ga, gb = np.array([3.0, 0.0, 0.0]), np.array([0.0, 4.0, 0.0])  # global norm 5
    SGD(1.0, global_clipnorm=2.5).apply([backend.to_device(ga), backend.to_device(gb)], [a, b])
    np.testing.assert_allclose(backend.to_numpy(a), W0 - ga / 2, rtol=1e-14)
    np.testing.assert_allclose(backend.to_numpy(b), 2 * W0 - gb / 2, rtol=1e-14)


def test_zero_gradients_stay_zero_when_clipped(backend_name):
    for kwargs in ({"clipnorm": 1.0}, {"global_clipnorm": 1.0}):
        param = backend.to_device(W0.copy())
        SGD(0.1, **kwargs).apply([backend.to_device(np.zeros(3))], [param])
        np.testing.assert_array_equal(backend.to_numpy(param), W0)


def test_clipping_keeps_float32():
    for kwargs in ({"clipnorm": 0.5}, {"global_clipnorm": 0.5}, {"clipvalue": 0.5}):
        param = np.ones(3, np.float32)
        Adam(0.1, weight_decay=0.1, **kwargs).apply([np.full(3, 2.0, np.float32)], [param])
        assert param.dtype == np.float32
        assert Adam(**kwargs)._clipped([np.full(3, 2.0, np.float32)])[0].dtype == np.float32


def test_adam_flat_path_with_weight_decay_and_clipping_equals_the_plain_path():
    """The flat NumPy step and the per-parameter one (used on the GPU) agree bit for bit."""
    shapes = [(4, 3), (3,)]
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(3)]
    results = []
    for flat in (True, False):
        opt = AdamW(0.01, weight_decay=0.1, clipnorm=0.5)
        params = [np.ones(s) for s in shapes]
        opt.build(params)
        if not flat:
            opt._flat = None
        for g in grads:
            opt.apply(g, params)
        assert (opt._flat is not None) == flat
        results.append(params)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# -- the learning rate: read, set, schedules ------------------------------------------------


def test_learning_rate_can_be_read_and_set_between_steps(backend_name):
    opt = SGD(0.1)
    param = backend.to_device(W0.copy())
    opt.apply([backend.to_device(GRADS[0])], [param])
    opt.learning_rate = 0.01
    assert opt.learning_rate == 0.01
    opt.apply([backend.to_device(GRADS[1])], [param])
    expected = W0 - 0.1 * GRADS[0] - 0.01 * GRADS[1]
    np.testing.assert_allclose(backend.to_numpy(param), expected, rtol=1e-14)


def test_a_schedule_gives_each_step_its_rate(backend_name):
    schedule = schedules.PiecewiseConstantDecay([0, 1], [0.1, 0.01, 0.001])
    opt = SGD(schedule)
    assert opt.learning_rate == 0.1
    expected = W0 - 0.1 * GRADS[0] - 0.01 * GRADS[1] - 0.001 * GRADS[2]
    np.testing.assert_allclose(run(opt), expected, rtol=1e-14)
    assert opt.learning_rate == 0.001


def test_a_schedule_is_not_replaced_by_a_number():
    opt = SGD(schedules.ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        opt.learning_rate = 0.01
    opt.learning_rate = schedules.InverseTimeDecay(0.1, 10, 0.5)  # a schedule may be
    assert isinstance(opt.get_config()["learning_rate"], dict)


COS_1 = 0.5 * (1 + math.cos(math.pi / 8))  # the cosine factor one step into 8


@pytest.mark.parametrize(
    "schedule, steps, expected",
    [
        (schedules.ExponentialDecay(0.1, 4, 0.5), [0, 1, 8], [0.1, 0.1 * 0.5**0.25, 0.025]),
        (schedules.ExponentialDecay(0.1, 4, 0.5, staircase=True), [0, 3, 8], [0.1, 0.1, 0.025]),
        (schedules.PiecewiseConstantDecay([1, 4], [1.0, 0.5, 0.1]), [1, 2, 5], [1.0, 0.5, 0.1]),
        (schedules.InverseTimeDecay(0.1, 4, 2.0), [0, 1, 8], [0.1, 0.1 / 1.5, 0.1 / 5]),
        (schedules.InverseTimeDecay(0.1, 4, 2.0, staircase=True), [3, 4], [0.1, 0.1 / 3]),
        (schedules.CosineDecay(0.1, 8), [0, 1, 4, 8, 100], [0.1, 0.1 * COS_1, 0.05, 0, 0]),
        (schedules.CosineDecay(0.1, 8, alpha=0.5), [1, 100], [0.1 * (0.5 * COS_1 + 0.5), 0.05]),
        (
            schedules.CosineDecay(0.0, 8, warmup_target=0.2, warmup_steps=4),
            [0, 1, 2, 4, 5, 8, 12, 50],  # warm-up, then the decay of 0.2 from step 4
            [0.0, 0.05, 0.1, 0.2, 0.2 * COS_1, 0.1, 0, 0],
        ),
    ],
    ids=["exp", "exp-stair", "piecewise", "inverse", "inverse-stair", "cos", "cos-alpha", "warm"],
)
def test_schedule_values_by_hand(schedule, steps, expected):
    assert [schedule(s) for s in steps] == pytest.approx(expected, rel=1e-14, abs=1e-17)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: schedules.ExponentialDecay(0.1, 0, 0.5), ["decay_steps", "positive", "0"]),
        (lambda: schedules.ExponentialDecay(-0.1, 10, 0.5), ["initial_learning_rate", "-0.1"]),
        (lambda: schedules.InverseTimeDecay(0.1, 10, float("nan")), ["decay_rate", "nan"]),
        (lambda: schedules.CosineDecay(0.1, 10, alpha=2), ["alpha", "[0, 1]", "2"]),
        (lambda: schedules.CosineDecay(0.1, 10, warmup_steps=-1), ["warmup_steps", "-1"]),
        (lambda: schedules.PiecewiseConstantDecay([1, 2], [0.1]), ["one more value", "2", "1"]),
        (lambda: schedules.PiecewiseConstantDecay([3, 2], [1, 2, 3]), ["increase", "[3, 2]"]),
        (lambda: schedules.PiecewiseConstantDecay(5, [1, 2]), ["lists", "boundaries=5"]),
        (
            lambda: schedules.deserialize({"class_name": "Evil", "config": {}}),
            ["'Evil'", "CosineDecay"],
        ),
    ],
)
def test_bad_schedule_arguments_are_refused(make, words):
    with pytest.raises((ValueError, TypeError)) as excinfo:
        make()
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: SGD(clipnorm=0), ["clipnorm", "positive", "0"]),
        (lambda: Adam(clipvalue=-1.0), ["clipvalue", "-1.0"]),
        (lambda: RMSprop(global_clipnorm=float("inf")), ["global_clipnorm", "inf"]),
        (lambda: Adagrad(weight_decay=-0.1), ["weight_decay", "-0.1"]),
        (lambda: Nadam(clipnorm=1.0, clipvalue=1.0), ["Only one", "clipnorm=1.0", "clipvalue=1.0"]),
        (lambda: AdamW(weight_decay=None), ["weight_decay", "None"]),
        (lambda: Adamax(beta_1=1.0), ["beta_1", "[0, 1)"]),
        (lambda: Nadam(epsilon=-1), ["epsilon", "-1"]),
        (lambda: SGD(learning_rate="fast"), ["learning_rate", "'fast'"]),
        (lambda: SGD(momentun=0.9), ["momentun"]),
    ],
)
def test_bad_optimizer_arguments_are_refused(make, words):
    with pytest.raises((ValueError, TypeError)) as excinfo:
        make()
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_config_round_trip(name):
    schedule = schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=5)
    opt = OPTIMIZERS[name](learning_rate=schedule, clipnorm=1.0)
    again = type(opt).from_config(opt.get_config())
    assert again.get_config() == opt.get_config()
    assert isinstance(again.learning_rate, float) and again.learning_rate == schedule(0)


# -- saving: optimizers and schedules in model files -----------------------------------------


def _trained_pair(make_optimizer, tmp_path):
    """(a model fit 2 epochs straight, one fit 1 epoch, saved, loaded and fit 1 more)."""
    from engine import Sequential, load_model, utils
    from layers import Dense

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((24, 4)).astype("float32"), rng.integers(0, 3, 24)

    def model():
        utils.set_random_seed(0)
        m = Sequential([Dense(3, input_shape=(4,))])
        m.compile(make_optimizer(), "sparse_categorical_crossentropy")
        return m

    straight = model()
    straight.fit(x, y, batch_size=8, epochs=2, seed=1, verbose=0)
    first = model()
    first.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    first.save(tmp_path / "m.npz")
    resumed = load_model(tmp_path / "m.npz")
    resumed.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, seed=1, verbose=0)
    return straight, resumed


SAVED = {
    name: (lambda cls=cls: cls(schedules.ExponentialDecay(0.01, 2, 0.5), clipnorm=1.0))
    for name, cls in OPTIMIZERS.items()
}
SAVED["adamw-cosine-warmup"] = lambda: AdamW(
    schedules.CosineDecay(0.0, 4, warmup_target=0.02, warmup_steps=2), global_clipnorm=0.5
)
SAVED["sgd-piecewise"] = lambda: SGD(
    schedules.PiecewiseConstantDecay([2, 4], [0.1, 0.05, 0.01]), momentum=0.9, clipvalue=0.1
)
SAVED["nadam-inverse"] = lambda: Nadam(schedules.InverseTimeDecay(0.01, 1, 0.5), weight_decay=0.1)


@pytest.mark.parametrize("name", sorted(SAVED))
def test_a_saved_optimizer_and_its_schedule_resume_bit_for_bit(name, tmp_path):
    straight, resumed = _trained_pair(SAVED[name], tmp_path)
    assert type(resumed.optimizer) is type(straight.optimizer)
    assert resumed.optimizer.get_config() == straight.optimizer.get_config()
    assert resumed.optimizer.iterations == straight.optimizer.iterations == 6
    assert resumed.optimizer.learning_rate == straight.optimizer.learning_rate
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_file_naming_an_unknown_schedule_is_refused(tmp_path):
    import json
    import zipfile

    from engine import WeightFileError, load_model

    straight, _ = _trained_pair(SAVED["sgd"], tmp_path)
    straight.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as arrays:
        contents = {k: arrays[k] for k in arrays.files}
    config = json.loads(bytes(contents["__config__"]).decode())
    config["compile"]["optimizer"]["config"]["learning_rate"]["class_name"] = "Evil"
    contents["__config__"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    np.savez(tmp_path / "bad.npz", **contents)
    assert zipfile.is_zipfile(tmp_path / "bad.npz")
    with pytest.raises(WeightFileError, match="Unknown learning-rate schedule 'Evil'"):
        load_model(tmp_path / "bad.npz")


def test_the_keras_namespace_has_the_optimizers_and_schedules():
    import engine
    import optim

    assert engine.optimizers.schedules.CosineDecay is optim.schedules.CosineDecay
    assert engine.optimizers.AdamW is AdamW and engine.optimizers.get("nadam").__class__ is Nadam
