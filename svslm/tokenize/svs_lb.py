"""Score -> frame-level (phoneme, pitch) units at the LM frame rate.

One unit per frame (20 ms at 50 fps). A phone's duration becomes its repeat count. We round the
cumulative boundaries, not each duration: rounding each duration on its own (the paper's fork,
floor(d + 0.5) per phone) lets the error grow with the number of phones, so that a 20 s phrase
can end several frames away from its audio; rounding boundaries keeps every phone within half a
frame of its true place and the total equal to round(end * fps).
"""
from __future__ import annotations

import math

import numpy as np

FRAME_RATE = 50  # frames per second: codec hop 320 at 16 kHz


class AlignmentError(ValueError):
    """A score whose frame count cannot be made to match the audio."""


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def phones_to_frames(
    phones: list[dict],
    n_frames: int | None = None,
    fps: float = FRAME_RATE,
    max_mismatch: int = 1,
    where: str = "score",
) -> tuple[list[str], np.ndarray]:
    """Per-frame phones and MIDI pitches of `phones` (score.json `phones` entries).

    `n_frames`: the audio's frame count; the score is trimmed at its end, or its last unit
    repeated, to match, and a difference over `max_mismatch` frames is an AlignmentError.
    Returns (phone per frame, int64 MIDI per frame; rests are 0).
    """
    if not phones:
        raise AlignmentError(f"{where}: no phones")
    frame_phones: list[str] = []
    frame_midi: list[int] = []
    start_frame = _round_half_up(phones[0]["start"] * fps)
    if start_frame != 0:
        raise AlignmentError(f"{where}: first phone starts at {phones[0]['start']} s, not 0")
    for i, p in enumerate(phones):
        end_frame = _round_half_up(p["end"] * fps)
        count = end_frame - start_frame  # may be 0 for a phone shorter than a frame
        if count < 0:
            raise AlignmentError(f"{where}: phone {i} ({p['phn']}) ends before it starts")
        frame_phones.extend([p["phn"]] * count)
        frame_midi.extend([int(p["midi"])] * count)
        start_frame = end_frame
    if n_frames is not None:
        diff = len(frame_phones) - n_frames
        if abs(diff) > max_mismatch:
            raise AlignmentError(
                f"{where}: score has {len(frame_phones)} frames but audio has {n_frames} "
                f"(more than {max_mismatch} apart)"
            )
        if diff > 0:
            del frame_phones[n_frames:], frame_midi[n_frames:]
        elif diff < 0:
            frame_phones.extend([frame_phones[-1]] * -diff)
            frame_midi.extend([frame_midi[-1]] * -diff)
    return frame_phones, np.asarray(frame_midi, dtype=np.int64)


def per_phone_rounded_counts(phones: list[dict], fps: float = FRAME_RATE) -> list[int]:
    """The paper's fork: each phone rounded on its own, floor(d * fps + 0.5). Kept for the
    `fork` layout, which must match checkpoints fine-tuned by that code."""
    return [_round_half_up((p["end"] - p["start"]) * fps) for p in phones]
