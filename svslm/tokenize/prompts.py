"""Speaker prompts: `codec_ssl` frames of another utterance by the same singer.

The choice is a hash of (seed, utterance id) over the singer's other utterances, so it is
deterministic, independent of the order utterances are processed in, and spread over the
singer's material rather than always the same neighbour.
"""
from __future__ import annotations

import hashlib

import numpy as np


def choose_prompts(utt2spk: dict[str, str], seed: int = 0) -> dict[str, str]:
    """utterance -> prompt utterance: the same singer, never itself unless it is the singer's only one."""
    by_speaker: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        by_speaker.setdefault(utt2spk[utt], []).append(utt)
    prompts = {}
    for utt, spk in utt2spk.items():
        others = [u for u in by_speaker[spk] if u != utt] or [utt]
        digest = hashlib.sha256(f"{seed}:{utt}".encode()).digest()
        prompts[utt] = others[int.from_bytes(digest[:8], "little") % len(others)]
    return prompts


def fit_length(frames: np.ndarray, length: int) -> np.ndarray:
    """Tile `frames` [T, S] end to end until `length`, then crop: [length, S]."""
    if len(frames) == 0:
        raise ValueError("cannot make a prompt from an empty utterance")
    repeats = -(-length // len(frames))  # ceil
    return np.tile(frames, (repeats, 1))[:length]
