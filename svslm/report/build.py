"""Stage 6's last step: RESULTS.md and the HTML report of an evaluation directory."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from svslm.report.html import score_notes, write_report
from svslm.report.results_md import render_results
from svslm.report.scores import load_all_scores, load_manifest
from svslm.utils.fileio import atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class ReportOptions:
    max_utts: int = 0  # utterances shown in the HTML report (0 = all)
    html: bool = True  # false: write RESULTS.md only


def write_results(eval_dir: str | Path, opts: ReportOptions, data_dir: str | Path | None = None, nj: int = 1) -> int:
    """Write <eval_dir>/RESULTS.md (and report/index.html unless `opts.html` is false) from its
    manifest.json and scores/; 0, or 1 (logged) when they cannot be read. `data_dir`: stage 1's
    output directory (default: the one the manifest records); `nj`: processes drawing the figures."""
    eval_dir = Path(eval_dir)
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
    if opts.html:
        # The manifest records the rendered split's directory; data_dir is the root above it.
        split_dir = Path(manifest["paths"]["data_dir"])
        split_data = Path(data_dir) / manifest.get("split", split_dir.name) if data_dir else split_dir
        page = write_report(eval_dir, manifest, scores, score_notes(split_data), max_utts=opts.max_utts, nj=nj)
        log.info("wrote %s", page)
    return 0
