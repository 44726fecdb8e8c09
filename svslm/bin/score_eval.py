"""Stage 6 scoring: every condition of an evaluation directory against the test references.

    python -m svslm.bin.score_eval --config conf/score/tiny.yaml --data_dir data [--split test] \\
        --eval_dir exp/eval/mini [--asr_dir exp/asr/mini] --nj 2

`--data_dir` is stage 1's output directory, as for every entry point (`svslm.bin.infer` too).
Scores each `<eval_dir>/wav/<condition>/<utt>.wav` against `<data_dir>/<split>/wav.scp` (phones
for PER from `<data_dir>/<split>/text`), and the references against themselves as the `Ground truth`
row (its PER is the recogniser's ceiling; its MOS the corpus's). Writes
`<eval_dir>/scores/<condition>.json` + `.md`, `scores/ground_truth.json` + `.md`, and
`scores/summary.json` + `summary.md`. A condition whose scores exist for the same wavs and
config is not scored again. `--asr_dir` is the `ctc` recogniser's directory (stage 6's
`svslm.bin.asr_train` output) when the config leaves its `model_dir` empty; without either, PER is n/a.
"""
from __future__ import annotations

import argparse
import sys

from svslm.bin.args import add_override
from svslm.evaluate.config import MetricsConfig
from svslm.evaluate.directories import score_eval_dir, use_asr_dir
from svslm.utils.config import load_config
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="scoring YAML (conf/score/*.yaml)")
    parser.add_argument("--data_dir", required=True, help="stage 1 output (data/), as for every entry point")
    parser.add_argument("--split", default="test", help="the scored split: <data_dir>/<split>/{wav.scp,text}")
    parser.add_argument("--eval_dir", required=True, help="stage 6 evaluation directory (wav/<condition>/)")
    parser.add_argument("--asr_dir", default="", help="CTC recogniser (asr_train output) for PER when the config leaves it empty")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    cfg = load_config(args.config, MetricsConfig, args.override)
    use_asr_dir(cfg, args.asr_dir)
    return score_eval_dir(cfg, args.data_dir, args.split, args.eval_dir, args.nj)


if __name__ == "__main__":
    sys.exit(main())
