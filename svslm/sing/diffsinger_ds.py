"""DiffSinger `.ds` files <-> scores.

A .ds is UTF-8 JSON: a list of sentences (or one sentence). A sentence starts `offset` seconds
into the song and holds space-separated strings: `ph_seq` (phones) and `ph_dur` (their seconds),
`note_seq` (note names such as `C#4`, or `rest`), `note_dur` (their seconds), `note_slur` (1: the
note continues the word before it), and optionally `ph_num` (phones per word), `text` (the words),
`f0_seq` with `f0_timestep` (an F0 curve in Hz). DiffSinger aligns a word's vowel, not its
consonant, with the start of its note: a word is a vowel (or SP/AP) and the consonants that lead
into the next word, so a syllable's initial lies at the end of the note before.

Reading: the phones and their durations are used as written, each sentence at its offset, the
gaps between sentences silence (SP). An initial is sung on the note of the final after it (the
Opencpop convention this model was trained with: a syllable starts with its initial); a final
that spans several notes is cut at their boundaries into a syllable and melisma notes. Rests
that overlap between sentences (the SP padding editors add around each sentence) are trimmed.
`f0_seq` is not read: the model sings the notes' pitch. Phones of DiffSinger's own Mandarin
dictionary (opencpop-extension: `ir`, `i0`, `En`, `E`) and of multilingual voicebanks (`zh/a`)
are read as the Opencpop phones they stand for.

Writing (`svslm sing --write_ds`): one sentence per synthesized phrase, in DiffSinger's layout
(notes start at the vowels), durations on the 20 ms frames that were sung, and the F0 of the
sung audio.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np

from svslm.data.phonemes import REST, RESTS, is_final, is_initial, is_phoneme
from svslm.data.utterance import Note, Phone
from svslm.sing.score import (
    MELISMA,
    ScoreError,
    finish_score,
    phone_problem,
    pitch_problem,
)
from svslm.tokenize.svs_lb import seconds_to_frame
from svslm.utils.audio import FRAME_RATE
from svslm.utils.fileio import atomic_write_json

REST_NOTE = "rest"
LANGUAGE_PREFIX = "zh/"  # phones of a multilingual DiffSinger voicebank carry their language
# opencpop-extension (DiffSinger's Mandarin dictionary) splits four vowels Opencpop writes as one:
# zhi/chi/shi/ri `ir`, zi/ci/si `i0` (Opencpop: `i`), yan `En` (`an`), ye `E` (`e`).
OPENCPOP_EXTENSION = {"ir": "i", "i0": "i", "En": "an", "E": "e"}
SNAP = 0.5 / FRAME_RATE  # s: a note boundary this close to a phone's ends does not cut the phone
_EPS = 1e-6  # s: sums of written seconds closer than this are the same instant
F0_TIMESTEP = 0.005  # s: the F0 curve written with --write_ds
F0_FLOOR, F0_CEIL = 60.0, 1100.0  # Hz: from low male speech to the top of a soprano's range


@dataclass
class _Unit:
    """One note of the score being built and its phones (absolute seconds)."""

    note: Note
    phones: list[list]  # [phn, start, end]

    @property
    def start(self) -> float:
        return self.phones[0][1]

    @property
    def end(self) -> float:
        return self.phones[-1][2]

    @property
    def is_rest(self) -> bool:
        return self.note.midi == 0 and self.note.phns[0] in RESTS

    def move(self, start: float | None = None, end: float | None = None) -> None:
        if start is not None:
            self.phones[0][1] = self.note.start = start
        if end is not None:
            self.phones[-1][2] = self.note.end = end


def note_midi(name: str) -> int:
    """MIDI pitch of a note name (`C4`, `D#4`, `Eb4`, `C4+20` cents, rounded); 0 for `rest`."""
    if name == REST_NOTE:
        return 0
    return round(librosa.note_to_midi(name, round_midi=False))


def _items(sentence: dict, key: str, where: str, problems: list[str], required: bool = True) -> list[str] | None:
    value = sentence.get(key)
    if value is None:
        if required:
            problems.append(f"{where}: no `{key}`")
        return None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(x) for x in value]
    problems.append(f"{where}: `{key}` is a {type(value).__name__}, not a space-separated string")
    return None


def _numbers(items: list[str] | None, key: str, where: str, problems: list[str], convert=float) -> list | None:
    if items is None:
        return None
    out = []
    for k, item in enumerate(items):
        try:
            out.append(convert(item))
        except (ValueError, TypeError, librosa.util.exceptions.ParameterError):
            problems.append(f"{where}: `{key}` item {k} {item!r} is not {'a note name' if convert is note_midi else 'a number'}")
            return None
    return out


def _sentence_units(sentence: dict, k: int, problems: list[str]) -> list[_Unit]:
    """The notes and phones of sentence `k` at their absolute times, Opencpop's way."""
    where = f"sentence {k}"
    n_before = len(problems)
    offset = sentence.get("offset", 0.0)
    if not isinstance(offset, (int, float)) or isinstance(offset, bool) or not math.isfinite(offset):
        problems.append(f"{where}: `offset` {offset!r} is not a number of seconds")
        offset = 0.0
    ph_seq = _items(sentence, "ph_seq", where, problems)
    ph_dur = _numbers(_items(sentence, "ph_dur", where, problems), "ph_dur", where, problems)
    note_midis = _numbers(_items(sentence, "note_seq", where, problems), "note_seq", where, problems, note_midi)
    note_dur = _numbers(_items(sentence, "note_dur", where, problems), "note_dur", where, problems)
    slurs = _numbers(_items(sentence, "note_slur", where, problems, required=False), "note_slur", where, problems, int)
    ph_num = _numbers(_items(sentence, "ph_num", where, problems, required=False), "ph_num", where, problems, int)
    words = _items(sentence, "text", where, problems, required=False)
    if len(problems) > n_before:
        return []
    if not ph_seq or not note_midis:
        problems.append(f"{where}: no {'phones' if not ph_seq else 'notes'}")
        return []
    ph_seq = [OPENCPOP_EXTENSION.get(p.removeprefix(LANGUAGE_PREFIX), p.removeprefix(LANGUAGE_PREFIX)) for p in ph_seq]
    if len(ph_dur) != len(ph_seq):
        problems.append(f"{where}: {len(ph_seq)} phones in `ph_seq` but {len(ph_dur)} durations in `ph_dur`")
    if len(note_dur) != len(note_midis):
        problems.append(f"{where}: {len(note_midis)} notes in `note_seq` but {len(note_dur)} durations in `note_dur`")
    slurs = slurs if slurs is not None else [0] * len(note_midis)
    if len(slurs) != len(note_midis):
        problems.append(f"{where}: {len(note_midis)} notes in `note_seq` but {len(slurs)} flags in `note_slur`")
    if ph_num is not None and sum(ph_num) != len(ph_seq):
        problems.append(f"{where}: `ph_num` counts {sum(ph_num)} phones, `ph_seq` has {len(ph_seq)}")
    for key, durations in (("ph_dur", ph_dur), ("note_dur", note_dur)):
        for i, d in enumerate(durations):
            if not d > 0:
                problems.append(f"{where}: `{key}` item {i} is {d}; a duration must be positive")
    if len(problems) > n_before:
        return []
    if abs(sum(ph_dur) - sum(note_dur)) > 1 / FRAME_RATE:
        problems.append(f"{where}: the phones last {sum(ph_dur):.3f} s (`ph_dur`) but the notes {sum(note_dur):.3f} s (`note_dur`)")
        return []

    phone_ends = (offset + np.cumsum(ph_dur)).tolist()
    phones = list(zip(ph_seq, [float(offset), *phone_ends[:-1]], phone_ends))
    note_bounds = (offset + np.concatenate([[0.0], np.cumsum(note_dur)])).tolist()
    # The word each note sings (`text` names the words, one per note that is not a slur).
    word_of_note = np.cumsum([not s for s in slurs]) - 1
    if words is not None and len(words) != int(word_of_note[-1]) + 1:
        words = None

    def note_at(t: float) -> int | None:
        i = int(np.searchsorted(note_bounds, t, side="right")) - 1
        return i if 0 <= i < len(note_midis) else None

    units: list[_Unit] = []
    i = 0
    while i < len(phones):
        phn, a, b = phones[i]
        place = f"{where}, phone {i} ({phn!r} at {a:.3f} s)"
        if not is_phoneme(phn):
            problems.append(f"{place}: not an Opencpop phone")
            i += 1
            continue
        if phn in RESTS:
            units.append(_Unit(Note(a, b, 0, phn, [phn]), [[phn, a, b]]))
            i += 1
            continue
        initial = None
        if is_initial(phn):
            if i + 1 == len(phones) or not is_final(phones[i + 1][0]):
                problems.append(f"{place}: an initial (consonant) not followed by a final (vowel)")
                i += 1
                continue
            initial = phones[i]
            i += 1
            phn, a, b = phones[i]
            place = f"{where}, phone {i} ({phn!r} at {a:.3f} s)"
        cuts = [t for t in note_bounds if a + SNAP < t < b - SNAP]
        for j, (pa, pb) in enumerate(zip([a, *cuts], [*cuts, b])):
            n = note_at((pa + pb) / 2)
            if n is None:
                problems.append(f"{place}: sung outside the sentence's notes")
                break
            midi = note_midis[n]
            if midi == 0:
                problems.append(f"{place}: a vowel sung over a rest note (note {n})")
                break
            prev = units[-1] if units else None
            continues = (j > 0 or (initial is None and slurs[n] and abs(pa - note_bounds[n]) <= SNAP and prev is not None
                                   and not prev.is_rest and prev.note.phns[-1] == phn and abs(prev.end - pa) <= _EPS))
            if continues:  # a melisma: the same final on the next note
                units.append(_Unit(Note(pa, pb, midi, MELISMA, [phn], slur=True), [[phn, pa, pb]]))
                continue
            syllable = [initial[0], phn] if initial else [phn]
            word = words[word_of_note[n]] if words is not None else None
            lyric = word if word is not None and word not in RESTS else "".join(syllable)
            start = initial[1] if initial else pa
            own = ([[initial[0], initial[1], initial[2]]] if initial else []) + [[phn, pa, pb]]
            units.append(_Unit(Note(start, pb, midi, lyric, syllable), own))
        i += 1
    return units


def _place(units: list[_Unit], sentence: list[_Unit], k: int, problems: list[str]) -> None:
    """Append sentence `k`'s units to the song's, after silence up to its start or trimming the
    rests that overlap (the SP padding around sentences); sung phones must not overlap."""
    sentence = list(sentence)
    while sentence and sentence[0].start < -_EPS:  # before the song's start: only rests may lie there
        first = sentence[0]
        if not first.is_rest:
            problems.append(f"sentence {k}: sung phones start at {first.start:.3f} s, before the song's start")
            return
        if first.end <= _EPS:
            sentence.pop(0)
        else:
            first.move(start=0.0)
    if not sentence:
        return
    start = sentence[0].start
    while units and units[-1].is_rest and units[-1].end > start + _EPS:  # the rests it overlaps end where it starts
        if units[-1].start >= start - _EPS:
            units.pop()
        else:
            units[-1].move(end=start)
    end = units[-1].end if units else 0.0
    while sentence and sentence[0].is_rest and sentence[0].start < end - _EPS:  # or its own rests start later
        if sentence[0].end <= end + _EPS:
            sentence.pop(0)
        else:
            sentence[0].move(start=end)
    if not sentence:
        return
    start = sentence[0].start
    if start < end - _EPS:
        problems.append(f"sentence {k}: starts at {start:.3f} s, {end - start:.3f} s before the sentence before it "
                        "ends, over sung phones")
        return
    if start > end + _EPS:
        sentence.insert(0, _Unit(Note(end, start, 0, REST, [REST]), [[REST, end, start]]))
    for unit in sentence:
        if units and unit.note.phns == [REST] and units[-1].note.phns == [REST]:
            units[-1].move(end=unit.end)  # one silence
        else:
            units.append(unit)


def read_ds(
    path: str | Path,
    key_shift: int = 0,
    tempo_scale: float = 1.0,
    pitch_range: tuple[int, int] | None = None,
    model_phones: set[str] | None = None,
) -> dict:
    """The score.json entry of a .ds file; every problem is raised together as a ScoreError."""
    path = Path(path)
    if tempo_scale <= 0:
        raise ValueError(f"tempo scale must be positive, got {tempo_scale}")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise ScoreError(str(path), [f"not UTF-8 text at byte {err.start} (a .ds file is UTF-8 JSON)"]) from err
    except json.JSONDecodeError as err:
        raise ScoreError(str(path), [f"line {err.lineno}: not readable JSON ({err.msg})"]) from err
    sentences = doc if isinstance(doc, list) else [doc]
    if not sentences or not all(isinstance(s, dict) for s in sentences):
        raise ScoreError(str(path), ["not a DiffSinger .ds file (a JSON list of sentences, each an object)"])
    problems: list[str] = []
    per_sentence = [_sentence_units(s, k, problems) for k, s in enumerate(sentences)]
    units: list[_Unit] = []
    order = sorted(range(len(sentences)), key=lambda k: per_sentence[k][0].start if per_sentence[k] else 0.0)
    for k in order:
        _place(units, per_sentence[k], k, problems)
    if not problems and not any(not u.is_rest for u in units):
        problems.append("no sung note")

    notes, phones = [], []
    for unit in units:
        n = unit.note
        midi = n.midi + key_shift if n.midi else 0
        where = f"note at {n.start:.3f} s ({'_'.join(n.phns)})"
        for problem in (pitch_problem(midi, key_shift, pitch_range) if n.midi else None,
                        phone_problem(n.phns, model_phones)):
            if problem:
                problems.append(f"{where}: {problem}")
        notes.append(Note(n.start / tempo_scale, n.end / tempo_scale, midi, n.lyric, n.phns, n.slur))
        phones += [Phone(phn, a / tempo_scale, b / tempo_scale, len(notes) - 1) for phn, a, b in unit.phones]
    if problems:
        raise ScoreError(str(path), problems)
    return finish_score(notes, phones, str(path))


# ---- writing ------------------------------------------------------------------------------------
def _note_name(midi: int) -> str:
    return REST_NOTE if midi == 0 else librosa.midi_to_note(midi, unicode=False)


def _seconds(frames: int) -> str:
    return str(round(frames / FRAME_RATE, 6))


def ds_sentence(score: dict, start: int, end: int, f0: np.ndarray, f0_timestep: float) -> dict:
    """The frames [start, end) of a score.json entry as one .ds sentence, in DiffSinger's layout;
    `f0`: the sung audio's F0 (Hz, 0 unvoiced) every `f0_timestep` s from the song's start."""
    notes = score["notes"]
    pieces = []  # [phone, first frame, end frame, note index] of the frames [start, end)
    a = 0
    for p in score["phones"]:
        b = seconds_to_frame(p["end"])
        lo, hi = max(a, start), min(b, end)
        if hi > lo:
            pieces.append([p["phn"], lo, hi, p["note"]])
        a = b
    ph: list[list] = []  # [phone, first frame, end frame]
    ds_notes: list[list] = []  # [midi, first frame, end frame, slur, word]
    for phn, lo, hi, n in pieces:
        note = notes[n]
        if note["slur"] and ph and ph[-1][0] == phn:  # the final goes on over the next note: one phone, a slur note
            ph[-1][2] = hi
            ds_notes.append([note["midi"], lo, hi, 1, None])
            continue
        if ph and ph[-1][0] == phn == REST:
            ph[-1][2] = hi
        else:
            ph.append([phn, lo, hi])
        if is_initial(phn):  # sung before its note starts, on the end of the note before (DiffSinger's layout)
            if ds_notes:
                ds_notes[-1][2] = hi
            else:
                ds_notes.append([0, lo, hi, 0, REST])
        elif ds_notes and ds_notes[-1][0] == 0 == note["midi"] and ds_notes[-1][4] == phn:
            ds_notes[-1][2] = hi
        else:
            ds_notes.append([note["midi"], lo, hi, 0, phn if phn in RESTS else note["lyric"]])
    word_starts = [lo for _, lo, _, slur, _ in ds_notes if not slur]
    ph_num = np.bincount(np.searchsorted(word_starts, [lo for _, lo, _ in ph], side="right") - 1,
                         minlength=len(word_starts))
    first = round(start / FRAME_RATE / f0_timestep)
    n_f0 = round((end - start) / FRAME_RATE / f0_timestep)
    curve = np.zeros(n_f0)
    available = np.asarray(f0[first:first + n_f0], dtype=np.float64)
    curve[:len(available)] = available
    return {
        "offset": round(start / FRAME_RATE, 6),
        "text": " ".join(word for *_, slur, word in ds_notes if not slur),
        "ph_seq": " ".join(p for p, _, _ in ph),
        "ph_dur": " ".join(_seconds(hi - lo) for _, lo, hi in ph),
        "ph_num": " ".join(str(int(x)) for x in ph_num),
        "note_seq": " ".join(_note_name(midi) for midi, *_ in ds_notes),
        "note_dur": " ".join(_seconds(hi - lo) for _, lo, hi, _, _ in ds_notes),
        "note_slur": " ".join(str(slur) for *_, slur, _ in ds_notes),
        "f0_seq": " ".join(f"{x:.1f}" for x in curve),
        "f0_timestep": str(f0_timestep),
    }


def save_ds(path: str | Path, score: dict, ranges: list[tuple[int, int]], f0: np.ndarray,
             f0_timestep: float = F0_TIMESTEP) -> None:
    """A .ds of `score` (a score.json entry) with one sentence per frame range, written atomically."""
    atomic_write_json(path, [ds_sentence(score, a, b, f0, f0_timestep) for a, b in ranges], indent=2)
