"""Standard MIDI files with lyrics -> ScoreNotes, read with mido.

The sung track is the track holding lyric events when it has notes, else the first track with
notes. Lyrics come from `lyrics` meta events, each attached to the note starting at its tick,
or from a separate text aligned one syllable per note. MIDI has no slurs: a note without a
lyric, or with the lyric `-` or `+` (Vocaloid's and Synthesizer V's melisma marks), continues
the syllable before it. Silences between notes become rests, except those shorter than
`ScoreConfig.midi_min_rest`, which lengthen the note before (players rarely hold a note to
the exact tick of the next). Times follow the file's tempo map; measures its time signatures.
"""
from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import mido

from svslm.sing.lyrics import HAN_CHARACTER, clean_lyric
from svslm.sing.score import Problem, ScoreConfig, ScoreError, ScoreNote
from svslm.sing.ticks import TickClock

log = logging.getLogger(__name__)

MELISMA_MARKS = ("-", "+")
DEFAULT_TEMPO = 500_000  # microseconds per quarter note when a file sets none (the MIDI standard's 120 bpm)


def _decode(text: str) -> str:
    """Lyric text as written: mido reads meta text as latin-1; Chinese lyrics are UTF-8 or GB18030 bytes."""
    raw = text.encode("latin-1", errors="replace")
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return text


@dataclass
class _Note:
    start: int  # tick
    end: int  # tick
    pitch: int


def _absolute(track: mido.MidiTrack):
    tick = 0
    for msg in track:
        tick += msg.time
        yield tick, msg


def _notes_of(track: mido.MidiTrack) -> tuple[list[_Note], list[int]]:
    """Notes of a track, and the start ticks of notes that never end."""
    sounding: dict[tuple[int, int], int] = {}  # (channel, pitch) -> start tick
    notes = []
    for tick, msg in _absolute(track):
        if msg.type == "note_on" and msg.velocity > 0:
            key = (msg.channel, msg.note)
            if key in sounding:  # struck again while sounding: the first ends here
                notes.append(_Note(sounding[key], tick, msg.note))
            sounding[key] = tick
        elif msg.type in ("note_off", "note_on"):
            start = sounding.pop((msg.channel, msg.note), None)
            if start is not None:
                notes.append(_Note(start, tick, msg.note))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes, sorted(sounding.values())


def read_lyrics_text(path: str | Path) -> list[tuple[str, str]]:
    """Syllables of a lyric text, one per note, with their places: Chinese characters count one
    each, other tokens are separated by spaces (pinyin, `-` for a melisma); punctuation is ignored."""
    path = Path(path)
    syllables = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for token in line.split():
            parts = token if HAN_CHARACTER.search(token) else [token]
            for part in parts:
                if part in MELISMA_MARKS or clean_lyric(part):
                    syllables.append((part, f"{path}:{lineno}"))
    return syllables


def read_midi(
    path: str | Path, lyrics_path: str | Path | None = None, config: ScoreConfig | None = None
) -> tuple[list[ScoreNote], list[Problem]]:
    """The notes of the sung track of `path`, with lyrics from the file or from `lyrics_path`,
    and the problems found while reading them."""
    path, config = Path(path), config or ScoreConfig()
    try:
        midi = mido.MidiFile(str(path))
    except Exception as err:  # mido raises OSError, EOFError, ValueError, KeyError for bad files
        raise ScoreError(str(path), [f"not a readable MIDI file ({err})"]) from err
    if midi.type == 2:
        raise ScoreError(str(path), ["MIDI type 2 (independent sequences) is not supported"])
    tempos, meters, lyric_tracks = {0: DEFAULT_TEMPO}, {0: (4, 4)}, []
    for index, track in enumerate(midi.tracks):
        for tick, msg in _absolute(track):
            if msg.type == "set_tempo":
                tempos[tick] = msg.tempo
            elif msg.type == "time_signature":
                meters[tick] = (msg.numerator, msg.denominator)
            elif msg.type == "lyrics" and index not in lyric_tracks:
                lyric_tracks.append(index)
    clock = TickClock(midi.ticks_per_beat, sorted(tempos.items()), [(t, *m) for t, m in sorted(meters.items())])

    note_tracks = [i for i, t in enumerate(midi.tracks) if any(m.type == "note_on" for m in t)]
    if not note_tracks:
        raise ScoreError(str(path), ["no notes"])
    track_index = next((i for i in lyric_tracks if i in note_tracks), note_tracks[0])
    if len(note_tracks) > 1:
        log.info("%s: singing track %d (%s) of %d tracks with notes", path, track_index,
                 midi.tracks[track_index].name or "unnamed", len(note_tracks))
    raw_notes, unfinished = _notes_of(midi.tracks[track_index])

    problems: list[Problem] = []
    places = []
    per_measure: dict[int, int] = {}
    for n in raw_notes:
        measure = clock.measure(n.start)
        per_measure[measure] = per_measure.get(measure, 0) + 1
        places.append(f"measure {measure}, note {per_measure[measure]}")
    for tick in unfinished:
        problems.append((clock.seconds(tick),
                         f"measure {clock.measure(tick)}: a note starting at {clock.seconds(tick):.3f} s never ends"))

    lyrics: list[str | None] = [None] * len(raw_notes)
    if lyrics_path is not None:
        syllables = read_lyrics_text(lyrics_path)
        if lyric_tracks:
            log.info("%s: lyric events ignored, lyrics taken from %s", path, lyrics_path)
        for k, (syllable, where) in enumerate(syllables[len(raw_notes):], len(raw_notes) + 1):
            problems.append((math.inf, f"{where}: syllable {k} {syllable!r} has no note (the MIDI file has {len(raw_notes)} notes)"))
        for k, (syllable, _) in enumerate(syllables[: len(raw_notes)]):
            lyrics[k] = syllable
        for k in range(len(syllables), len(raw_notes)):
            problems.append((clock.seconds(raw_notes[k].start),
                             f"{places[k]}: no syllable of {lyrics_path} left for this note (it has {len(syllables)})"))
    elif lyric_tracks:
        # Each lyric event belongs to the note starting at its tick; a small tolerance (a 64th
        # note) accepts files whose lyric events were quantised apart from their notes.
        tolerance = midi.ticks_per_beat // 16
        starts = [n.start for n in raw_notes]
        lyric_track = track_index if track_index in lyric_tracks else lyric_tracks[0]
        for tick, msg in _absolute(midi.tracks[lyric_track]):
            if msg.type != "lyrics" or not msg.text.strip():
                continue
            text = _decode(msg.text).strip()
            k = bisect.bisect_left(starts, tick - tolerance)
            place = f"measure {clock.measure(tick)} (at {clock.seconds(tick):.3f} s)"
            if k == len(starts) or abs(starts[k] - tick) > tolerance:
                problems.append((clock.seconds(tick), f"{place}: lyric {text!r} has no note starting with it (a lyric without a note)"))
            elif lyrics[k] is not None:
                problems.append((clock.seconds(tick), f"{places[k]}: a second lyric {text!r} on a note that already has {lyrics[k]!r}"))
            else:
                lyrics[k] = text
    else:
        problems.append((-math.inf, "no lyrics: the file has no lyric events; pass a lyric text (--lyrics)"))

    notes: list[ScoreNote] = []
    for n, lyric, place in zip(raw_notes, lyrics, places):
        start, end = clock.seconds(n.start), clock.seconds(n.end)
        if notes and 0 < start - notes[-1].end < config.midi_min_rest:
            notes[-1].end = start
        melisma = lyric is None or lyric in MELISMA_MARKS
        notes.append(ScoreNote(start, end, n.pitch, None if melisma else lyric, place, melisma=melisma))
    return notes, problems
