"""RESULTS.md: our numbers in the layout of the paper's Table 1 and Table 2, published rows beside them.

Every cell is a mean ± 95% confidence half-width over test utterances, `n/a [k]` with the reason
in note k when a metric could not be computed, or `–` where a published row reports nothing.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from svslm.infer.conditions import CONDITIONS, REFERENCE_SLUG, get_condition
from svslm.report.published import PUBLISHED, PublishedRow
from svslm.report.scores import (
    GROUND_TRUTH_FILE,
    METRIC_BY_NAME,
    METRICS,
    Metric,
    Summary,
    SystemScores,
    metric_modes,
    metric_unit,
)

FINAL_CONDITION = "LM + Flow1 + Voc"  # the paper's system in Table 1 (arXiv 2512.14657)


@dataclass
class Notes:
    """Numbered notes shared by the tables; one number per distinct text."""

    texts: list[str] = field(default_factory=list)

    def ref(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def markdown(self) -> str:
        return "\n".join(f"{i}. {t}" for i, t in enumerate(self.texts, 1))


def header(scores: dict[str, SystemScores], first: str) -> str:
    cells = [first]
    for m in METRICS:
        unit = metric_unit(m, scores)
        cells.append(f"{m.name}{f' ({unit})' if unit else ''} {'↑' if m.higher_is_better else '↓'}")
    return "| " + " | ".join(cells) + " |\n|" + "---|" * len(cells)


def cell(summary: Summary | None, metric: Metric, notes: Notes, system: str) -> str:
    if summary is None:
        return "n/a " + notes.ref(f"{metric.name}: not scored (not in the score config's `metrics`)")
    if summary.na:
        return "n/a " + notes.ref(f"{metric.name}: {summary.na}")
    text = f"{summary.mean:.{metric.decimals}f}"
    if summary.ci95 is not None:
        text += f" ± {summary.ci95:.{metric.decimals}f}"
    return text


def our_row(label: str, scores: SystemScores | None, status: dict[str, Any] | None, notes: Notes) -> str:
    if scores is None:
        if status and status.get("status") in ("skipped", "failed"):
            reason = f"{label}: not rendered ({status['status']}: {status.get('reason', '')})"
        else:
            slug = status["slug"] if status else "?"
            reason = f"{label}: no scores/{slug}.json (run `python -m svslm.bin.score_eval`)"
        return f"| {label} | " + " | ".join(["—"] * (len(METRICS) - 1) + ["— " + notes.ref(reason)]) + " |"
    if scores.unscored:
        listed = "; ".join(f"{u} ({why})" for u, why in list(scores.unscored.items())[:5])
        more = f" and {len(scores.unscored) - 5} more" if len(scores.unscored) > 5 else ""
        label += " " + notes.ref(f"{label}: {len(scores.unscored)} test utterance(s) not scored: {listed}{more}")
    return f"| {label} | " + " | ".join(cell(scores.metrics.get(m.name), m, notes, label) for m in METRICS) + " |"


def metric_sources(scores: dict[str, SystemScores]) -> list[str]:
    """One line per metric computed: unit, mode and the model or method behind it."""
    lines = []
    names = list(dict.fromkeys([m.name for m in METRICS] + [k for s in scores.values() for k in s.metrics]))
    for name in names:
        found = [s for s in scores.values() if name in s.metrics]
        if not found:
            continue
        summary, source = found[0].metrics[name], found[0].sources.get(name, "")
        detail = ", ".join(x for x in (summary.unit, f"`{summary.mode}`" if summary.mode else "") if x)
        lines.append(f"- {name}{f' ({detail})' if detail else ''}: {source or 'source not stated'}")
    return lines


def other_metrics_table(scores: dict[str, SystemScores], notes: Notes) -> list[str]:
    """Metrics the scorer computed beyond the paper's columns (e.g. DNSMOS SIG/BAK, a second ASR)."""
    extra = list(dict.fromkeys(k for s in scores.values() for k in s.metrics if k not in METRIC_BY_NAME))
    if not extra:
        return []
    lines = ["| System | " + " | ".join(extra) + " |", "|" + "---|" * (len(extra) + 1)]
    for sc in scores.values():
        cells = []
        for name in extra:
            summary = sc.metrics.get(name)
            if summary is None or summary.na:
                cells.append("n/a " + notes.ref(f"{name}: {summary.na if summary else 'not computed'}"))
            else:
                cells.append(f"{summary.mean:.3f}" + (f" ± {summary.ci95:.3f}" if summary.ci95 is not None else ""))
        lines.append(f"| {sc.name} | " + " | ".join(cells) + " |")
    return lines


def published_row(row: PublishedRow, tag: str) -> str:
    label = f"*{row.system} (published {tag}, {row.mode})*"
    def decimals(m: Metric) -> int:
        if row.printed_decimals is None:
            return m.decimals
        return max(0, row.printed_decimals - 2) if m.name == "PER" else row.printed_decimals

    values = [f"*{row.values[m.name]:.{decimals(m)}f}*" if m.name in row.values else "–" for m in METRICS]
    return f"| {label} | " + " | ".join(values) + " |"


def _file(rec: dict[str, Any] | None) -> str:
    if not rec:
        return "–"
    return f"`{rec['path']}`" + (f" ({rec['modified']})" if rec.get("modified") else " (missing)" if rec.get("missing") else "")


def provenance(manifest: dict[str, Any]) -> str:
    lines = [
        (f"Inference config: `{manifest['infer_config']['path']}`; split `{manifest.get('split', '?')}` "
         f"(`{manifest['paths']['data_dir']}`), {len(manifest.get('utterances', []))} utterances, "
         f"`--nj {manifest.get('nj', '?')}`."),
        "",
        "| Condition | wavs | tokens | flow (tag, steps, guidance, seed) | checkpoints | synthesis RTF |",
        "|---|---|---|---|---|---|",
    ]
    for rec in manifest.get("conditions", []):
        comp = rec.get("components", {})
        flow = "–"
        if rec.get("flow_tag"):
            flow = f"`{rec['flow_tag']}`, {rec.get('n_steps')}, {rec.get('guidance')}, {rec.get('seed')}"
        ckpts = "<br>".join(f"{k.replace('_', ' ')}: {_file(v)}" for k, v in comp.items() if k != "tokens")
        rtf = rec.get("timing", {}).get("rtf")
        status = "" if rec.get("status") == "done" else f" ({rec.get('status')})"
        lines.append(f"| {rec['name']}{status} | `{rec['wav_dir']}` | {_file(comp.get('tokens'))} | {flow} | "
                     f"{ckpts or '–'} | {'–' if rtf is None else f'{rtf:.3f}'} |")
    lines += ["", ("Synthesis RTF: compute seconds per second of audio in this run (`--nj` jobs, first-call costs "
                   "included; the LM decode of stage 3 not included); bench/results/synthesis.md has controlled numbers.")]
    return "\n".join(lines)


def render_results(
    eval_dir: str,
    manifest: dict[str, Any],
    scores: dict[str, SystemScores],
    published: tuple[PublishedRow, ...] = PUBLISHED,
) -> str:
    notes = Notes()
    status = {rec["slug"]: rec for rec in manifest.get("conditions", [])}
    final = get_condition(FINAL_CONDITION)
    sources = list(dict.fromkeys(row.source for row in published))
    tags = {src: f"[P{i + 1}]" for i, src in enumerate(sources)}

    modes = {m.name: ", ".join(metric_modes(m, scores)) or "not stated" for m in METRICS if m.mode_dependent}
    by_mode: dict[str, list[str]] = {}
    for name, mode in modes.items():
        by_mode.setdefault(mode, []).append(name)
    mode_line = "; ".join(f"{', '.join(names)}: `{mode}`" for mode, names in by_mode.items())
    out = [
        f"# Results: `{eval_dir}`",
        "",
        (f"{len(manifest.get('utterances', []))} test utterances of `{manifest['paths']['data_dir']}`; written "
         f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')} by `python -m svslm.bin.report`."),
        ("Cells: mean ± 95% confidence half-width over utterances; ↑ higher is better, ↓ lower is better; "
         "`n/a [k]`: not computable, reason in note k; `–`: not reported by the published source."),
        (f"F0 and MCD mode (VERSA `mcd_f0`): {mode_line}. Published rows scored in another mode are not "
         "directly comparable with ours."),
        "",
        "## Table 1: the full system beside published systems",
        "",
        header(scores, "System"),
        our_row("Ground truth (ours)", scores.get(REFERENCE_SLUG), {"slug": GROUND_TRUTH_FILE}, notes),
    ]
    # The published systems in the paper's order, ours right after the paper's own row of it.
    ours_final = our_row(f"{final.name} (ours)", scores.get(final.slug), status.get(final.slug), notes)
    table1 = [row for row in published if row.table == 1]
    for row in table1:
        out.append(published_row(row, tags[row.source]))
        if row.system == final.name:
            out.append(ours_final)
    if not any(row.system == final.name for row in table1):
        out.append(ours_final)
    other_modes = sorted({row.mode for row in published} - set(by_mode))
    if other_modes:
        out += ["", (f"Published rows marked `{', '.join(other_modes)}` were scored in another mode than ours "
                     f"(`{', '.join(by_mode)}`): their F0_RMSE, F0_CORR and MCD are not directly comparable.")]
    out += ["", "## Table 2: recipe ablation (the paper's conditions)", "", header(scores, "Condition")]
    out.append(our_row("Ground truth", scores.get(REFERENCE_SLUG), {"slug": GROUND_TRUTH_FILE}, notes))
    table2 = [row for row in published if row.table == 2]
    for cond in CONDITIONS:  # the paper's row order; each published row beside our row of the condition
        if cond.slug in status or cond.slug in scores:  # selected in this run
            label = cond.name + (" (vocoder ceiling; not in the paper)" if cond.name == "GT mel + Voc" else "")
            out.append(our_row(label, scores.get(cond.slug), status.get(cond.slug), notes))
        out += [published_row(row, tags[row.source]) for row in table2 if row.system == cond.name]
    out += [published_row(row, tags[row.source]) for row in table2 if row.system not in {c.name for c in CONDITIONS}]
    for slug, sc in scores.items():  # systems scored here that are not recipe conditions
        if slug != REFERENCE_SLUG and slug not in {c.slug for c in CONDITIONS}:
            out.append(our_row(sc.name, sc, None, notes))
    other = other_metrics_table(scores, notes)
    if other:
        out += ["", "Other metrics computed (not in the paper's tables):", ""] + other
    if notes.texts:
        out += ["", "Notes:", "", notes.markdown()]
    out += ["", "Published sources:", ""]
    out += [f"- {tags[src]} {src}." for src in sources] or ["- none"]
    out += [f"- {row.system} {tags[row.source]}: {row.note}." for row in published if row.note]
    out += ["", "## How these rows were made", "", provenance(manifest), "",
            "Metrics (unit, mode, source); the full scoring config is `config` in `scores/summary.json`:", ""]
    out += metric_sources(scores) or ["- no scores yet"]
    return "\n".join(out) + "\n"
