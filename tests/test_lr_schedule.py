"""The LR schedule against its closed form, hand-computed values and Keras' ExponentialDecay."""
import math

import keras
import numpy as np
import pytest

from metrabs.training import lr_schedule
from metrabs.training.config import TrainConfig

BASE = 2.121e-4
T = 400_000


def closed_form(step, base, total, frac, r1, jump, r2):
    t0 = frac * total
    if step < t0:
        return base * r1 ** (step / t0)
    return base * jump * r2 ** ((step - t0) / (total - t0))


@pytest.mark.parametrize('preset', list(lr_schedule.PRESETS))
def test_matches_closed_form(preset):
    schedule = lr_schedule.make_schedule(preset, BASE, T)
    p = lr_schedule.PRESETS[preset]
    steps = np.array([0, 1, 1000, 100_000, 367_999, 368_000, 368_001, 390_000, 399_999, 400_000])
    got = np.array([float(schedule(s)) for s in steps])
    want = np.array([closed_form(s, BASE, T, 0.92, p['first_phase_rate'], p['jump'],
                                 p['last_phase_rate']) for s in steps])
    np.testing.assert_allclose(got, want, rtol=2e-5)


def test_reference_landmarks_by_hand():
    schedule = lr_schedule.make_schedule('reference', BASE, T)
    assert float(schedule(0)) == pytest.approx(BASE, rel=1e-6)
    # Just before 92 %: base/3; from 92 % on: base/30 decaying by 0.3 -> base/100 at the end.
    assert float(schedule(367_999)) == pytest.approx(BASE / 3, rel=1e-4)
    assert float(schedule(368_000)) == pytest.approx(BASE / 30, rel=1e-6)
    assert float(schedule(T)) == pytest.approx(BASE / 100, rel=1e-5)
    assert float(schedule(184_000)) == pytest.approx(BASE / math.sqrt(3), rel=1e-5)


def test_constant_then_decay_landmarks_by_hand():
    schedule = lr_schedule.make_schedule('constant_then_decay', BASE, T)
    for s in (0, 1, 200_000, 367_999, 368_000):
        assert float(schedule(s)) == pytest.approx(BASE, rel=1e-6)
    assert float(schedule(384_000)) == pytest.approx(BASE / math.sqrt(3), rel=1e-5)
    assert float(schedule(T)) == pytest.approx(BASE / 3, rel=1e-5)
    # Smooth: monotone non-increasing, no jump at 92 %.
    values = np.array([float(schedule(s)) for s in range(367_990, 368_010)])
    assert np.all(np.diff(values) <= 0)
    assert values[0] - values[-1] < BASE * 1e-3


def test_first_phase_equals_keras_exponential_decay():
    schedule = lr_schedule.make_schedule('reference', BASE, T)
    keras_decay = keras.optimizers.schedules.ExponentialDecay(BASE, 0.92 * T, 1 / 3)
    for s in (0, 5_000, 123_456, 300_000):
        assert float(schedule(s)) == pytest.approx(float(keras_decay(s)), rel=1e-5)


def test_scale_and_config_roundtrip():
    schedule = lr_schedule.make_schedule('reference', BASE, T, scale=0.25)
    assert float(schedule(0)) == pytest.approx(BASE * 0.25, rel=1e-6)
    clone = lr_schedule.TwoPhaseExponentialDecay.from_config(schedule.get_config())
    assert float(clone(390_000)) == pytest.approx(float(schedule(390_000)), rel=1e-7)


def test_bad_arguments():
    with pytest.raises(KeyError, match='nonsense'):
        lr_schedule.make_schedule('nonsense', BASE, T)
    with pytest.raises(ValueError, match='decay_start_fraction'):
        lr_schedule.TwoPhaseExponentialDecay(BASE, T, decay_start_fraction=1.0)
    with pytest.raises(ValueError, match='training_steps'):
        lr_schedule.TwoPhaseExponentialDecay(BASE, 0)


def test_weight_decay_normalisation():
    config = TrainConfig()
    # 3e-3 / sqrt(400k) / 2.121e-4, computed by hand: 3e-3 / 632.4555 / 2.121e-4 = 0.022364
    assert config.keras_weight_decay == pytest.approx(0.022364, rel=1e-5)
    assert TrainConfig(normalize_weight_decay=False).keras_weight_decay == 3e-3
    assert TrainConfig().bn_inference_start_step == 399_000
