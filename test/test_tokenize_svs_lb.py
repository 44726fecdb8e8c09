"""svs_lb tokens: frame alignment at the token level, the fork's layout, the token list."""
from __future__ import annotations

import pytest

from svslm.tokenize.svs_lb import (
    PLACEHOLDER,
    AlignmentError,
    build_token_list,
    score_to_tokens,
)


def _phones(spec):
    """spec: [(phn, seconds, midi)] -> contiguous score.json phones."""
    out, t = [], 0.0
    for phn, d, midi in spec:
        out.append({"phn": phn, "start": t, "end": t + d, "midi": midi})
        t += d
    return out


# "i" slurs from MIDI 62 to 64. Boundaries at 0.1, 0.172, 0.498, 0.698, 0.798 s -> frames 5, 9, 25, 35, 40.
SCORE = _phones([("SP", 0.1, 0), ("n", 0.072, 62), ("i", 0.326, 62), ("i", 0.2, 64), ("AP", 0.1, 0)])


def test_frame_layout_has_two_tokens_per_audio_frame_and_known_units():
    tokens = score_to_tokens(SCORE, n_frames=40)  # 0.8 s = 40 frames
    assert len(tokens) == 2 * 40
    frames = list(zip(tokens[0::2], tokens[1::2]))
    assert frames[0] == frames[4] == ("svs_SP", "svs_0")
    assert frames[5] == frames[8] == ("svs_n", "svs_62")
    assert frames[9] == frames[24] == ("svs_i", "svs_62")
    assert frames[25] == frames[34] == ("svs_i", "svs_64")  # the slur changes pitch, not phone
    assert frames[35] == frames[39] == ("svs_AP", "svs_0")


def test_frame_layout_follows_the_audio_length_within_the_tolerance():
    assert len(score_to_tokens(SCORE, n_frames=41, max_mismatch=2)) == 82  # last unit repeated
    assert len(score_to_tokens(SCORE, n_frames=38, max_mismatch=2)) == 76  # trimmed
    with pytest.raises(AlignmentError, match="utt7: score has 40 frames but audio has 43"):
        score_to_tokens(SCORE, n_frames=43, max_mismatch=2, where="utt7")


def test_fork_layout_rounds_each_phone_and_separates_phones():
    tokens = score_to_tokens(SCORE, n_frames=40, layout="fork")
    groups = " ".join(tokens).split(f" {PLACEHOLDER} ")
    assert len(groups) == len(SCORE) and PLACEHOLDER not in (tokens[0], tokens[-1])
    counts = [len(g.split()) // 2 for g in groups]
    assert counts == [5, 4, 16, 10, 5]  # floor(d * 50 + 0.5) per phone: 3.6 -> 4, 16.3 -> 16
    assert groups[0].split()[:2] == ["svs_SP", "svs_0"] and groups[3].split()[:2] == ["svs_i", "svs_64"]


def test_bad_scores_are_refused_with_the_utterance():
    with pytest.raises(AlignmentError, match="u1: MIDI pitch 130"):
        score_to_tokens(_phones([("a", 0.2, 130)]), n_frames=10, where="u1")
    with pytest.raises(AlignmentError, match="cannot be a token"):
        score_to_tokens(_phones([("a b", 0.2, 60)]), n_frames=10)


def test_token_list_is_sorted_and_independent_of_reading_order():
    a = build_token_list(["i", "n", "a"])
    assert a == build_token_list({"a", "n", "i", "SP"})
    assert a[:5] == ["svs_AP", "svs_SP", "svs_a", "svs_i", "svs_n"]
    assert a[5:] == [f"svs_{m}" for m in range(128)]
    assert build_token_list(["a"], layout="fork")[-1] == PLACEHOLDER


def test_a_new_score_without_audio_gets_its_own_frame_count():
    assert len(score_to_tokens(SCORE, n_frames=None)) == 2 * 40
