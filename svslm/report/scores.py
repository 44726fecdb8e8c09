"""Reading what stage 6 wrote into an evaluation directory: manifest.json and scores/*.json.

`scores/<slug>.json` is a `svslm.evaluate.scorer.ScoreReport` (written by `svslm.bin.score_eval`):
    {"name": ..., "metrics": {<metric>: {"unit", "better", "source", "mode"}},
     "summary": {<metric>: {"mean", "ci95" (half-width or null), "n", "n_na"} | {"n/a": <reason>}},
     "utts": {<utt>: {<metric>: value | {"n/a": <reason>}}},
     "errors": {<utt>: <why not scored>}, "only_in_ref": [<test utts without a wav>], ...}
The recordings' own scores are `scores/ground_truth.json`.
"""
from __future__ import annotations

import json
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
GROUND_TRUTH_FILE = "ground_truth"  # scores/ground_truth.json: the references scored as a system


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
    def from_json(cls, value: Any, info: dict[str, Any]) -> Summary:
        """A `summary` entry of a ScoreReport, with its metric's `metrics` entry (unit, mode)."""
        unit, mode = str(info.get("unit") or ""), mode_text(info.get("mode"))
        if isinstance(value, dict) and "n/a" in value:
            return cls(na=str(value["n/a"]), unit=unit, mode=mode)
        return cls(mean=float(value["mean"]), ci95=None if value.get("ci95") is None else float(value["ci95"]),
                   n=value.get("n"), unit=unit, mode=mode)


@dataclass
class SystemScores:
    slug: str
    name: str
    path: Path
    metrics: dict[str, Summary] = field(default_factory=dict)  # metric -> summary
    sources: dict[str, str] = field(default_factory=dict)  # metric -> model/method that computed it
    utts: dict[str, dict[str, Any]] = field(default_factory=dict)  # utt -> metric -> float | {"n/a": reason}
    unscored: dict[str, str] = field(default_factory=dict)  # utt -> why it has no scores


def system_name(slug_or_name: str) -> tuple[str, str]:
    """(slug, display name) of a condition, the ground truth, or an outside system. The ground
    truth's key is the slug of its wav directory (`reference`), whatever its scores file is called."""
    if slug_or_name in BY_SLUG:
        return slug_or_name, BY_SLUG[slug_or_name].name
    if slug_or_name in BY_NAME:
        return BY_NAME[slug_or_name].slug, slug_or_name
    if slug_or_name in (REFERENCE_SLUG, GROUND_TRUTH_FILE):
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
    slug, name = system_name(path.stem)
    infos = data.get("metrics") or {}
    out = SystemScores(slug, name, path, sources={k: str(v.get("source", "")) for k, v in infos.items()})
    for metric, value in (data.get("summary") or {}).items():
        out.metrics[metric] = Summary.from_json(value, infos.get(metric, {}))
    out.utts = data.get("utts") or {}
    out.unscored = dict(data.get("errors") or {})
    out.unscored.update({u: "no synthesized wav" for u in data.get("only_in_ref") or []})
    return out


def load_all_scores(eval_dir: Path) -> dict[str, SystemScores]:
    """slug -> scores of every `scores/*.json` except `summary.json`, in the paper's row order."""
    found = {}
    for path in sorted((eval_dir / "scores").glob("*.json")):
        if path.name == "summary.json":
            continue
        try:
            scores = load_system_scores(path)
        except (json.JSONDecodeError, OSError, TypeError, ValueError, AttributeError, KeyError) as err:
            raise ValueError(f"{path}: unreadable scores ({err})") from err
        found[scores.slug] = scores
    order = [REFERENCE_SLUG] + [c.slug for c in CONDITIONS]
    return dict(sorted(found.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


def load_manifest(eval_dir: Path) -> dict[str, Any]:
    path = eval_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m svslm.bin.infer` (stage 6) first")
    return json.loads(path.read_text(encoding="utf-8"))
