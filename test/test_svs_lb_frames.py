"""Frame alignment of scores: cumulative rounding keeps the total exact where per-phone drifts."""
from __future__ import annotations

import numpy as np
import pytest

from svslm.tokenize.svs_lb import (
    AlignmentError,
    per_phone_rounded_counts,
    phones_to_frames,
)


def _phones(durations, midis=None):
    out, t = [], 0.0
    for i, d in enumerate(durations):
        out.append({"phn": f"p{i}", "start": t, "end": t + d, "midi": (midis or [60] * len(durations))[i]})
        t += d
    return out


def test_cumulative_rounding_has_no_drift_where_per_phone_rounding_does():
    # 100 phones of 31 ms = 3.1 s = 155 frames; each rounds to 2 frames on its own (1.55 -> 2).
    phones = _phones([0.031] * 100)
    frames, midi = phones_to_frames(phones)
    assert len(frames) == 155 and len(midi) == 155
    assert sum(per_phone_rounded_counts(phones)) == 200  # the fork's drift: 45 frames too many


def test_pitch_and_phone_at_known_frames():
    phones = _phones([0.1, 0.25, 0.05], midis=[0, 62, 64])
    frames, midi = phones_to_frames(phones)
    assert frames[:5] == ["p0"] * 5 and frames[5] == "p1" and frames[-1] == "p2"
    assert midi[0] == 0 and midi[5] == 62 and midi[-1] == 64
    assert len(frames) == 20  # 0.4 s


def test_every_boundary_within_half_a_frame():
    rng = np.random.default_rng(0)
    phones = _phones(list(rng.uniform(0.011, 0.4, size=300)))
    frames, _ = phones_to_frames(phones)
    boundaries = [i for i in range(1, len(frames)) if frames[i] != frames[i - 1]]
    for b, p in zip(boundaries, [p for p in phones[:-1] if round(p["end"] * 50) != round(p["start"] * 50)]):
        assert abs(b - p["end"] * 50) <= 0.5 + 1e-9


def test_matching_audio_length_trims_or_extends_by_one():
    phones = _phones([0.5, 0.5])  # 50 frames
    assert len(phones_to_frames(phones, n_frames=49)[0]) == 49
    frames, _ = phones_to_frames(phones, n_frames=51)
    assert len(frames) == 51 and frames[-1] == "p1"
    with pytest.raises(AlignmentError, match="50 frames but audio has 53"):
        phones_to_frames(phones, n_frames=53, where="utt1")


def test_bad_scores_are_refused():
    with pytest.raises(AlignmentError, match="no phones"):
        phones_to_frames([])
    bad = _phones([0.1, 0.1])
    bad[1]["end"] = 0.0
    with pytest.raises(AlignmentError, match="phone 1"):
        phones_to_frames(bad)
