"""Reading what stage 6 wrote into an evaluation directory: manifest.json and scores/*.json.

The scores of one system (`scores/<slug>.json`, written by `svslm.bin.score_eval`):
    {"condition": <slug or name>,
     "metrics": {<metric>: {"mean": x, "ci95": half-width | [lo, hi], "n": k, "unit": "Hz",
                            "mode": "dtw: false" | {"dtw": false}, ...} | {"n/a": <reason>}},
     "utts": {<utt>: {<metric>: x | {"n/a": <reason>}}}}
Metric keys are matched to the paper's columns ignoring case and punctuation (`f0_rmse`,
`F0_RMSE` and `F0-RMSE` are one column).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svslm.infer.conditions import BY_NAME, BY_SLUG, CONDITIONS, REFERENCE_SLUG


@dataclass(frozen=True)
class Metric:
    name: str  # the paper's column name
    higher_is_better: bool
    unit: str  # default unit when the scores do not state one
    mode_dependent: bool  # depends on the F0/MCD mode (dtw true/false)
    decimals: int  # shown in tables


METRICS: tuple[Metric, ...] = (
    Metric("F0_RMSE", False, "Hz", True, 1),
    Metric("F0_CORR", True, "", True, 3),
    Metric("MCD", False, "dB", True, 2),
    Metric("PER", False, "%", False, 1),
    Metric("Singer-Sim", True, "", False, 3),
    Metric("SingMOS", True, "", False, 2),
    Metric("Sheet-SSQA", True, "", False, 2),
    Metric("DNSMOS", True, "", False, 2),
)
METRIC_BY_NAME = {m.name: m for m in METRICS}
_BY_KEY = {re.sub(r"[^a-z0-9]", "", m.name.lower()): m.name for m in METRICS}


def canonical_metric(key: str) -> str:
    """The paper's column for a metric key, or the key itself for a metric outside the paper's tables."""
    return _BY_KEY.get(re.sub(r"[^a-z0-9]", "", key.lower()), key)


def mode_text(mode: Any) -> str:
    """`{"dtw": false}` or "dtw: false" -> "dtw: false"."""
    if isinstance(mode, dict):
        return ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in mode.items())
    return str(mode) if mode not in (None, "") else ""


@dataclass
class Summary:
    """One metric of one system: mean with a 95% confidence half-width, or n/a with the reason."""

    mean: float | None = None
    ci95: float | None = None
    n: int | None = None
    unit: str = ""
    mode: str = ""
    na: str = ""  # reason, when the metric could not be computed at all

    @classmethod
    def from_json(cls, value: Any, metric: str) -> "Summary":
        if isinstance(value, dict) and "n/a" in value:
            return cls(na=str(value["n/a"]))
        if isinstance(value, (int, float)):
            return cls(mean=float(value))
        if not isinstance(value, dict) or value.get("mean") is None:
            return cls(na=f"no mean in the scores of {metric}")
        ci = value.get("ci95")
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            ci = (float(ci[1]) - float(ci[0])) / 2.0
        return cls(mean=float(value["mean"]), ci95=None if ci is None else float(ci), n=value.get("n"),
                   unit=str(value.get("unit") or ""), mode=mode_text(value.get("mode")))


@dataclass
class SystemScores:
    slug: str
    name: str
    path: Path
    metrics: dict[str, Summary] = field(default_factory=dict)  # canonical metric -> summary
    utts: dict[str, dict[str, Any]] = field(default_factory=dict)  # utt -> metric -> float | {"n/a": reason}


def system_name(slug_or_name: str) -> tuple[str, str]:
    """(slug, display name) of a condition, the reference, or an outside system."""
    if slug_or_name in BY_SLUG:
        return slug_or_name, BY_SLUG[slug_or_name].name
    if slug_or_name in BY_NAME:
        return BY_NAME[slug_or_name].slug, slug_or_name
    if slug_or_name == REFERENCE_SLUG:
        return REFERENCE_SLUG, "Ground truth"
    return slug_or_name, slug_or_name


def metric_unit(metric: Metric, scores: dict[str, SystemScores]) -> str:
    """The unit the scores state for `metric` (all of them if systems disagree), else its default."""
    units = {s.metrics[metric.name].unit for s in scores.values() if metric.name in s.metrics} - {""}
    return " / ".join(sorted(units)) if units else metric.unit


def metric_modes(metric: Metric, scores: dict[str, SystemScores]) -> list[str]:
    """The F0/MCD modes the scores of `metric` were computed in."""
    return sorted({s.metrics[metric.name].mode for s in scores.values() if metric.name in s.metrics} - {""})


def load_system_scores(path: Path) -> SystemScores:
    data = json.loads(path.read_text(encoding="utf-8"))
    slug, name = system_name(str(data.get("condition") or path.stem))
    out = SystemScores(slug, name, path)
    for key, value in (data.get("metrics") or {}).items():
        out.metrics[canonical_metric(key)] = Summary.from_json(value, key)
    for utt, values in (data.get("utts") or {}).items():
        out.utts[utt] = {canonical_metric(k): v for k, v in (values or {}).items()}
    return out


def load_all_scores(eval_dir: Path) -> dict[str, SystemScores]:
    """slug -> scores of every `scores/*.json` except `summary.json`, in the paper's row order."""
    found = {}
    for path in sorted((eval_dir / "scores").glob("*.json")):
        if path.name == "summary.json":
            continue
        try:
            scores = load_system_scores(path)
        except (json.JSONDecodeError, OSError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"{path}: unreadable scores ({err})") from err
        found[scores.slug] = scores
    order = [REFERENCE_SLUG] + [c.slug for c in CONDITIONS]
    return dict(sorted(found.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


def load_manifest(eval_dir: Path) -> dict[str, Any]:
    path = eval_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m svslm.bin.infer` (stage 6) first")
    return json.loads(path.read_text(encoding="utf-8"))
