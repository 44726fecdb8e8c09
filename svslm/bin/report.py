"""Stage 6: RESULTS.md (the paper's Table 1 and Table 2 layout) and the static HTML report.

    python -m svslm.bin.report --eval_dir exp/eval/mini [--nj 2] [--override max_utts=10 html=false]

Reads <eval_dir>/manifest.json (stage 6 inference) and <eval_dir>/scores/*.json (scoring);
writes <eval_dir>/RESULTS.md and <eval_dir>/report/index.html (+ report/img/).
"""
from __future__ import annotations

import argparse
import sys

from svslm.bin.args import add_override, options_from_overrides
from svslm.report.build import ReportOptions, write_results
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval_dir", required=True, help="stage 6 directory: manifest.json, wav/, scores/")
    parser.add_argument("--data_dir", default=None,
                        help="stage 1 output (data/), as for every entry point (default: the manifest's)")
    parser.add_argument("--nj", type=int, default=1, help="processes drawing the report's figures")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    try:
        opts = options_from_overrides(ReportOptions, args.override, "svslm.bin.report --override")
    except ValueError as err:  # ConfigError is a ValueError
        log.error("%s", err)
        return 1
    return write_results(args.eval_dir, opts, args.data_dir, args.nj)


if __name__ == "__main__":
    sys.exit(main())
