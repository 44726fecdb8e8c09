"""UTAU projects (.ust) -> ScoreNotes.

A .ust is INI-like: `[#VERSION]` (`UST Version...`, possibly `Charset=...`), `[#SETTING]`
(`Tempo=` in quarter notes a minute, ...), one section per note, `[#0000]`, `[#0001]`, ...
(`Length` in ticks at 480 per quarter note, `Lyric`, `NoteNum` as a MIDI pitch, and an optional
`Tempo`: the tempo from that note on), then `[#TRACKEND]`. Notes follow one another; UST 2.0
places a note `Delta` ticks after the start of the one before and sounds it `Duration` ticks.
A note with the lyric `R` is a rest. Text is in the encoding a `Charset=` line names; without
one, UTF-8, else GB18030 (Chinese editions of UTAU), else Shift-JIS (UTAU's own). Lyric
conventions: svslm.sing.utau. A note's place is its section name and its tick.
"""
from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

from svslm.sing.score import Problem, ScoreError, ScoreNote
from svslm.sing.ticks import TickClock, bpm_to_tempo
from svslm.sing.utau import TickNote, utau_notes

log = logging.getLogger(__name__)

TICKS_PER_QUARTER = 480
DEFAULT_BPM = 120.0
UNDECLARED_ENCODINGS = ("utf-8-sig", "gb18030", "shift_jis")
CHARSET = re.compile(rb"^\s*Charset\s*=\s*(\S+)\s*$", re.MULTILINE)
HEADER = re.compile(r"^\[#(\w+)\]$")
NOT_SUNG = ("PREV", "NEXT", "INSERT", "DELETE")  # sections of the files UTAU hands to plugins


def decode_ust(path: Path) -> tuple[str, str]:
    """(text, encoding) of a .ust; a `Charset=` line among the first ones names the encoding."""
    raw = path.read_bytes()
    declared = CHARSET.search(b"\n".join(raw.splitlines()[:10]))
    if declared:
        name = declared.group(1).decode("ascii", errors="replace")
        try:
            encoding = codecs.lookup(name).name
        except LookupError as err:
            raise ScoreError(str(path), [f"Charset={name}: an encoding Python does not know"]) from err
        candidates = ["utf-8-sig" if encoding == "utf-8" else encoding]
    else:
        candidates = list(UNDECLARED_ENCODINGS)
    for encoding in candidates:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as err:
            if declared:
                line = raw[: err.start].count(b"\n") + 1
                why = (f"line {line}: not {name} text, as its Charset={name} line says (byte {raw[err.start]:#04x}); "
                       "re-save the file in that encoding or correct the Charset line")
                raise ScoreError(str(path), [why]) from err
            continue
        if not declared and encoding != "utf-8-sig":
            log.warning("%s: no Charset line and not UTF-8: read as %s", path, encoding)
        return text, encoding
    raise ScoreError(str(path), [f"not text in any of {', '.join(UNDECLARED_ENCODINGS)}; add a Charset= line"])


def _sections(text: str, problems: list[Problem]) -> list[tuple[str, int, dict[str, tuple[str, int]]]]:
    """(section name, its line, {key: (value, line)}) in file order."""
    sections: list[tuple[str, int, dict[str, tuple[str, int]]]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        header = HEADER.match(line)
        if header:
            sections.append((header.group(1), lineno, {}))
        elif not sections:
            problems.append((-1.0, f"line {lineno}: {line!r} before the first [#...] section"))
        elif sections[-1][0] == "VERSION":
            continue  # `UST Version1.2` lines are not key=value
        elif "=" not in line:
            problems.append((-1.0, f"line {lineno} in [#{sections[-1][0]}]: expected key=value, got {line!r}"))
        else:
            key, value = line.split("=", 1)
            sections[-1][2][key.strip()] = (value.strip(), lineno)
    return sections


def _int(fields: dict[str, tuple[str, int]], key: str) -> int | None:
    try:
        return int(float(fields[key][0]))
    except (KeyError, ValueError):
        return None


def read_ust(path: str | Path) -> tuple[list[ScoreNote], list[Problem]]:
    """The notes of `path` and the problems found while reading them."""
    path = Path(path)
    text, _ = decode_ust(path)
    problems: list[Problem] = []
    sections = _sections(text, problems)
    tempos: dict[int, float] = {}
    settings = next((fields for name, _, fields in sections if name == "SETTING"), {})
    if "Tempo" in settings:
        try:
            bpm = float(settings["Tempo"][0])
        except ValueError:
            bpm = -1.0
        if not 0 < bpm <= 1000:
            problems.append((-1.0, f"line {settings['Tempo'][1]} in [#SETTING]: Tempo={settings['Tempo'][0]} is not a tempo (bpm)"))
        else:
            tempos[0] = bpm_to_tempo(bpm)

    raw: list[TickNote] = []
    last_start = last_end = 0
    for name, lineno, fields in sections:
        if name == "TRACKEND":
            break
        if name in ("VERSION", "SETTING") or name in NOT_SUNG:
            if name in NOT_SUNG:
                log.info("%s: section [#%s] is not sung", path, name)
            continue
        if not name.isdigit():
            problems.append((-1.0, f"line {lineno}: unknown section [#{name}]"))
            continue
        length, delta, duration = _int(fields, "Length"), _int(fields, "Delta"), _int(fields, "Duration")
        if delta is not None and duration is not None and length is not None:  # UST 2.0
            start, end = last_start + delta, last_start + delta + duration
        else:
            start, end = last_end, last_end + (length or 0)
        place = f"[#{name}] (line {lineno}, tick {start})"
        lyric = fields.get("Lyric", ("", 0))[0]
        lyric = lyric.removeprefix("?")
        lyric = f"[{lyric[1:]}]" if lyric.startswith("!") else lyric  # UTAU's phonetic hint, as OpenUtau reads it
        tone = _int(fields, "NoteNum")
        if length is None:
            problems.append((-1.0, f"{place}: no Length (ticks), or not a number: {fields.get('Length', ('', 0))[0]!r}"))
            continue
        if "Tempo" in fields:
            try:
                bpm = float(fields["Tempo"][0])
            except ValueError:
                bpm = -1.0
            if 0 < bpm <= 1000:
                tempos[start] = bpm_to_tempo(bpm)
            else:
                problems.append((-1.0, f"{place}: Tempo={fields['Tempo'][0]} is not a tempo (bpm)"))
        last_start, last_end = start, end
        if lyric in ("R", "r"):
            tone = 0 if tone is None else tone
        elif tone is None or not 0 <= tone <= 127:
            problems.append((-1.0, f"{place}: NoteNum {fields.get('NoteNum', ('none', 0))[0]!r} is not a MIDI pitch 0..127"))
            continue
        raw.append(TickNote(start, end, tone, lyric, place))
    tempos.setdefault(0, bpm_to_tempo(DEFAULT_BPM))
    clock = TickClock(TICKS_PER_QUARTER, sorted(tempos.items()), [(0, 4, 4)])
    notes, timing_problems = utau_notes(raw, clock)
    return notes, problems + timing_problems
