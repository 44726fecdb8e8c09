"""Stage 6: RESULTS.md (the paper's Table 1 and Table 2 layout) and the static HTML report.

    python -m svslm.bin.report --eval_dir exp/eval/mini [--override max_utts=10 html=false]

Reads <eval_dir>/manifest.json (stage 6 inference) and <eval_dir>/scores/*.json (scoring);
writes <eval_dir>/RESULTS.md and <eval_dir>/report/index.html (+ report/img/).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from svslm.bin.args import add_override, options_from_overrides
from svslm.report.html import score_notes, write_report
from svslm.report.results_md import render_results
from svslm.report.scores import load_all_scores, load_manifest
from svslm.utils.fileio import atomic_write_text
from svslm.utils.logging import setup_logging


@dataclass
class ReportOptions:
    max_utts: int = 0  # utterances shown in the HTML report (0 = all)
    html: bool = True  # false: write RESULTS.md only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval_dir", required=True, help="stage 6 directory: manifest.json, wav/, scores/")
    parser.add_argument("--data_dir", default=None,
                        help="stage 1 output (data/), as for every entry point (default: the manifest's)")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    eval_dir = Path(args.eval_dir)
    try:
        opts = options_from_overrides(ReportOptions, args.override, "svslm.bin.report --override")
        manifest = load_manifest(eval_dir)
        scores = load_all_scores(eval_dir)
    except (FileNotFoundError, ValueError, json.JSONDecodeError) as err:  # ConfigError is a ValueError
        log.error("%s", err)
        return 1
    if not scores:
        log.warning("%s/scores/ has no scores: the tables show every metric as missing", eval_dir)
    atomic_write_text(eval_dir / "RESULTS.md", render_results(str(eval_dir), manifest, scores))
    log.info("wrote %s", eval_dir / "RESULTS.md")
    if opts.html:
        # The manifest records the rendered split's directory; --data_dir is the root above it.
        split_dir = Path(manifest["paths"]["data_dir"])
        data_dir = Path(args.data_dir) / manifest.get("split", split_dir.name) if args.data_dir else split_dir
        page = write_report(eval_dir, manifest, scores, score_notes(data_dir), max_utts=opts.max_utts)
        log.info("wrote %s", page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
