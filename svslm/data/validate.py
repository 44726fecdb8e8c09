"""Checks of one utterance's score and label, and fitting them to the audio's length.

Every check returns problems as short sentences; the caller prefixes the place in the corpus
and the utterance id, and collects the problems of all utterances before deciding to fail.
"""
from __future__ import annotations

import dataclasses

from svslm.data.phonemes import is_final, is_initial, is_phoneme, is_rest
from svslm.data.utterance import Note, Phone, Utterance

MAX_PROBLEMS_PER_UTT = 12  # beyond this an utterance is plainly broken; the rest are counted
TIME_DECIMALS = 4  # times are rounded to 0.1 ms so that `label` and `score.json` agree exactly


@dataclasses.dataclass
class Tolerances:
    contiguity: float = 0.001  # s: largest gap or overlap between consecutive phones
    note_phone: float = 0.02  # s: largest distance between a note boundary and its phones'
    label_audio: float = 0.1  # s: largest difference between the label's end and the audio's


def _fmt(t: float) -> str:
    return f"{t:.4f}".rstrip("0").rstrip(".") if t else "0"


def check_score(utt: Utterance, tol: Tolerances) -> list[str]:
    """Problems of the notes and phones of `utt` (empty when it is usable)."""
    problems: list[str] = []
    notes, phones = utt.notes, utt.phones
    if not notes or not phones:
        return [f"no {'notes' if not notes else 'phones'}"]
    for i, n in enumerate(notes):
        name = f"note {i} ({'_'.join(n.phns) or '?'})"
        if not n.end > n.start:
            problems.append(f"{name}: non-positive duration ({_fmt(n.start)}-{_fmt(n.end)} s)")
        if i and n.start < notes[i - 1].end - tol.contiguity:
            problems.append(f"{name} starts at {_fmt(n.start)} s, before note {i - 1} ends ({_fmt(notes[i - 1].end)} s)")
        if not 0 <= n.midi <= 127:
            problems.append(f"{name}: MIDI pitch {n.midi} outside 0..127")
        rest = len(n.phns) == 1 and is_rest(n.phns[0])
        if rest and n.midi != 0:
            problems.append(f"{name}: a rest must have MIDI 0, has {n.midi}")
        if not rest and n.midi == 0 and all(is_phoneme(p) for p in n.phns):
            problems.append(f"{name}: a sung note with MIDI 0")
        if n.slur:
            prev = notes[i - 1] if i else None
            if len(n.phns) != 1 or not is_final(n.phns[0]):
                problems.append(f"{name}: a slur must repeat one final")
            elif prev is None or prev.phns[-1] != n.phns[0]:
                problems.append(f"{name}: slur does not continue the previous note's final")
        elif not rest and all(is_phoneme(p) for p in n.phns):
            syllable_ok = (len(n.phns) == 1 and is_final(n.phns[0])) or (
                len(n.phns) == 2 and is_initial(n.phns[0]) and is_final(n.phns[1])
            )
            if not syllable_ok:
                problems.append(f"{name}: phones are not an initial + final syllable")
    if phones[0].start > tol.contiguity or phones[0].start < -tol.contiguity:
        problems.append(f"first phone starts at {_fmt(phones[0].start)} s, not 0")
    for k, p in enumerate(phones):
        if not is_phoneme(p.phn):
            problems.append(f"unknown phoneme {p.phn!r} (phone {k})")
        if not p.end > p.start:
            problems.append(f"phone {k} ({p.phn}): non-positive duration ({_fmt(p.start)}-{_fmt(p.end)} s)")
        if k:
            gap = p.start - phones[k - 1].end
            if gap < -tol.contiguity:
                problems.append(f"phone {k} ({p.phn}) overlaps phone {k - 1} by {_fmt(-gap)} s")
            elif gap > tol.contiguity:
                problems.append(f"gap of {_fmt(gap)} s before phone {k} ({p.phn})")
    for i, n in enumerate(notes):
        own = [p for p in phones if p.note == i]
        if not own:
            problems.append(f"note {i} has no phones")
            continue
        if abs(own[0].start - n.start) > tol.note_phone or abs(own[-1].end - n.end) > tol.note_phone:
            problems.append(
                f"note {i} ({'_'.join(n.phns)}) spans {_fmt(n.start)}-{_fmt(n.end)} s but its phones "
                f"span {_fmt(own[0].start)}-{_fmt(own[-1].end)} s (tolerance {tol.note_phone} s)"
            )
    if len(problems) > MAX_PROBLEMS_PER_UTT:
        problems = problems[:MAX_PROBLEMS_PER_UTT] + [f"... and {len(problems) - MAX_PROBLEMS_PER_UTT} more"]
    return problems


def normalize_times(utt: Utterance) -> Utterance:
    """A copy of a valid `utt` whose phones tile [0, end] exactly and whose notes span their phones.

    Phone boundaries are rounded to 0.1 ms and made contiguous (each phone starts where the
    previous one ends); each note is snapped to its phones (the check allowed `note_phone`
    tolerance), so `label`, `score.json` and the frame alignment all see the same boundaries.
    """
    phones: list[Phone] = []
    prev_end = 0.0
    for p in utt.phones:
        end = round(p.end, TIME_DECIMALS)
        phones.append(Phone(p.phn, prev_end, end, p.note))
        prev_end = end
    notes: list[Note] = []
    for i, n in enumerate(utt.notes):
        own = [p for p in phones if p.note == i]
        notes.append(dataclasses.replace(n, start=own[0].start, end=own[-1].end, phns=list(n.phns)))
    return dataclasses.replace(utt, notes=notes, phones=phones)


def fit_to_audio(utt: Utterance, audio_seconds: float, tol: Tolerances) -> tuple[Utterance | None, str | None]:
    """Reconcile the label's end with the audio's length.

    Returns (utterance to write, None), or (None, problem). Audio up to `label_audio` longer
    than the label is cut by the caller to the label's end. Audio shorter than the label is
    accepted when the missing part is within `label_audio` or inside the trailing rests
    (ESPnet's segmentation of ACE-Opencpop stops the audio before trailing SP/AP): the rests
    are then shortened, or dropped, to end with the audio.
    """
    end = utt.end
    if audio_seconds >= end:
        if audio_seconds - end > tol.label_audio:
            return None, (
                f"label ends at {_fmt(end)} s but the audio lasts {_fmt(audio_seconds)} s "
                f"(tolerance {tol.label_audio} s)"
            )
        return utt, None
    first_trailing_rest = len(utt.phones)
    while first_trailing_rest > 0 and is_rest(utt.phones[first_trailing_rest - 1].phn):
        first_trailing_rest -= 1
    sung_end = utt.phones[first_trailing_rest - 1].end if first_trailing_rest else 0.0
    if end - audio_seconds <= tol.label_audio or audio_seconds >= sung_end:
        cut = round(audio_seconds, TIME_DECIMALS)
        phones = [dataclasses.replace(p, end=min(p.end, cut)) for p in utt.phones if p.start < cut - 0.005]
        if not phones:
            return None, f"audio ({_fmt(audio_seconds)} s) is shorter than the first phone"
        kept_notes = sorted({p.note for p in phones})
        renumber = {old: new for new, old in enumerate(kept_notes)}
        phones = [dataclasses.replace(p, note=renumber[p.note]) for p in phones]
        notes = [dataclasses.replace(utt.notes[i], end=min(utt.notes[i].end, cut)) for i in kept_notes]
        return dataclasses.replace(utt, notes=notes, phones=phones), None
    return None, (
        f"audio lasts {_fmt(audio_seconds)} s but the label ends at {_fmt(end)} s "
        f"(sung phones end at {_fmt(sung_end)} s; tolerance {tol.label_audio} s)"
    )
