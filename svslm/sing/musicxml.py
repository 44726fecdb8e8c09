"""MusicXML (.musicxml, .xml, .mxl) -> ScoreNotes, read with music21.

The sung part is the first part that carries lyrics. Tied notes are merged into one note; a
note without a lyric of its own continues the syllable before it (a melisma) when it lies under
a slur (not as the slur's first note) or under the extender line of the syllable before it.
Times come from the score's tempo map (every MetronomeMark; 120 quarter notes a minute before
the first one, music21's default). A note's place is its measure number and its position among
the measure's notes and rests (1-based, as a musician counts them).
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import music21
from music21 import chord, note, spanner, stream

from svslm.data.phonemes import REST
from svslm.sing.score import Problem, ScoreError, ScoreNote

log = logging.getLogger(__name__)


def _measure_id(measure: stream.Measure) -> str:
    return f"{measure.number}{measure.numberSuffix or ''}"


def _xml_root(path: Path) -> ElementTree.Element:
    """The score document of a plain or compressed (.mxl) MusicXML file."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            container = ElementTree.fromstring(archive.read("META-INF/container.xml"))
            rootfile = next(e for e in container.iter() if e.tag.endswith("rootfile"))
            return ElementTree.fromstring(archive.read(rootfile.get("full-path")))
    return ElementTree.parse(path).getroot()


def _extended_notes(path: Path, part_index: int) -> set[tuple[str, int]]:
    """(measure, note position) of the notes whose lyric carries an extender line (`<extend>`).

    music21 drops `<extend>` when it parses lyrics, so the file is scanned for it directly;
    positions count notes and rests as `read_musicxml` does (chord members and grace notes not).
    """
    root = _xml_root(path)
    parts = root.findall("part") if root.tag == "score-partwise" else []
    if part_index >= len(parts):
        return set()
    places = set()
    for measure in parts[part_index].findall("measure"):
        position = 0
        for xml_note in measure.findall("note"):
            if xml_note.find("chord") is not None or xml_note.find("grace") is not None:
                continue
            position += 1
            if any(lyric.find("extend") is not None for lyric in xml_note.findall("lyric")):
                places.add((measure.get("number", ""), position))
    return places


class _TempoMap:
    """Quarter-note offsets -> seconds through the score's MetronomeMarks."""

    def __init__(self, score: stream.Score):
        # [(start offset, end offset, seconds per quarter)] covering the whole score.
        self.segments = [(start, end, mark.secondsPerQuarter()) for start, end, mark in score.metronomeMarkBoundaries()]

    def seconds(self, offset: float) -> float:
        total = 0.0
        for start, end, spq in self.segments:
            if offset <= start:
                break
            total += (min(offset, end) - start) * spq
        return total


def _first_verse(element: note.GeneralNote) -> str | None:
    lyrics = [ly for ly in element.lyrics if ly.text and ly.text.strip()]
    if not lyrics:
        return None
    return min(lyrics, key=lambda ly: ly.number or 0).text.strip()


def _slur_spans(part: stream.Part, score: stream.Score) -> list[tuple[float, float]]:
    """(first, last) note offsets of every slur. music21 keeps only a slur's end notes as its
    members when it reads MusicXML, so the notes under it are found by offset."""
    spans = []
    for slur in part.recurse().getElementsByClass(spanner.Slur):
        first, last = slur.getFirst(), slur.getLast()
        if first is not None and last is not None:
            spans.append((float(first.getOffsetInHierarchy(score)), float(last.getOffsetInHierarchy(score))))
    return spans


def read_musicxml(path: str | Path) -> tuple[list[ScoreNote], list[Problem]]:
    """The notes of the sung part of `path` and the problems found while reading them."""
    path = Path(path)
    try:
        score = music21.converter.parse(str(path), format="musicxml")
    except Exception as err:  # music21 raises many exception types for unreadable files
        raise ScoreError(str(path), [f"not a readable MusicXML file ({err})"]) from err
    parts = list(score.parts)
    if not parts:
        raise ScoreError(str(path), ["no parts"])
    with_lyrics = [i for i, p in enumerate(parts) if any(_first_verse(n) for n in p.recurse().notes)]
    part_index = with_lyrics[0] if with_lyrics else 0
    if len(parts) > 1:
        log.info("%s: singing part %d of %d (%s), the first with lyrics", path, part_index + 1, len(parts),
                 parts[part_index].partName or "unnamed")
    extended = _extended_notes(path, part_index)
    slurs = _slur_spans(parts[part_index], score)
    tempo = _TempoMap(score)

    notes: list[ScoreNote] = []
    problems: list[Problem] = []
    extender_active = False  # the last syllable's extender line still runs
    for measure in parts[part_index].getElementsByClass(stream.Measure):
        position = 0
        for element in measure.recurse().notesAndRests:
            if element.duration.isGrace:
                log.warning("%s: measure %s: grace note %s is not sung (it has no duration)",
                            path, _measure_id(measure), element)
                continue
            position += 1
            place = f"measure {_measure_id(measure)}, note {position}"
            offset = float(element.getOffsetInHierarchy(score))
            start, end = tempo.seconds(offset), tempo.seconds(offset + float(element.quarterLength))
            lyric = _first_verse(element)
            if isinstance(element, note.Rest):
                if lyric:
                    problems.append((start, f"{place}: lyric {lyric!r} on a rest (a lyric without a note)"))
                notes.append(ScoreNote(start, end, 0, REST, place))
                extender_active = False
                continue
            if isinstance(element, chord.Chord):
                problems.append((start, f"{place}: a chord of {len(element.pitches)} notes; a sung part must be one line of notes"))
                continue
            tie = element.tie.type if element.tie else None
            if tie in ("stop", "continue"):
                prev = notes[-1] if notes else None
                if prev is None or prev.is_rest or prev.midi != element.pitch.midi:
                    problems.append((start, f"{place}: a tie that does not continue a note of the same pitch"))
                    continue
                prev.end = end
                if lyric:
                    problems.append((start, f"{place}: lyric {lyric!r} on a tied note (a lyric without a note of its own)"))
                continue
            in_extender = (_measure_id(measure), position) in extended
            under_slur = any(first < offset <= last for first, last in slurs)  # not the slur's first note
            melisma = lyric is None and (under_slur or extender_active or in_extender)
            extender_active = in_extender or (extender_active and lyric is None)
            notes.append(ScoreNote(start, end, element.pitch.midi, lyric, place, melisma=melisma))
    notes.sort(key=lambda n: n.start)  # voices are read one after another; overlaps are then found
    return notes, problems
