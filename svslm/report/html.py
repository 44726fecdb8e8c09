"""The static report page, `<eval_dir>/report/index.html`: opens from a local file, no server.

A summary table (means ± 95% CI per system), then per test utterance: an audio player for the
reference and every condition, a figure (mel spectrograms, F0 over the score's notes) and the
utterance's metric values. Every link is relative, so the evaluation directory can be copied whole.
"""
from __future__ import annotations

import contextlib
import html
import json
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tqdm import tqdm

from svslm.infer.conditions import REFERENCE_SLUG
from svslm.report.plots import plot_utterance
from svslm.report.scores import (
    METRIC_BY_NAME,
    METRICS,
    Summary,
    SystemScores,
    metric_unit,
)
from svslm.utils.audio import load_wav
from svslm.utils.fileio import atomic_write_text
from svslm.utils.workers import process_pool

log = logging.getLogger(__name__)

CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td.na { color: #999; }
section { border-top: 2px solid #444; margin-top: 2em; padding-top: 0.5em; }
audio { height: 2em; width: 260px; }
img { max-width: 100%; }
nav a { margin-right: 0.8em; }
"""


def figure_name(utt: str) -> str:
    """A file name for `utt` that is safe everywhere (ids hold '#'), kept unique by a checksum."""
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', utt)}_{zlib.crc32(utt.encode()):08x}.png"


def href(path: str) -> str:
    """A relative URL: '#' in utterance ids would otherwise start a fragment."""
    return quote(path, safe="/")


def _value(value: Any, metric: str) -> str:
    if value is None:
        return '<td class="na">–</td>'
    if isinstance(value, dict) and "n/a" in value:
        return f'<td class="na" title="{html.escape(str(value["n/a"]))}">n/a</td>'
    decimals = METRIC_BY_NAME[metric].decimals if metric in METRIC_BY_NAME else 3
    return f"<td>{float(value):.{decimals}f}</td>"


def _summary(summary: Summary | None, metric: str) -> str:
    if summary is None:
        return '<td class="na">–</td>'
    if summary.na:
        return f'<td class="na" title="{html.escape(summary.na)}">n/a</td>'
    d = METRIC_BY_NAME[metric].decimals
    ci = f" ± {summary.ci95:.{d}f}" if summary.ci95 is not None else ""
    return f"<td>{summary.mean:.{d}f}{ci}</td>"


def _metric_header(scores: dict[str, SystemScores]) -> str:
    cells = []
    for m in METRICS:
        unit = metric_unit(m, scores)
        cells.append(f"<th>{m.name}{f' ({html.escape(unit)})' if unit else ''} {'↑' if m.higher_is_better else '↓'}</th>")
    return "".join(cells)


@dataclass
class _Figure:
    png: Path
    utt: str
    systems: list[tuple[str, Path]]  # (label, wav), the reference first
    notes: list[dict]


def _draw(fig: _Figure) -> str | None:
    """Draw one figure; None, or why it could not be drawn."""
    try:
        plot_utterance(fig.png, fig.utt, [(label, load_wav(w)) for label, w in fig.systems], fig.notes)
    except Exception as err:  # noqa: BLE001 - a figure that cannot be drawn must not cost the page
        return f"{fig.utt}: no figure ({type(err).__name__}: {err})"
    return None


def draw_figures(figures: list[_Figure], nj: int = 1) -> None:
    """Draw `figures` in `nj` processes (each figure is independent; matplotlib is single-threaded)."""
    with contextlib.ExitStack() as stack:
        if nj > 1 and len(figures) > 1:
            results = stack.enter_context(process_pool(min(nj, len(figures)))).imap_unordered(_draw, figures)
        else:
            results = map(_draw, figures)
        for problem in tqdm(results, total=len(figures), desc="report figures", unit="utt"):
            if problem:
                log.warning("%s", problem)


def write_report(
    eval_dir: Path,
    manifest: dict[str, Any],
    scores: dict[str, SystemScores],
    notes_by_utt: dict[str, list[dict]],
    max_utts: int = 0,
    nj: int = 1,
) -> Path:
    """Write report/index.html and report/img/*.png (drawn by `nj` processes); returns the page's
    path. A figure newer than every wav it shows is kept, so a re-run redraws only what changed."""
    report_dir = eval_dir / "report"
    systems = [("Ground truth", REFERENCE_SLUG)] + [
        (rec["name"], rec["slug"]) for rec in manifest.get("conditions", []) if rec.get("status") in ("done", "incomplete")
    ]
    utts = list(manifest.get("utterances", []))
    shown = utts[:max_utts] if max_utts > 0 else utts

    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>svslm report: {html.escape(str(eval_dir))}</title><style>{CSS}</style></head><body>",
        f"<h1>svslm evaluation: {html.escape(str(eval_dir))}</h1>",
        f"<p>{len(utts)} test utterances of <code>{html.escape(manifest['paths']['data_dir'])}</code>"
        + (f"; the first {len(shown)} are shown below" if len(shown) < len(utts) else "")
        + ". Hover over <em>n/a</em> for the reason. Numbers and their provenance: <a href='../RESULTS.md'>RESULTS.md</a>.</p>",
        "<h2>Summary (mean ± 95% CI)</h2><table><tr><th>System</th>" + _metric_header(scores) + "</tr>",
    ]
    for label, slug in systems:
        sc = scores.get(slug)
        cells = "".join(_summary(sc.metrics.get(m.name) if sc else None, m.name) for m in METRICS)
        parts.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    parts.append("</table>")
    parts.append("<nav>" + "".join(f"<a href='#{href(u)}'>{html.escape(u)}</a>" for u in shown) + "</nav>")

    present_by_utt = {utt: [(label, slug) for label, slug in systems if (eval_dir / "wav" / slug / f"{utt}.wav").is_file()]
                      for utt in shown}
    figure_of = {utt: report_dir / "img" / figure_name(utt) for utt in shown}
    figures = []
    for utt, present in present_by_utt.items():
        figure, wavs = figure_of[utt], [(label, eval_dir / "wav" / slug / f"{utt}.wav") for label, slug in present]
        if present and (not figure.is_file() or any(w.stat().st_mtime > figure.stat().st_mtime for _, w in wavs)):
            figures.append(_Figure(figure, utt, wavs, notes_by_utt.get(utt, [])))
    draw_figures(figures, nj)

    for utt, present in present_by_utt.items():
        figure = figure_of[utt]
        parts.append(f"<section id='{html.escape(utt)}'><h3>{html.escape(utt)}</h3>")
        if figure.is_file():
            parts.append(f"<img src='{href('img/' + figure.name)}' alt='mel spectrograms and F0 of {html.escape(utt)}'>")
        parts.append("<table><tr><th>System</th><th>Audio</th>" + _metric_header(scores) + "</tr>")
        for label, slug in systems:
            if (label, slug) in present:
                audio = f"<audio controls preload='none' src='{href(f'../wav/{slug}/{utt}.wav')}'></audio>"
            else:
                audio = "<em>not rendered</em>"
            values = (scores[slug].utts.get(utt, {}) if slug in scores else {})
            cells = "".join(_value(values.get(m.name), m.name) for m in METRICS)
            parts.append(f"<tr><td>{html.escape(label)}</td><td>{audio}</td>{cells}</tr>")
        parts.append("</table></section>")
    parts.append("</body></html>")
    page = report_dir / "index.html"
    atomic_write_text(page, "\n".join(parts) + "\n")
    return page


def score_notes(data_dir: Path) -> dict[str, list[dict]]:
    """utt -> score.json notes, or {} (figures then show no notes) when the file is not there."""
    path = data_dir / "score.json"
    if not path.is_file():
        log.warning("%s not found: figures show no score notes", path)
        return {}
    return {u: v.get("notes", []) for u, v in json.loads(path.read_text(encoding="utf-8"))["utts"].items()}
