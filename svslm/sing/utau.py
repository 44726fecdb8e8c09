"""Notes of OpenUtau and UTAU projects (USTX, UST) -> ScoreNotes, with the lyric conventions they share.

Both formats place notes in ticks and leave rests as gaps between notes (or, in UST, as notes
with the lyric `R`). A note whose lyric starts with `+` (`+`, `+~`, `+*`: OpenUtau's marks for
"continue the syllable before") or is `-` continues the note before it when it starts where that
note ends: at a new pitch it is a melisma, at the same pitch a tie (one longer note, as OpenUtau
itself merges tied notes when it imports MusicXML). A phonetic hint in brackets (`好[h ao]`,
or UTAU's `!hao`, which OpenUtau reads as `[hao]`) is the pronunciation to sing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from svslm.data.phonemes import BREATH, REST
from svslm.sing.score import Problem, ScoreNote
from svslm.sing.ticks import TickClock

PHONETIC_HINT = re.compile(r"\[(.*)\]")
UTAU_REST = ("R", "r")  # UTAU's rest note


@dataclass
class TickNote:
    """A note as the project holds it."""

    start: int  # tick in the project
    end: int  # tick in the project
    tone: int  # MIDI pitch
    lyric: str
    place: str  # where the note is, for messages


def is_continuation(lyric: str) -> bool:
    return lyric.startswith("+") or lyric == "-"


def sung_lyric(lyric: str) -> str:
    """The syllable to sing: the phonetic hint when there is one, else the lyric without it."""
    hint = PHONETIC_HINT.search(lyric)
    if hint and hint.group(1).strip():
        return hint.group(1).strip()
    return PHONETIC_HINT.sub("", lyric).strip()


def utau_notes(raw: list[TickNote], clock: TickClock, origin: int = 0) -> tuple[list[ScoreNote], list[Problem]]:
    """ScoreNotes of `raw` (sorted by start), timed from tick `origin`; and the problems found."""
    zero = clock.seconds(origin)
    notes: list[ScoreNote] = []
    problems: list[Problem] = []
    prev: TickNote | None = None  # the note before, as written
    for n in raw:
        start, end = clock.seconds(n.start) - zero, clock.seconds(n.end) - zero
        if n.end <= n.start:
            problems.append((start, f"{n.place}: length {n.end - n.start} ticks; a note must last at least one tick"))
            continue
        lyric = sung_lyric(n.lyric)
        adjacent = prev is not None and prev.end == n.start and notes and not notes[-1].is_rest
        if lyric in UTAU_REST:
            notes.append(ScoreNote(start, end, 0, REST, n.place))
        elif lyric in (REST, BREATH):
            notes.append(ScoreNote(start, end, 0, lyric, n.place))
        elif is_continuation(lyric) and adjacent and n.tone == prev.tone:
            notes[-1].end = end  # a tie
        elif is_continuation(lyric):
            notes.append(ScoreNote(start, end, n.tone, None, n.place, melisma=True))
        elif not lyric:
            notes.append(ScoreNote(start, end, n.tone, None, n.place))
        else:
            notes.append(ScoreNote(start, end, n.tone, lyric, n.place))
        prev = n
    return notes, problems
