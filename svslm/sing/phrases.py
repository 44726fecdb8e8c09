"""Long scores: cut into phrases inside rests, synthesized one by one, joined without clicks.

The LM was trained on utterances of a few seconds to 30 s, so a song is sung phrase by phrase.
Cuts are made at frame boundaries in the middle of silences (SP, never inside a breath AP,
which is sound). Phrase k is synthesized `overlap` frames past its cut, inside the same silence,
and the next phrase starts at the cut; the overlap is crossfaded (complementary sin²/cos²
gains). Because each phrase keeps its frames exactly, the joined audio has the whole score's
frame count and every note stays where the score puts it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from svslm.data.phonemes import REST
from svslm.tokenize.svs_lb import seconds_to_frame
from svslm.utils.audio import FRAME_RATE, HOP_LENGTH

log = logging.getLogger(__name__)



@dataclass
class Phrase:
    start: int  # first frame of the phrase in the song
    end: int  # frame after its last, overlap into the next phrase's silence included
    phones: list[dict]  # score.json phones of [start, end), times from the phrase's start (whole frames)

    @property
    def n_frames(self) -> int:
        return self.end - self.start


def _cut_points(phones: list[dict], bounds: list[tuple[int, int]], overlap: int) -> list[int]:
    """Frames where a phrase may end: inside a silence between sung phones (a leading or trailing
    one would make a phrase of silence), leaving a frame of it on each side of the overlap."""
    cuts = []
    for p, (a, b) in list(zip(phones, bounds))[1:-1]:
        if p["phn"] == REST and b - a >= overlap + 2:
            cuts.append(a + (b - a - overlap) // 2)
    return cuts


def split_phrases(phones: list[dict], max_seconds: float, overlap: int) -> list[Phrase]:
    """Phrases of at most `max_seconds` (overlap included) covering a score's frames.

    Greedy: each phrase ends at the last possible cut that keeps it short enough. A stretch
    with no silence to cut in that is longer than `max_seconds` becomes one longer phrase, with
    a warning (the model may sing it worse, but no note is lost).
    """
    bounds, start = [], 0
    for p in phones:
        end = seconds_to_frame(p["end"])
        bounds.append((start, end))
        start = end
    total, max_frames = start, int(max_seconds * FRAME_RATE)
    cuts = _cut_points(phones, bounds, overlap)
    ranges, a = [], 0
    while total - a > max_frames:
        fitting = [c for c in cuts if a < c and c + overlap - a <= max_frames]
        later = [c for c in cuts if c > a]
        if not fitting and not later:
            break
        cut = fitting[-1] if fitting else later[0]
        if not fitting:
            log.warning("no silence to cut in between %.2f s and %.2f s: a phrase of %.2f s (max %.2f s)",
                        a / FRAME_RATE, (a + max_frames) / FRAME_RATE, (cut + overlap - a) / FRAME_RATE, max_seconds)
        ranges.append((a, cut + overlap))
        a = cut
    ranges.append((a, total))
    if total - a > max_frames:
        log.warning("the last %.2f s have no silence to cut in (max phrase %.2f s)", (total - a) / FRAME_RATE, max_seconds)
    return [Phrase(s, e, _phrase_phones(phones, bounds, s, e)) for s, e in ranges]


def _phrase_phones(phones: list[dict], bounds: list[tuple[int, int]], start: int, end: int) -> list[dict]:
    """The phones overlapping frames [start, end), clipped to them, timed from `start` in whole frames."""
    out = []
    for p, (a, b) in zip(phones, bounds):
        a, b = max(a, start), min(b, end)
        if b > a or (a == b and start <= a < end):
            out.append({**p, "start": (a - start) / FRAME_RATE, "end": (b - start) / FRAME_RATE})
    return out


def join_phrases(phrases: list[Phrase], wavs: list[np.ndarray], overlap: int) -> np.ndarray:
    """The song's waveform [total frames * 320] from each phrase's [n_frames * 320] waveform."""
    total = phrases[-1].end
    out = np.zeros(total * HOP_LENGTH, dtype=np.float32)
    n_fade = overlap * HOP_LENGTH
    ramp = np.sin(0.5 * np.pi * (np.arange(n_fade) + 0.5) / n_fade) ** 2 if n_fade else np.zeros(0)  # 0 -> 1
    for k, (phrase, wav) in enumerate(zip(phrases, wavs)):
        if len(wav) != phrase.n_frames * HOP_LENGTH:
            raise ValueError(f"phrase {k}: {len(wav)} samples synthesized for {phrase.n_frames} frames")
        wav = np.asarray(wav, dtype=np.float32).copy()
        if k > 0 and n_fade:
            wav[:n_fade] *= ramp
        if k < len(phrases) - 1 and n_fade:
            wav[-n_fade:] *= 1.0 - ramp
        out[phrase.start * HOP_LENGTH : phrase.end * HOP_LENGTH] += wav
    return out
