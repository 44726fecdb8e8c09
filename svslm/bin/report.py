"""Stage 6: RESULTS.md (the paper's Table 1 and Table 2 layout) and the static HTML report.

    python -m svslm.bin.report --eval_dir exp/eval/mini

Reads <eval_dir>/manifest.json (stage 6 inference) and <eval_dir>/scores/*.json (scoring);
writes <eval_dir>/RESULTS.md and <eval_dir>/report/index.html (+ report/img/).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from svslm.report.html import score_notes, write_report
from svslm.report.results_md import render_results
from svslm.report.scores import load_all_scores, load_manifest
from svslm.utils.fileio import atomic_write_text
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval_dir", required=True, help="stage 6 directory: manifest.json, wav/, scores/")
    parser.add_argument("--data_dir", default=None, help="test split with score.json (default: the manifest's)")
    parser.add_argument("--max_utts", type=int, default=0, help="utterances shown in the HTML report (0 = all)")
    parser.add_argument("--no_html", action="store_true", help="write RESULTS.md only")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    eval_dir = Path(args.eval_dir)
    try:
        manifest = load_manifest(eval_dir)
        scores = load_all_scores(eval_dir)
    except (FileNotFoundError, ValueError, json.JSONDecodeError) as err:
        log.error("%s", err)
        return 1
    if not scores:
        log.warning("%s/scores/ has no scores: the tables show every metric as missing", eval_dir)
    atomic_write_text(eval_dir / "RESULTS.md", render_results(str(eval_dir), manifest, scores))
    log.info("wrote %s", eval_dir / "RESULTS.md")
    if not args.no_html:
        data_dir = Path(args.data_dir or manifest["paths"]["data_dir"])
        page = write_report(eval_dir, manifest, scores, score_notes(data_dir), max_utts=args.max_utts)
        log.info("wrote %s", page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
