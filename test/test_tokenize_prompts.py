"""Speaker prompt choice: same singer, never itself when another exists, deterministic."""
from __future__ import annotations

import numpy as np
import pytest

from svslm.tokenize.prompts import choose_prompts, fit_length


def test_prompts_come_from_another_utterance_of_the_same_singer():
    utt2spk = {f"{s}#{i:03d}": s for s in ("alto", "bass") for i in range(20)} | {"solo#000": "solo"}
    prompts = choose_prompts(utt2spk, seed=0)
    for utt, prompt in prompts.items():
        assert utt2spk[prompt] == utt2spk[utt]
        assert prompt != utt or utt == "solo#000"  # a singer's only utterance prompts itself
    assert len(set(prompts.values())) > 10  # spread over the singers' material, not one neighbour


def test_prompt_choice_is_deterministic_and_order_free():
    utt2spk = {f"a#{i}": "a" for i in range(9)}
    shuffled = dict(reversed(list(utt2spk.items())))
    assert choose_prompts(utt2spk, seed=3) == choose_prompts(shuffled, seed=3)
    assert choose_prompts(utt2spk, seed=3) != choose_prompts(utt2spk, seed=4)


def test_fit_length_tiles_then_crops():
    frames = np.arange(12).reshape(4, 3)
    out = fit_length(frames, 10)
    assert out.shape == (10, 3)
    np.testing.assert_array_equal(out[4:8], frames)
    np.testing.assert_array_equal(out[8:], frames[:2])
    np.testing.assert_array_equal(fit_length(frames, 3), frames[:3])
    with pytest.raises(ValueError, match="empty"):
        fit_length(frames[:0], 5)
