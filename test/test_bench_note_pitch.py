"""bench/note_pitch.py on tones of known pitch: a melody sung two semitones flat reads offset -2,
slope 1; one sung on a single pitch reads slope 0; rests and short notes are left out."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "note_pitch.py"
SR = 16000


def _bench():
    spec = importlib.util.spec_from_file_location("note_pitch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sing(notes: list[dict], shift: float = 0.0, flat_at: float | None = None) -> np.ndarray:
    """Harmonic tones on the notes' pitches (+ shift semitones), or all on `flat_at`; silence in rests."""
    out = np.zeros(int(notes[-1]["end"] * SR))
    for n in notes:
        a, b = int(n["start"] * SR), int(n["end"] * SR)
        if n["midi"] == 0:
            continue
        midi = flat_at if flat_at is not None else n["midi"] + shift
        f = 440 * 2 ** ((midi - 69) / 12)
        t = np.arange(b - a) / SR
        out[a:b] = sum(0.1 / k * np.sin(2 * np.pi * k * f * t) for k in range(1, 11))
    return out


def test_offsets_and_slopes_of_known_tones(tmp_path):
    notes = [{"start": 0.0, "end": 0.3, "midi": 0}, {"start": 0.3, "end": 0.8, "midi": 60},
             {"start": 0.8, "end": 1.3, "midi": 64}, {"start": 1.3, "end": 1.4, "midi": 72},  # too short
             {"start": 1.4, "end": 1.9, "midi": 67}, {"start": 1.9, "end": 2.4, "midi": 62}]
    score = tmp_path / "score.json"
    score.write_text(json.dumps({"utts": {"s1#0001": {"notes": notes}}}))
    for condition, wav in {"flat2": _sing(notes, shift=-2), "monotone": _sing(notes, flat_at=63)}.items():
        (tmp_path / "wav" / condition).mkdir(parents=True)
        sf.write(tmp_path / "wav" / condition / "s1#0001.wav", wav, SR)
    out = tmp_path / "out.jsonl"
    assert _bench().main(["--wav_dir", str(tmp_path / "wav"), "--score", str(score),
                          "--conditions", "flat2", "monotone", "--out", str(out)]) == 0
    flat2, monotone = (json.loads(line) for line in out.read_text().splitlines())
    assert flat2["notes"] == 4 and flat2["skipped"] == 0  # the rest and the 0.1 s note left out
    assert abs(flat2["median_offset"] + 2) < 0.1 and abs(flat2["slope"] - 1) < 0.02 and flat2["corr"] > 0.999
    assert flat2["within_1_semitone"] == 0.0
    assert abs(monotone["slope"]) < 0.05 and monotone["per_singer"]["s1"]["notes"] == 4
