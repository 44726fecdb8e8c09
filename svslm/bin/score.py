"""Score any system's wavs against references: `svslm score REF_DIR HYP_DIR --out_dir OUT`.

    python -m svslm.bin.score REF_DIR HYP_DIR --out_dir OUT [--config conf/score/tiny.yaml] \\
        [--text data/test/text --asr_dir exp/asr/mini] [--nj 2]

Wavs are matched by file name (`<utt>.wav` in both directories); names found on one side only
are listed in the output. `--text` (Kaldi `<utt> <phn> ...`) gives the phones PER is counted
against and `--asr_dir` the recipe's CTC recogniser (`svslm.bin.asr_train`); without them PER
is n/a. Writes OUT/scores.json (per utterance, means with 95% confidence intervals, units,
modes, n/a reasons) and OUT/scores.md.
"""
from __future__ import annotations

import argparse
import sys

from svslm.bin.args import add_override
from svslm.evaluate.config import MetricsConfig
from svslm.evaluate.directories import score_wav_dirs, use_asr_dir
from svslm.utils.config import from_dict, load_config
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ref_dir", help="directory of reference <utt>.wav")
    parser.add_argument("hyp_dir", help="directory of synthesized <utt>.wav")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--config", default=None, help="scoring YAML (conf/score/*.yaml); default: built-in defaults")
    parser.add_argument("--text", default=None, help="Kaldi text with the reference phones, for PER")
    parser.add_argument("--asr_dir", default="", help="CTC recogniser (asr_train output) for PER when the config leaves it empty")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    parser.add_argument("--name", default=None, help="name of the scored system (default: HYP_DIR's name)")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    cfg = load_config(args.config, MetricsConfig, args.override) if args.config else from_dict(MetricsConfig, {})
    use_asr_dir(cfg, args.asr_dir)
    return score_wav_dirs(args.ref_dir, args.hyp_dir, args.out_dir, cfg, args.text, args.nj, args.name)


if __name__ == "__main__":
    sys.exit(main())
