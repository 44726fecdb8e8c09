"""A user's score -> the per-utterance structure stage 1 writes into `score.json`.

Every reader (MusicXML, MIDI, Opencpop line) turns its file into `ScoreNote`s: notes and rests
with times in seconds, a lyric per note and the place of the note in the file. `build_score`
then applies the options (tempo scale, key shift), checks the pitch range, turns the lyrics
into Opencpop phones, splits each note among its phones and returns
`{"notes": [...], "phones": [...]}` exactly as docs/formats.md describes, built by stage 1's own
writer. Problems are collected over the whole score and raised together as one `ScoreError`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import librosa

from svslm.data.phonemes import REST, RESTS
from svslm.data.utterance import AudioRef, Note, Phone, Utterance
from svslm.data.validate import Tolerances, check_score, normalize_times
from svslm.data.writer import score_entry
from svslm.sing.lyrics import lyrics_to_phones
from svslm.utils.audio import FRAME_RATE

Problem = tuple[float, str]  # (seconds into the score, message with its place): reported in score order
MELISMA = "-"  # a lyric that explicitly continues the previous syllable (Vocaloid and MIDI usage)
_EPS = 1e-4  # s: times closer than this are the same instant (0.1 ms, the time resolution of score.json)


@dataclass
class ScoreConfig:
    """How notes become phones (the `score` section of conf/sing/*.yaml)."""

    consonant_seconds: float = 0.08  # s: an initial (consonant) lasts this long, unless a table gives its own (svslm.sing.durations) ...
    consonant_max_share: float = 0.4  # ... but at most this share of its note; the final takes the rest
    midi_min_rest: float = 0.05  # s: a silence between MIDI notes shorter than this lengthens the note before it


@dataclass
class ScoreNote:
    """One note or rest as a reader found it, before any option is applied."""

    start: float  # seconds at the written tempo
    end: float  # seconds at the written tempo
    midi: int  # MIDI pitch; 0 for a rest
    lyric: str | None  # the syllable as written (character or pinyin); "SP"/"AP" for a rest/breath; None if none
    place: str  # where the note is in the file, for messages: "measure 3, note 2"
    melisma: bool = False  # without a lyric of its own, under a slur or extender: continues the syllable before

    @property
    def is_rest(self) -> bool:
        return self.lyric in RESTS


class ScoreError(ValueError):
    """A score that cannot be sung; `problems` lists every problem found, each with its place."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s) in the score:\n  " + "\n  ".join(problems))


def midi_name(midi: int) -> str:
    return f"{librosa.midi_to_note(midi, unicode=False)} ({midi})"


def pitch_problem(midi: int, key_shift: int, pitch_range: tuple[int, int] | None) -> str | None:
    """Why `midi` (already shifted by `key_shift`) cannot be sung, or None."""
    if pitch_range is None or pitch_range[0] <= midi <= pitch_range[1]:
        return None
    shifted = f" after the key shift of {key_shift:+d}" if key_shift else ""
    return (f"pitch {midi_name(midi)}{shifted} is outside the model's range "
            f"{midi_name(pitch_range[0])} .. {midi_name(pitch_range[1])}")


def phone_problem(phns: list[str], model_phones: set[str] | None) -> str | None:
    """Why the model cannot sing `phns`: a phone its training data never had (no `svs_<phn>` token)."""
    unknown = [p for p in phns if model_phones is not None and p not in model_phones]
    if not unknown:
        return None
    return f"phone(s) {', '.join(unknown)} never occur in the model's training data (it has no token for them)"


def consonant_split(
    duration: float, initial: str, config: ScoreConfig, table: dict[str, float] | None = None
) -> float:
    """Seconds of `initial` on a note lasting `duration`: min(its duration, a share of the note).

    Its duration is `table[initial]` (svslm.sing.durations), else `config.consonant_seconds`."""
    seconds = (table or {}).get(initial, config.consonant_seconds)
    return min(seconds, config.consonant_max_share * duration)


def _timed(notes: list[ScoreNote], tempo_scale: float, problems: list[Problem]) -> list[ScoreNote]:
    """Notes scaled in time, with silences filled by SP, consecutive SPs merged, overlaps reported."""
    out: list[ScoreNote] = []
    for n in notes:
        n = dataclasses.replace(n, start=n.start / tempo_scale, end=n.end / tempo_scale)
        prev_end = out[-1].end if out else 0.0
        if n.start < prev_end - _EPS:
            overlap = f"overlaps the note before it ({out[-1].place}) by {prev_end - n.start:.3f} s"
            problems.append((n.start, f"{n.place}: {overlap}; a sung part must be one line of notes"))
            continue
        if n.start > prev_end + _EPS:
            out.append(ScoreNote(prev_end, n.start, 0, REST, f"the silence before {n.place}"))
        if n.lyric == REST and out and out[-1].lyric == REST:
            out[-1] = dataclasses.replace(out[-1], end=n.end)
            continue
        out.append(n)
    return out


def build_score(
    notes: list[ScoreNote],
    source: str,
    config: ScoreConfig | None = None,
    reader_problems: list[Problem] | None = None,
    key_shift: int = 0,
    tempo_scale: float = 1.0,
    pitch_range: tuple[int, int] | None = None,
    consonant_table: dict[str, float] | None = None,
    model_phones: set[str] | None = None,
) -> dict:
    """The score.json entry `{"notes", "phones"}` of `notes`, or a ScoreError listing every problem.

    `key_shift`: semitones added to every sung note; `tempo_scale`: > 1 sings faster (every time
    is divided by it); `pitch_range`: the lowest and highest MIDI pitch the model can sing, after
    the key shift (None: not checked); `consonant_table`: seconds per initial (`consonant_split`);
    `model_phones`: the phones the model has tokens for (None: not checked).
    `reader_problems` are the reader's own (times at the written tempo), reported together.
    """
    config = config or ScoreConfig()
    if tempo_scale <= 0:
        raise ValueError(f"tempo scale must be positive, got {tempo_scale}")
    problems = [(t / tempo_scale, message) for t, message in reader_problems or []]
    notes = _timed(notes, tempo_scale, problems)
    if not any(not n.is_rest for n in notes):
        problems.append((0.0, "no sung note"))

    sung = [n for n in notes if not n.is_rest and not n.melisma and n.lyric != MELISMA and n.lyric is not None]
    phones_of_lyric = dict(zip(map(id, sung), lyrics_to_phones([n.lyric for n in sung])))
    out_notes: list[Note] = []
    out_phones: list[Phone] = []
    # Phones of the syllable being sung, continued by melisma notes; [] after a syllable already
    # reported as a problem, so that its melisma notes do not repeat the report.
    syllable: list[str] | None = None
    for n in notes:
        if n.end - n.start < 1 / FRAME_RATE - _EPS:
            problems.append((n.start, f"{n.place}: lasts {n.end - n.start:.3f} s, shorter than one frame ({1 / FRAME_RATE:.2f} s)"))
        if n.is_rest:
            syllable = None
            out_notes.append(Note(n.start, n.end, 0, n.lyric, [n.lyric]))
            out_phones.append(Phone(n.lyric, n.start, n.end, len(out_notes) - 1))
            continue
        midi = n.midi + key_shift
        if problem := pitch_problem(midi, key_shift, pitch_range):
            problems.append((n.start, f"{n.place}: {problem}"))
        if n.melisma or n.lyric == MELISMA:
            if not syllable:
                if syllable is None:
                    problems.append((n.start, f"{n.place}: a melisma (slurred or extended) note with no syllable before it to continue"))
                continue
            out_notes.append(Note(n.start, n.end, midi, MELISMA, [syllable[-1]], slur=True))
            out_phones.append(Phone(syllable[-1], n.start, n.end, len(out_notes) - 1))
            continue
        if n.lyric is None:
            problems.append((n.start, f"{n.place}: a note without a lyric (and not under a slur or a lyric extender)"))
            syllable = []
            continue
        phns = phones_of_lyric[id(n)]
        if isinstance(phns, str):  # why the lyric is not a syllable
            problems.append((n.start, f"{n.place}: {phns}"))
            syllable = []
            continue
        if problem := phone_problem(phns, model_phones):
            problems.append((n.start, f"{n.place}: {n.lyric!r}: {problem}"))
            syllable = []
            continue
        syllable = phns
        out_notes.append(Note(n.start, n.end, midi, n.lyric, list(phns)))
        boundary = n.start
        if len(phns) == 2:  # [initial, final]
            boundary += consonant_split(n.end - n.start, phns[0], config, consonant_table)
            out_phones.append(Phone(phns[0], n.start, boundary, len(out_notes) - 1))
        out_phones.append(Phone(phns[-1], boundary, n.end, len(out_notes) - 1))
    if problems:
        raise ScoreError(source, [message for _, message in sorted(problems, key=lambda p: p[0])])
    return finish_score(out_notes, out_phones, source)


def finish_score(notes: list[Note], phones: list[Phone], source: str) -> dict:
    """Stage 1's checks, time normalisation and score.json writer on a built score.

    For an Opencpop line these are its checks; after `build_score`, which catches every user
    error first, a problem here would be a reader's bug, reported the same way rather than
    written as a broken score.
    """
    utt = Utterance(source, "", "", "sing", notes, phones, AudioRef(), source)
    problems = check_score(utt, Tolerances())
    if problems:
        raise ScoreError(source, problems)
    return score_entry(normalize_times(utt))

