"""One line of an Opencpop `transcriptions.txt` -> a score, through stage 1's own line parser.

The line carries its phones and their durations (`utt|text|phones|note_pitches|note_durations|
phone_durations|slurs`), so no lyric conversion or duration rule is needed; the options (tempo
scale, key shift) and the pitch range check apply as for the other formats.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from svslm.data.opencpop import parse_line
from svslm.sing.score import ScoreError, finish_score, phone_problem, pitch_problem


def _pick_line(path: Path, utt: str | None) -> tuple[str, str]:
    """(line, place) of utterance `utt` in `path`, or its only line."""
    lines = [(line, f"{path}:{k}") for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if line.strip()]
    if utt is not None:
        chosen = [(line, where) for line, where in lines if line.split("|", 1)[0].strip() == utt]
        if not chosen:
            raise ScoreError(str(path), [f"no line for utterance {utt!r}"])
        return chosen[0]
    if len(lines) != 1:
        ids = [line.split("|", 1)[0].strip() for line, _ in lines]
        more = ", ..." if len(ids) > 10 else ""
        raise ScoreError(str(path), [f"{len(lines)} lines; choose one with --utt ({', '.join(ids[:10])}{more})"])
    return lines[0]


def read_opencpop_line(
    path: str | Path,
    utt: str | None = None,
    key_shift: int = 0,
    tempo_scale: float = 1.0,
    pitch_range: tuple[int, int] | None = None,
    model_phones: set[str] | None = None,
) -> dict:
    """The score.json entry of one transcription line (the file's only line, or utterance `utt`)."""
    path = Path(path)
    line, where = _pick_line(path, utt)
    parsed = parse_line(line, where, path.parent, "sing")
    problems = [f"{where}: {p}" for p in parsed.problems]
    if tempo_scale <= 0:
        raise ValueError(f"tempo scale must be positive, got {tempo_scale}")
    notes = []
    for i, n in enumerate(parsed.notes):
        midi = n.midi + key_shift if n.midi else 0
        for problem in (pitch_problem(midi, key_shift, pitch_range) if n.midi else None,
                        phone_problem(n.phns, model_phones)):
            if problem:
                problems.append(f"{where}: note {i} ({'_'.join(n.phns)}): {problem}")
        notes.append(dataclasses.replace(n, start=n.start / tempo_scale, end=n.end / tempo_scale, midi=midi))
    phones = [dataclasses.replace(p, start=p.start / tempo_scale, end=p.end / tempo_scale) for p in parsed.phones]
    if problems:
        raise ScoreError(str(path), problems)
    return finish_score(notes, phones, where)
