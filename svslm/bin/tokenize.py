"""Stage 2: scores and audio -> svs_lb and codec_ssl tokens, speaker prompts, token lists, data.json.

    python -m svslm.bin.tokenize --config conf/tokenize/tiny.yaml --data_dir data --dump_dir dump --nj 2

As a job array (run.sh with --num_jobs N through cmd.sh): once with --part prepare, then
`--job JOB --num_jobs N` for JOB = 1..N (each tokenizes its shards), then once as above to merge.
"""
from __future__ import annotations

import argparse
import sys

from svslm.bin.args import add_override
from svslm.tokenize.config import TokenizeConfig
from svslm.tokenize.pipeline import BadUtterancesError, run_tokenize
from svslm.utils.config import ConfigError, load_config
from svslm.utils.jobs import add_job_args, job_from_args
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="tokenization YAML (conf/tokenize/*.yaml)")
    parser.add_argument("--data_dir", required=True, help="stage 1 output: <data_dir>/<split>/")
    parser.add_argument("--dump_dir", required=True, help="where dump/ goes")
    parser.add_argument("--nj", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--skip_bad", choices=["true", "false"], default=None,
                        help="override the config's skip_bad: continue without bad utterances")
    parser.add_argument("--part", choices=["all", "prepare"], default="all",
                        help="prepare: only fit/configure the tokenizers and write the token lists")
    parser.add_argument("--pretrained_tokenizers", default=None,
                        help="directory with codec/ and ssl/ fitted elsewhere (e.g. local/mini_zoo/models/tokenizers): "
                             "used instead of fitting them on the config's fit_split")
    add_job_args(parser)
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    overrides = list(args.override) + ([f"skip_bad={args.skip_bad}"] if args.skip_bad else [])
    try:
        cfg = load_config(args.config, TokenizeConfig, overrides)
        job = job_from_args(args)
        counts = run_tokenize(cfg, args.data_dir, args.dump_dir, nj=args.nj, part=args.part, job=job,
                              pretrained_dir=args.pretrained_tokenizers)
    except (ConfigError, BadUtterancesError, FileNotFoundError, ImportError, ValueError) as err:
        log.error("%s", err)
        return 1
    if args.part == "prepare" or job is not None:
        log.info("stage 2 %s done", "preparation" if job is None else job)
        return 0
    log.info("stage 2 done: %s", ", ".join(f"{s} {n} utterances" for s, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
