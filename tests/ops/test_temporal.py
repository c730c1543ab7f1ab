"""bgkit.ops.temporal: the moving average with a motion gate, and hysteresis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bgkit
from bgkit import EffectSettings
from bgkit.core.segmentation import Segmentation
from bgkit.ops.temporal import TemporalSmoother, hysteresis_thresholds


def seg_of(probs, threshold=0.7) -> Segmentation:
    return Segmentation.from_probabilities(np.asarray(probs, dtype=np.float32).reshape(1, -1), threshold,
                                           model="m", model_input_size=(3, 1), elapsed_ms=2.0)


def run(smoother: TemporalSmoother, values, threshold=0.7):
    """Feed a one-pixel stream; return (averages, states)."""
    avgs, states = [], []
    for v in values:
        out = smoother.update(seg_of([v], threshold))
        avgs.append(float(out.probabilities[0, 0]))
        states.append(int(out.mask[0, 0]))
    return avgs, states


# -- EMA ---------------------------------------------------------------------------------------


def test_plain_ema_math():
    s = TemporalSmoother(ema=0.5, motion_gate=None, hysteresis=0)
    avgs, _ = run(s, [0.0, 1.0, 1.0, 0.0])
    assert avgs == pytest.approx([0.0, 0.5, 0.75, 0.375])
    s = TemporalSmoother(ema=0.25, motion_gate=None, hysteresis=0)
    p = [0.2, 0.9, 0.4, 0.4, 1.0]
    expected = [p[0]]
    for v in p[1:]:
        expected.append(0.25 * v + 0.75 * expected[-1])
    assert run(s, p)[0] == pytest.approx(expected, abs=1e-6)


def test_ema_one_is_the_identity_and_zero_hysteresis_is_a_plain_threshold():
    rng = np.random.default_rng(0)
    s = TemporalSmoother(ema=1.0, hysteresis=0.0)
    for _ in range(5):
        p = rng.random((4, 6)).astype(np.float32)
        out = s.update(Segmentation.from_probabilities(p, 0.6))
        np.testing.assert_array_equal(out.probabilities, p)
        np.testing.assert_array_equal(out.mask, (p > 0.6).astype(np.uint8))


def test_motion_gate_lets_big_changes_through_and_averages_small_ones():
    s = TemporalSmoother(ema=0.5, motion_gate=0.6, hysteresis=0)
    avgs, _ = run(s, [0.0, 0.1])
    w = 0.5 + 0.5 * 0.1 / 0.6
    assert avgs[1] == pytest.approx(w * 0.1)
    s.reset()
    avgs, states = run(s, [0.0, 1.0])  # a person steps in: no lag
    assert avgs[1] == pytest.approx(1.0) and states == [0, 1]
    s.reset()
    avgs, _ = run(s, [1.0, 0.4])  # a change of exactly the gate passes whole
    assert avgs[1] == pytest.approx(0.4)


# -- hysteresis --------------------------------------------------------------------------------


def test_hysteresis_state_machine():
    s = TemporalSmoother(ema=1.0, threshold_on=0.8, threshold_off=0.3)
    values = [0.5, 0.75, 0.85, 0.5, 0.31, 0.29, 0.7, 0.79, 0.81, 0.3, 0.0]
    expect = [0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0]
    assert run(s, values)[1] == expect


def test_first_frame_passes_through_and_band_follows_the_threshold():
    on, off = hysteresis_thresholds(0.7, 0.6)
    assert (on, off) == pytest.approx((0.88, 0.28))
    assert hysteresis_thresholds(0.5, 0.0) == (0.5, 0.5)
    s = TemporalSmoother(ema=1.0, hysteresis=0.5)
    assert s.thresholds(0.4) == pytest.approx((0.7, 0.2))
    first = seg_of([0.1, 0.5, 0.75, 0.95])
    out = s.update(first)
    np.testing.assert_array_equal(out.mask, first.mask)  # the frame's own mask
    np.testing.assert_array_equal(out.probabilities, first.probabilities)
    out = s.update(seg_of([0.3, 0.8, 0.36, 0.95]))  # band at t=0.7: on 0.85, off 0.35
    assert out.mask.tolist() == [[0, 0, 1, 1]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1, width=32), min_size=2, max_size=12), st.floats(0.05, 1.0), st.floats(0, 0.95),
       st.floats(0.05, 0.95))
def test_mask_always_obeys_the_band(values, ema, hyst, threshold):
    s = TemporalSmoother(ema=ema, hysteresis=hyst, motion_gate=None)
    on, off = s.thresholds(threshold)
    prev = None
    for v in values:
        out = s.update(seg_of([v, 1 - v], threshold))
        p, m = out.probabilities[0], out.mask[0]
        assert np.all(m[p > on] == 1) and np.all(m[p < off] == 0)
        if prev is not None:  # inside the band the state is kept
            band = (p >= off) & (p <= on)
            assert np.all(m[band] == prev[band])
        prev = m.copy()
        assert 0 <= p.min() and p.max() <= 1


# -- state ---------------------------------------------------------------------------------------


def test_reset_and_frame_size_change():
    s = TemporalSmoother(ema=0.5, motion_gate=None)
    s.update(seg_of([1.0, 1.0]))
    assert s.frames == 1 and s.shape == (1, 2)
    out = s.update(Segmentation.from_probabilities(np.zeros((2, 2), np.float32), 0.7))  # new size: afresh
    assert s.shape == (2, 2) and s.frames == 1 and out.probabilities.max() == 0
    s.reset()
    assert s.shape is None and s.frames == 0
    out = s.update(seg_of([0.2, 0.9]))
    assert out.probabilities.tolist() == [[pytest.approx(0.2), pytest.approx(0.9)]]


def test_configure_keeps_the_stream_and_outputs_do_not_alias():
    s = TemporalSmoother(ema=0.5, motion_gate=None, hysteresis=0)
    first = seg_of([0.0])
    a = s.update(first)
    s.configure(ema=1.0)
    b = s.update(seg_of([0.6]))
    assert b.probabilities[0, 0] == pytest.approx(0.6) and s.frames == 2
    a_before = a.probabilities.copy()
    s.configure(ema=0.5)
    s.update(seg_of([1.0]))
    np.testing.assert_array_equal(a.probabilities, a_before)  # earlier results are not views of the state
    assert first.probabilities[0, 0] == 0.0
    assert b.model == "m" and b.threshold == 0.7 and b.model_input_size == (3, 1) and b.elapsed_ms == 2.0
    s.configure(threshold_on=0.9, threshold_off=0.1)
    assert s.thresholds(0.5) == (0.9, 0.1)
    s.configure()  # neither: follow the threshold again
    assert s.thresholds(0.5) == hysteresis_thresholds(0.5, s.hysteresis)


@pytest.mark.parametrize("kwargs, err", [
    (dict(ema=0), ValueError), (dict(ema=1.5), ValueError), (dict(ema="x"), TypeError),
    (dict(hysteresis=1.0), ValueError), (dict(hysteresis=-0.1), ValueError),
    (dict(threshold_on=0.5), ValueError), (dict(threshold_on=0.2, threshold_off=0.6), ValueError),
    (dict(motion_gate=2), ValueError),
])
def test_bad_parameters(kwargs, err):
    with pytest.raises(err):
        TemporalSmoother(**kwargs)


def test_update_takes_a_segmentation():
    with pytest.raises(TypeError, match="Segmentation"):
        TemporalSmoother().update(np.zeros((2, 2)))


@pytest.mark.parametrize("field, value, err", [
    ("temporal_ema", 0.0, ValueError), ("temporal_ema", 1.2, ValueError), ("hysteresis", 1.0, ValueError),
    ("temporal_motion_gate", -0.1, ValueError), ("refine_radius", 0, ValueError), ("refine_eps", 0.0, ValueError),
    ("temporal_smoothing", "yes", TypeError), ("refine_edges", 1, TypeError), ("temporal_ema", "a", TypeError),
])
def test_new_settings_are_validated(field, value, err):
    with pytest.raises(err, match=field):
        EffectSettings(**{field: value})


def test_public_names():
    for name in ("Pipeline", "Stream", "TemporalSmoother", "refine_segmentation", "guided_filter",
                 "process_video", "VideoError"):
        assert name in bgkit.__all__ and hasattr(bgkit, name)


def test_a_new_threshold_applies_at_once():
    """Hysteresis must not keep pixels on after the user raises the threshold slider."""
    from bgkit.core.segmentation import Segmentation
    from bgkit.ops.temporal import TemporalSmoother

    probs = np.full((4, 4), 0.8, np.float32)
    sm = TemporalSmoother()
    assert sm.update(Segmentation.from_probabilities(probs, 0.7)).mask.all()
    assert sm.update(Segmentation.from_probabilities(probs, 0.7)).mask.all()  # held on
    assert not sm.update(Segmentation.from_probabilities(probs, 0.9)).mask.any()  # new threshold: off now
    assert not sm.update(Segmentation.from_probabilities(probs, 0.9)).mask.any()
