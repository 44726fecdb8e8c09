"""Stage 6: render every condition of the paper's Table 2 for a test split.

    python -m svslm.bin.infer --config conf/infer/tiny.yaml --data_dir data --split test --dump_dir dump \\
        --lm_dir exp/lm/mini --flow_root exp/flow/mini --vocoder_dir exp/vocoder/mini \\
        --out_dir exp/eval/mini --nj 2

Writes <out_dir>/wav/<condition>/<utt>.wav, <out_dir>/wav/reference/ and <out_dir>/manifest.json.
As a job array (run.sh --num_jobs N): `--job JOB --num_jobs N` renders every N-th utterance; a
last run without --job writes the manifest (and renders anything a killed job left).
"""
from __future__ import annotations

import argparse
import sys

from svslm.bin.args import add_override
from svslm.infer.run import run_infer_stage
from svslm.utils.jobs import add_job_args, job_from_args
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="inference YAML (conf/infer/*.yaml)")
    parser.add_argument("--data_dir", help="stage 1 output (data/), as for every entry point; the split is --split")
    parser.add_argument("--split", default="test", help="the split to render: <data_dir>/<split>/{wav.scp,utt2dur,score.json}")
    parser.add_argument("--dump_dir", help="stage 2 output: tokenizers/codec, <split>/codec_ssl.scp")
    parser.add_argument("--lm_dir", help="stage 3 run: best/, decode/<split>/codec_ssl.scp")
    parser.add_argument("--lm_scratch_dir", help="stage 3 run of the same fine-tuning from random weights "
                        "(decode/<split>/codec_ssl.scp): the 'LM from scratch + CD' condition only")
    parser.add_argument("--flow_root", help="stage 4 runs: one directory per flow config")
    parser.add_argument("--vocoder_dir", help="stage 5 run")
    parser.add_argument("--out_dir", help="where wav/ and manifest.json go")
    parser.add_argument("--print_plan", action="store_true",
                        help="print each (selected) condition's slug and the flow tag it renders with ('-': none), "
                             "one condition a line, and exit: run.sh trains those flows (conf/flow/<tag>.yaml) in stage 4")
    parser.add_argument("--nj", type=int, default=1, help="parallel synthesis processes")
    parser.add_argument("--conditions", nargs="+", default=None,
                        help="render only these (paper names or slugs, e.g. lm_flow2_voc); default: all in the config")
    add_job_args(parser)
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    missing = [f"--{k}" for k in ("data_dir", "dump_dir", "lm_dir", "flow_root", "vocoder_dir", "out_dir")
               if getattr(args, k) is None]
    if missing and not args.print_plan:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    try:
        job = job_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    return run_infer_stage(args.config, args.override, args.conditions, args.data_dir, args.split, args.dump_dir,
                           args.lm_dir, args.flow_root, args.vocoder_dir, args.out_dir, nj=args.nj, job=job,
                           print_plan=args.print_plan, lm_scratch_dir=args.lm_scratch_dir)


if __name__ == "__main__":
    sys.exit(main())
