"""Does the LM read its score? Teacher-forced loss and accuracy with the utterance's own score, with
another utterance's score, and with the score's pitches moved.

An LM that follows the score predicts its target better from the right score than from a wrong
one; an LM that only continues the speaker prompt and its own history scores the same with any.
For each of the first `--n_utts` utterances of a split (sorted ids), the `svs` example is built
as in training (svslm.lm.sequence.build_example, the checkpoint's own sequence settings) with

    own        the utterance's svs_lb
    other      the svs_lb of the utterance `--offset` places further on (wrapping), cut or
               repeated to the utterance's frame count, so that only the content differs
    pitch+K    its own svs_lb with every non-rest MIDI token moved by K semitones (--shifts)

and the model's loss (ESPnet's criterion, as lm_train computes it) and per-stream accuracy are
averaged over the utterances. Writes one JSON line per condition (appended to --out) and prints them;
`--per_utterance` writes one line per utterance and condition instead, with its frame count, to see
how the gap depends on the utterance's length (bench/results/recipe.md, tenth pass).

    python bench/lm_condition_use.py --model_dir exp/lm/mini/best --data_json dump/test/data.json \\
        --label "fine-tuned on mini" --out bench/results/lm_follow/condition_use.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svslm.lm.data import read_data_json
from svslm.lm.inference import load_lm
from svslm.lm.sequence import build_example, collate
from svslm.utils.fileio import append_jsonl

REST_PITCH = "svs_0"


def frames(svs_lb: list[str]) -> list[list[str]]:
    """The flat svs_lb (phone, pitch per frame) as [[phone, pitch], ...]."""
    return [svs_lb[i : i + 2] for i in range(0, len(svs_lb), 2)]


def fit_frames(svs_lb: list[str], n: int) -> list[str]:
    """`svs_lb` cut, or repeated from its start, to `n` frames."""
    units = frames(svs_lb)
    units = (units * (n // len(units) + 1))[:n]
    return [t for u in units for t in u]


def shift_pitch(svs_lb: list[str], semitones: int) -> list[str]:
    """Every non-rest pitch token moved by `semitones` (clipped to MIDI 1..127)."""
    out = []
    for phone, pitch in frames(svs_lb):
        if pitch != REST_PITCH:
            pitch = f"svs_{int(np.clip(int(pitch[4:]) + semitones, 1, 127))}"
        out += [phone, pitch]
    return out


def condition_use(model_dir: Path, data_json: Path, n_utts: int = 16, offset: int = 5,
                  shifts: tuple[int, ...] = (5, -5), per_utterance: bool = False) -> list[dict]:
    """{score, loss, acc: [per stream]} for each condition (own, other, pitch+K), averaged over the
    first `n_utts` utterances of `data_json`; with `per_utterance`, one such line per utterance
    (with `utt` and its target `frames`) instead of the mean."""
    model, vocab = load_lm(model_dir, "cpu")
    model.eval()
    split = read_data_json(data_json)
    utts = sorted(split.utt_ids)[:n_utts]
    if len(utts) < 2 or offset % len(utts) == 0:
        raise SystemExit(f"{data_json}: the 'other' score needs another utterance: {len(utts)} utterance(s), offset {offset}")
    conditions = {"own": lambda i, lb: lb,
                  "other": lambda i, lb: fit_frames(list(split.svs_lb[utts[(i + offset) % len(utts)]]), len(lb) // 2)}
    for k in shifts:
        conditions[f"pitch{k:+d}"] = lambda i, lb, k=k: shift_pitch(lb, k)
    lines = []
    for name, make in conditions.items():
        rows = []
        for i, utt in enumerate(utts):
            svs_lb = make(i, list(split.svs_lb[utt]))
            seq, mask = build_example(vocab, svs_lb, split.prompt(utt), split.target(utt), utt, model.sequence)
            batch = collate([(utt, seq, mask)], vocab.pad)
            with torch.no_grad():
                loss, stats = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
            rows.append([float(loss)] + [float(stats[f"acc_stream{n}"]) for n in range(model.nq)])
            if per_utterance:
                lines.append({"utt": utt, "frames": len(svs_lb) // 2, "score": name, "loss": round(rows[-1][0], 4),
                              "acc": [round(a, 4) for a in rows[-1][1:]]})
        if per_utterance:
            continue
        mean = np.mean(rows, axis=0)
        lines.append({"n_utts": len(utts), "score": name, "loss": round(float(mean[0]), 4),
                      "acc": [round(float(a), 4) for a in mean[1:]]})
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", type=Path, required=True, help="LM checkpoint dir (config.yaml, hf_config/, model.pth)")
    parser.add_argument("--data_json", type=Path, required=True, help="a split's data.json (with codec_ssl targets)")
    parser.add_argument("--n_utts", type=int, default=16)
    parser.add_argument("--offset", type=int, default=5, help="the 'other' score: the utterance this many places on")
    parser.add_argument("--shifts", type=int, nargs="*", default=[5, -5], help="pitch moves in semitones")
    parser.add_argument("--per_utterance", action="store_true", help="a line per utterance, not the mean")
    parser.add_argument("--label", default="", help="written into every line")
    parser.add_argument("--out", type=Path, help="JSON lines, appended")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for line in condition_use(args.model_dir, args.data_json, args.n_utts, args.offset, tuple(args.shifts),
                              args.per_utterance):
        line = {"label": args.label, "model_dir": str(args.model_dir), "data_json": str(args.data_json), **line}
        print(json.dumps(line), flush=True)
        if args.out:
            append_jsonl(args.out, line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
