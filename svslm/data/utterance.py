"""The in-memory utterance that every corpus parser produces and the writer consumes.

A parser turns its corpus's annotation into `Utterance`s without touching audio: notes as the
score gives them, phones as the label gives them, each phone tied to the note it is sung on.
Problems found while parsing are kept on the utterance (with the place in the corpus), so one
pass reports every bad utterance instead of stopping at the first.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)  # slots: a full corpus holds millions of notes and phones
class Note:
    start: float  # seconds
    end: float  # seconds
    midi: int  # MIDI pitch; 0 for the rests SP and AP
    lyric: str  # the syllable (pinyin or character), "SP"/"AP" for rests, "-" for a slur
    phns: list[str]  # phones sung on this note: [initial, final], [final], or ["SP"]/["AP"]
    slur: bool = False  # a melisma note continuing the previous syllable on its final


@dataclass(slots=True)
class Phone:
    phn: str
    start: float  # seconds
    end: float  # seconds
    note: int  # index into the utterance's notes


@dataclass
class AudioRef:
    """Where an utterance's audio is: a file, or a row of a parquet shard (bytes read later)."""

    path: str | None = None  # audio file on disk
    shard: str | None = None  # parquet shard holding the audio bytes
    row: int | None = None  # row index in `shard`


@dataclass
class Utterance:
    utt_id: str
    speaker: str  # singer id
    song: str  # song id; test songs must never appear in train or dev
    corpus_split: str  # the split the corpus assigns: train, validation or test
    notes: list[Note]
    phones: list[Phone]
    audio: AudioRef
    where: str  # place of the annotation in the corpus (file:line or shard row) for messages
    problems: list[str] = field(default_factory=list)  # annotation problems found by the parser

    @property
    def end(self) -> float:
        return self.phones[-1].end if self.phones else 0.0
