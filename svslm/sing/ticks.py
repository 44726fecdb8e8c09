"""Ticks -> seconds and measure numbers, for the formats that count time in ticks (MIDI, USTX, UST)."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TickClock:
    """A tempo map and time signatures over ticks of `ticks_per_beat` per quarter note."""

    ticks_per_beat: int
    tempos: list[tuple[int, float]]  # (tick, microseconds per quarter), sorted, starting at tick 0
    meters: list[tuple[int, int, int]]  # (tick, numerator, denominator), sorted, starting at tick 0

    def seconds(self, tick: float) -> float:
        total = 0.0
        for k, (t0, tempo) in enumerate(self.tempos):
            if tick <= t0:
                break
            t1 = self.tempos[k + 1][0] if k + 1 < len(self.tempos) else tick
            total += (min(tick, t1) - t0) * tempo * 1e-6 / self.ticks_per_beat
        return total

    def measure(self, tick: float) -> int:
        """1-based measure number of `tick`; a time signature change starts a new measure."""
        measure = 1
        for k, (t0, numerator, denominator) in enumerate(self.meters):
            ticks_per_measure = self.ticks_per_beat * 4 * numerator / denominator
            t1 = self.meters[k + 1][0] if k + 1 < len(self.meters) else None
            if t1 is None or tick < t1:
                return measure + int((tick - t0) // ticks_per_measure)
            measure += math.ceil((t1 - t0) / ticks_per_measure)
        return measure


def bpm_to_tempo(bpm: float) -> float:
    """Microseconds per quarter note of `bpm` quarter notes a minute."""
    return 60e6 / bpm
