"""How long each initial (consonant) lasts when a note is split into its phones.

The rule (svslm.sing.score.consonant_split): the initial lasts min(its duration, a share of the
note) and the final the rest of the note. "Its duration" comes from, in order of preference:
a table the user gives (`--durations`: lines `<initial> <seconds>`), the median duration of
that initial in the training scores (singers hold `s` longer than `b`), or one fixed duration
(`ScoreConfig.consonant_seconds`) for an initial without either.
"""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path

from svslm.data.phonemes import is_initial

MIN_OCCURRENCES = 5  # an initial seen fewer times in training keeps the fixed duration (a median of few is noise)


def read_consonant_table(path: str | Path) -> dict[str, float]:
    """`<initial> <seconds>` lines (`#` starts a comment); every bad line is reported at once."""
    path = Path(path)
    table, problems = {}, []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) != 2:
            problems.append(f"{where}: expected '<initial> <seconds>', got {line!r}")
            continue
        initial, value = fields
        if not is_initial(initial):
            problems.append(f"{where}: {initial!r} is not an Opencpop initial")
            continue
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not seconds > 0:
            problems.append(f"{where}: duration {value!r} is not a positive number of seconds")
            continue
        table[initial] = seconds
    if problems:
        raise ValueError(f"{path}: {len(problems)} bad line(s):\n  " + "\n  ".join(problems))
    return table


def training_consonant_table(utts: Iterable[dict]) -> dict[str, float]:
    """Median duration of each initial in score.json entries (stage 1's, of the training split)."""
    durations: dict[str, list[float]] = {}
    for utt in utts:
        for p in utt["phones"]:
            if is_initial(p["phn"]):
                durations.setdefault(p["phn"], []).append(p["end"] - p["start"])
    return {phn: statistics.median(d) for phn, d in sorted(durations.items()) if len(d) >= MIN_OCCURRENCES}
