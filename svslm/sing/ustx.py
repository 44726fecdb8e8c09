"""OpenUtau projects (.ustx, YAML) -> ScoreNotes, read with PyYAML.

The project holds `tempos` (`position` in ticks, `bpm`), `time_signatures` (`bar_position` in
bars, `beat_per_bar`, `beat_unit`; projects before USTX 0.6 have one `bpm`, `beat_per_bar`,
`beat_unit` instead) and `voice_parts`, each with its `position` in the project and its `notes`
(`position` from the part's start and `duration` in ticks, `tone` as a MIDI pitch, `lyric`), at
480 ticks per quarter note (`resolution`). One voice part is sung: `part` (1-based, in the order
of the file), else the first with lyrics; it is sung from its own start. Lyric conventions:
svslm.sing.utau.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import yaml

from svslm.sing.score import Problem, ScoreError, ScoreNote
from svslm.sing.ticks import TickClock, bpm_to_tempo
from svslm.sing.utau import UTAU_REST, TickNote, is_continuation, sung_lyric, utau_notes

log = logging.getLogger(__name__)

RESOLUTION = 480  # ticks per quarter note: OpenUtau's, written as `resolution` by older versions


class _YamlLoader(yaml.SafeLoader):
    """YAML as OpenUtau writes it (YAML 1.2): only true/false are booleans, so that lyrics such as
    `no` or `on` stay text."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def _load(path: Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ScoreError(str(path), [f"not UTF-8 text at byte {err.start} (OpenUtau writes .ustx files in UTF-8)"]) from err
    try:
        doc = yaml.load(text, Loader=_YamlLoader)  # a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ScoreError(str(path), [f"{where}not readable YAML ({getattr(err, 'problem', None) or err})"]) from err
    if not isinstance(doc, dict):
        raise ScoreError(str(path), ["not an OpenUtau project (no YAML mapping at the top)"])
    return doc


def _number(value, positive: bool = False) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value > 0 or not positive and value >= 0)
    return float(value) if ok else None


def _clock(doc: dict, resolution: int) -> tuple[TickClock, list[str]]:
    """The project's tempo map and time signatures, with the problems of their entries."""
    problems = []
    tempos = doc.get("tempos") or [{"position": 0, "bpm": doc.get("bpm", 120)}]
    tempo_map = {}
    for k, t in enumerate(tempos, 1):
        position, bpm = _number((t or {}).get("position")), _number((t or {}).get("bpm"), positive=True)
        if position is None or bpm is None:
            problems.append(f"tempo {k}: needs a tick `position` >= 0 and a `bpm` > 0, got {t!r}")
            continue
        tempo_map[int(position)] = bpm_to_tempo(bpm)
    if tempo_map and 0 not in tempo_map:
        problems.append(f"the first tempo is at tick {min(tempo_map)}, not 0")
    signatures = doc.get("time_signatures") or [
        {"bar_position": 0, "beat_per_bar": doc.get("beat_per_bar", 4), "beat_unit": doc.get("beat_unit", 4)}]
    meters: list[tuple[int, int, int]] = []
    last_bar = 0
    for k, s in enumerate(sorted(signatures, key=lambda s: _number((s or {}).get("bar_position")) or 0), 1):
        bar = _number((s or {}).get("bar_position"))
        beats, unit = _number((s or {}).get("beat_per_bar"), True), _number((s or {}).get("beat_unit"), True)
        if bar is None or beats is None or unit is None:
            problems.append(f"time signature {k}: needs `bar_position` >= 0, `beat_per_bar` and `beat_unit` > 0, got {s!r}")
            continue
        if not meters and bar != 0:
            problems.append(f"the first time signature is at bar {int(bar)}, not 0")
        tick = 0 if not meters else meters[-1][0] + round((bar - last_bar) * resolution * 4 * meters[-1][1] / meters[-1][2])
        meters.append((tick, int(beats), int(unit)))
        last_bar = bar
    return TickClock(resolution, sorted(tempo_map.items()) or [(0, bpm_to_tempo(120))], meters or [(0, 4, 4)]), problems


def _has_lyrics(part: dict) -> bool:
    for n in part.get("notes") or []:
        lyric = sung_lyric(str((n or {}).get("lyric") or ""))
        if lyric and not is_continuation(lyric) and lyric not in UTAU_REST:
            return True
    return False


def _describe(k: int, part: dict) -> str:
    track = part.get("track_no", 0)
    return f"part {k} ({part.get('name') or 'unnamed'}, track {track + 1 if isinstance(track, int) else '?'})"


def read_ustx(path: str | Path, part: int | None = None) -> tuple[list[ScoreNote], list[Problem]]:
    """The notes of one voice part of `path` (1-based `part`, default the first with lyrics)."""
    path = Path(path)
    doc = _load(path)
    resolution = doc.get("resolution", RESOLUTION)
    if _number(resolution, positive=True) is None:
        raise ScoreError(str(path), [f"resolution {resolution!r} is not a positive number of ticks per quarter note"])
    clock, problems = _clock(doc, int(resolution))
    parts = [p for p in doc.get("voice_parts") or [] if isinstance(p, dict)]
    if not parts:
        raise ScoreError(str(path), problems + ["no voice parts (no notes to sing)"])
    listing = "; ".join(_describe(k, p) for k, p in enumerate(parts, 1))
    if part is None:
        with_lyrics = [k for k, p in enumerate(parts, 1) if _has_lyrics(p)]
        part = with_lyrics[0] if with_lyrics else 1
    elif not 1 <= part <= len(parts):
        raise ScoreError(str(path), [f"no voice part {part}; the project has {len(parts)}: {listing}"])
    chosen = parts[part - 1]
    if len(parts) > 1:
        log.info("%s: singing %s of %d voice parts (--part chooses another: %s)", path, _describe(part, chosen),
                 len(parts), listing)
    if problems:
        raise ScoreError(str(path), problems)

    origin = int(_number(chosen.get("position")) or 0)
    raw, bad = [], []
    for i, n in enumerate(chosen.get("notes") or [], 1):
        n = n if isinstance(n, dict) else {}
        position, duration, tone = (_number(n.get(key)) for key in ("position", "duration", "tone"))
        tick = origin + int(position or 0)
        place = f"part {part}, note {i} (bar {clock.measure(tick)}, tick {tick})"
        if position is None or duration is None or tone is None or not 0 <= tone <= 127:
            got = {k: n.get(k) for k in ("position", "duration", "tone")}
            why = f"needs a `position` and `duration` in ticks and a `tone` (MIDI 0..127), got {got}"
            bad.append((clock.seconds(tick) - clock.seconds(origin), f"{place}: {why}"))
            continue
        lyric = n.get("lyric")
        raw.append(TickNote(tick, tick + int(duration), int(tone), "" if lyric is None else str(lyric), place))
    raw.sort(key=lambda n: n.start)
    notes, problems = utau_notes(raw, clock, origin)
    return notes, bad + problems
