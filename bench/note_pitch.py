"""Are the notes sung? Per note of the score, the median F0 a condition sings against the note's MIDI.

F0_CORR says how well two F0 tracks agree frame by frame; this says what went wrong when they do
not: a condition that sings every note a few semitones flat (offset), one that squeezes the
melody toward one pitch (slope below 1), and one that does not follow the notes at all within a
voice (correlation per singer near 0) all give a low F0_CORR. For every note of at least
`--min_note` seconds (rests left out), F0 is the one stage 6 scores (svslm.evaluate.mcd_f0's WORLD
analysis with VERSA's settings) over the note less `--margin` at each end, in MIDI semitones;
notes with fewer than 5 voiced frames are skipped and counted.

    python bench/note_pitch.py --wav_dir exp/eval/mini/wav --score data/test/score.json \\
        --conditions reference cd_resynthesis lm_cd lm_flow2_voc --out bench/results/lm_follow/note_pitch.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from svslm.evaluate.mcd_f0 import McdF0Config, world_features
from svslm.utils.audio import SAMPLE_RATE, load_wav
from svslm.utils.fileio import append_jsonl


def sung_notes(wav: Path, notes: list[dict], min_note: float, margin: float) -> tuple[list[tuple[int, float]], int]:
    """([(note MIDI, median sung MIDI)], notes skipped for too few voiced frames)."""
    cfg = McdF0Config()
    f0 = world_features(load_wav(wav, SAMPLE_RATE), cfg).f0
    t = np.arange(f0.size) * cfg.frame_shift_ms / 1000
    out, skipped = [], 0
    for n in notes:
        if n["midi"] == 0 or n["end"] - n["start"] < min_note:
            continue
        inside = (t >= n["start"] + margin) & (t < n["end"] - margin) & (f0 > 0)
        if inside.sum() < 5:
            skipped += 1
            continue
        out.append((int(n["midi"]), float(np.median(12 * np.log2(f0[inside] / 440) + 69))))
    return out, skipped


def summary(pairs: list[tuple[int, float]]) -> dict:
    written, sung = np.array(pairs, dtype=float).T
    offset = sung - written
    return {"notes": len(pairs),
            "corr": round(float(np.corrcoef(written, sung)[0, 1]), 3) if np.ptp(written) > 0 else None,
            "median_offset": round(float(np.median(offset)), 2),
            "within_1_semitone": round(float(np.mean(np.abs(offset) < 1)), 3),
            "slope": round(float(np.polyfit(written, sung, 1)[0]), 3) if np.ptp(written) > 0 else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav_dir", type=Path, required=True, help="stage 6's wav/ (a folder per condition)")
    parser.add_argument("--score", type=Path, required=True, help="the split's score.json (stage 1)")
    parser.add_argument("--conditions", nargs="+", required=True)
    parser.add_argument("--min_note", type=float, default=0.15, help="shortest note scored (s)")
    parser.add_argument("--margin", type=float, default=0.03, help="left out at each end of a note (s)")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, help="JSON lines, appended")
    args = parser.parse_args(argv)
    score = json.loads(args.score.read_text(encoding="utf-8"))["utts"]
    for condition in args.conditions:
        by_singer: dict[str, list] = {}
        skipped = 0
        for utt, entry in sorted(score.items()):
            wav = args.wav_dir / condition / f"{utt}.wav"
            if not wav.is_file():
                raise SystemExit(f"{wav}: no such file (condition {condition}, utterance {utt})")
            pairs, n_skipped = sung_notes(wav, entry["notes"], args.min_note, args.margin)
            by_singer.setdefault(utt.split("#")[0], []).extend(pairs)
            skipped += n_skipped
        line = {"label": args.label, "condition": condition, "skipped": skipped,
                **summary([p for pairs in by_singer.values() for p in pairs]),
                "per_singer": {s: summary(p) for s, p in sorted(by_singer.items())}}
        print(json.dumps(line), flush=True)
        if args.out:
            append_jsonl(args.out, line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
