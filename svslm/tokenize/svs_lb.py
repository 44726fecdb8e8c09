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

from svslm.utils.audio import FRAME_RATE  # frames per second: codec hop 320 at 16 kHz


class AlignmentError(ValueError):
    """A score whose frame count cannot be made to match the audio."""


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def seconds_to_frame(t: float, fps: float = FRAME_RATE) -> int:
    """The frame boundary nearest to `t` seconds (half up): the one rounding rule every caller
    that cuts a score into frames must share, or its pieces drift from `phones_to_frames`."""
    return _round_half_up(t * fps)


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
    start_frame = seconds_to_frame(phones[0]["start"], fps)
    if start_frame != 0:
        raise AlignmentError(f"{where}: first phone starts at {phones[0]['start']} s, not 0")
    for i, p in enumerate(phones):
        end_frame = seconds_to_frame(p["end"], fps)
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


# ---- tokens ----------------------------------------------------------------------------------
# Token names follow the paper's fork: an `svs_` prefix keeps score tokens apart from the TTS
# vocabulary of the pretrained checkpoint.
PLACEHOLDER = "<svs_placeholder>"  # the fork's separator between phones
REST_PHONES = ("SP", "AP")
N_MIDI = 128


def phone_token(phn: str) -> str:
    return f"svs_{phn}"


def pitch_token(midi: int) -> str:
    return f"svs_{int(midi)}"


def frame_tokens(frame_phones: list[str], frame_midi: np.ndarray) -> list[str]:
    """Default layout: per frame `svs_<phn> svs_<midi>` (2 tokens per frame)."""
    out: list[str] = []
    for phn, midi in zip(frame_phones, frame_midi):
        out += [phone_token(phn), pitch_token(midi)]
    return out


def fork_tokens(phones: list[dict], fps: float = FRAME_RATE) -> list[str]:
    """The fork's layout: each phone's `svs_<phn> svs_<midi>` pair repeated floor(d * fps + 0.5)
    times, `<svs_placeholder>` between phones (none after the last); rests carry MIDI 0."""
    out: list[str] = []
    for i, (p, count) in enumerate(zip(phones, per_phone_rounded_counts(phones, fps))):
        if i:
            out.append(PLACEHOLDER)
        out += [phone_token(p["phn"]), pitch_token(p["midi"])] * count
    return out


def score_to_tokens(
    phones: list[dict],
    n_frames: int | None,
    layout: str = "frame",
    max_mismatch: int = 1,
    where: str = "score",
) -> list[str]:
    """`svs_lb` tokens of a score (training data and new scores alike).

    The score is checked against `n_frames` (the audio's frame count; None for a new score) in
    both layouts, so a score that does not fit its audio is refused whichever layout is written.
    """
    frame_phones, frame_midi = phones_to_frames(phones, n_frames, max_mismatch=max_mismatch, where=where)
    for p in phones:
        if not p["phn"] or any(c.isspace() for c in p["phn"]):
            raise AlignmentError(f"{where}: phone {p['phn']!r} cannot be a token (empty or with spaces)")
        if not 0 <= int(p["midi"]) < N_MIDI:
            raise AlignmentError(f"{where}: MIDI pitch {p['midi']} of phone {p['phn']} outside 0..127")
    if layout == "frame":
        return frame_tokens(frame_phones, frame_midi)
    if layout == "fork":
        return fork_tokens(phones)
    raise ValueError(f"unknown svs_lb layout {layout!r} (frame | fork)")


def build_token_list(phone_inventory: set[str] | list[str], layout: str = "frame") -> list[str]:
    """`svs_<phn>` for the sorted phone inventory (rests always included), then `svs_<midi>` for
    0..127, then the placeholder in the fork layout. Sorting makes the list independent of the
    order the corpus was read in."""
    phones = sorted(set(phone_inventory) | set(REST_PHONES))
    tokens = [phone_token(p) for p in phones] + [pitch_token(m) for m in range(N_MIDI)]
    if layout == "fork":
        tokens.append(PLACEHOLDER)
    return tokens
