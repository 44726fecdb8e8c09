"""MCD / F0_RMSE / F0_CORR (VERSA mcd_f0) on signals whose answers are known."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import pyworld
import scipy.signal

from svslm.evaluate.mcd_f0 import McdF0Config, mcd_f0, world_features
from svslm.evaluate.na import MetricUnavailable
from svslm.testing.evaluate import SR, sung_tone

SEMITONE = 2.0 ** (1 / 12)


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    return sung_tone(1.0, f0_hz=220.0)


@pytest.fixture(scope="module")
def resynth(tone):
    """WORLD resynthesis of the tone at its own pitch and one semitone up (same envelope)."""
    x = tone.astype(np.float64)
    f0, t = pyworld.harvest(x, SR, f0_floor=40, f0_ceil=800, frame_period=5)
    sp, ap = pyworld.cheaptrick(x, f0, t, SR), pyworld.d4c(x, f0, t, SR)
    same = pyworld.synthesize(f0, sp, ap, SR, 5)[: x.size]
    up = pyworld.synthesize(f0 * SEMITONE, sp, ap, SR, 5)[: x.size]
    return same, up


@pytest.mark.parametrize("dtw", [False, True])
def test_identical_signals_give_zero_distortion_and_perfect_correlation(tone, dtw):
    out = mcd_f0(tone, tone, McdF0Config(dtw=dtw))
    assert out["MCD"] == pytest.approx(0.0, abs=1e-9)
    assert out["F0_RMSE"] == pytest.approx(0.0, abs=1e-9)
    assert out["F0_CORR"] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.slow
def test_semitone_shift_gives_the_expected_f0_rmse_in_hz(resynth):
    same, up = resynth
    ref_f0 = world_features(same, McdF0Config()).f0
    # Every voiced frame is off by f0 * (2^(1/12) - 1); unvoiced frames count as 0 Hz on both sides.
    expected = np.sqrt(np.mean((ref_f0 * (SEMITONE - 1)) ** 2))
    assert 12.0 < expected < 14.5  # ~220 Hz * 0.0595, a sanity check of the construction
    out = mcd_f0(up, same, McdF0Config(dtw=False))
    assert out["F0_RMSE"] == pytest.approx(expected, rel=0.03)
    assert out["F0_CORR"] > 0.99  # a constant ratio keeps the contour's shape
    out_dtw = mcd_f0(up, same, McdF0Config(dtw=True))
    assert out_dtw["F0_RMSE"] == pytest.approx(expected, rel=0.05)


@pytest.mark.slow
def test_stronger_spectral_change_gives_larger_mcd(tone):
    cfg = McdF0Config()
    mild = scipy.signal.lfilter(*scipy.signal.butter(2, 4000 / (SR / 2)), tone)
    strong = scipy.signal.lfilter(*scipy.signal.butter(4, 1000 / (SR / 2)), tone)
    mcd_mild, mcd_strong = mcd_f0(mild, tone, cfg)["MCD"], mcd_f0(strong, tone, cfg)["MCD"]
    assert 0.5 < mcd_mild < mcd_strong
    # A pure gain change moves only c0, which MCD includes: 6 dB of gain is a known distortion.
    gain = mcd_f0(0.5 * tone, tone, cfg)["MCD"]
    assert gain == pytest.approx(10 / np.log(10) * np.sqrt(2) * np.log(2), rel=0.02)


@pytest.mark.slow
def test_length_mismatch_over_ten_percent_is_na_with_reason(tone):
    out = mcd_f0(tone[: int(0.7 * tone.size)], tone, McdF0Config(dtw=False))
    assert all(isinstance(v, MetricUnavailable) for v in out.values())
    # The reason quotes the lengths' real ratio (70%), and the rule with this pair's value.
    n_ref = len(world_features(tone, McdF0Config()).f0)
    n_hyp = len(world_features(tone[: int(0.7 * tone.size)], McdF0Config()).f0)
    reason = out["MCD"].reason
    assert f"the synthesis has {n_hyp} frames and the reference {n_ref}" in reason
    assert f"{n_hyp / n_ref:.1%} of the reference's length" in reason and n_hyp / n_ref == pytest.approx(0.7, abs=0.01)
    assert f"this pair has {(n_ref - n_hyp) / (n_ref + n_hyp):.1%}" in reason and "under 10%" in reason
    # DTW mode aligns instead of refusing.
    assert isinstance(mcd_f0(tone[: int(0.7 * tone.size)], tone, McdF0Config(dtw=True))["MCD"], float)


def test_silence_has_no_f0_correlation_but_a_reason():
    silence = np.zeros(SR // 2, dtype=np.float32)
    out = mcd_f0(silence, sung_tone(0.5), McdF0Config(dtw=True))
    assert isinstance(out["F0_RMSE"], MetricUnavailable) and "no voiced frame" in out["F0_RMSE"].reason


@pytest.mark.skipif(importlib.util.find_spec("torchcrepe") is not None, reason="torchcrepe is installed here")
def test_crepe_extractor_reports_why_it_is_unavailable(tone):
    with pytest.raises(MetricUnavailable, match="torchcrepe F0 extractor unavailable"):
        mcd_f0(tone, tone, McdF0Config(f0_extractor="crepe"))
