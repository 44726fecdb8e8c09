"""Score synthesized utterances against references with every metric; summaries and writers.

`score_items` scores (reference wav, synthesis wav, reference phones) triples in `nj` processes
and returns a `ScoreReport`: per-utterance values, means with 95% confidence intervals, the
metrics' units, modes and sources, and every `n/a` with its reason. Its JSON (`to_json`) is the
`scores/<condition>.json` of docs/formats.md; `markdown_table` lays several reports side by side.

A metric group whose model cannot be loaded is `n/a` for every utterance with the loader's
reason; an utterance whose audio cannot be read is listed in `errors` and scores nothing; one
metric failing on one utterance is `n/a` for that utterance only.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.stats
from tqdm import tqdm

from svslm.evaluate.config import MetricsConfig
from svslm.evaluate.mcd_f0 import (
    WorldFeatures,
    mcd_f0,
    mode_name,
    world_features,
)
from svslm.evaluate.mos import SheetSsqa, SingMos, dnsmos
from svslm.evaluate.na import (
    MetricUnavailable,
    from_jsonable,
    is_na,
    na_reason,
    to_jsonable,
)
from svslm.evaluate.per import load_recognizer, metric_name, phone_errors
from svslm.evaluate.singer_sim import (
    ResemblyzerEmbedder,
    TorchScriptEmbedder,
    singer_similarity,
)
from svslm.utils.audio import AudioError, load_wav
from svslm.utils.config import to_dict
from svslm.utils.workers import process_pool

logger = logging.getLogger(__name__)

# The columns of the paper's tables, in its order.
TABLE_COLUMNS: tuple[str, ...] = ("F0_RMSE", "F0_CORR", "MCD", "PER", "Singer-Sim", "SingMOS", "Sheet-SSQA", "DNSMOS")


@dataclass(frozen=True)
class MetricInfo:
    unit: str
    better: Literal["higher", "lower"]
    source: str
    mode: str = ""


def metric_infos(cfg: MetricsConfig) -> dict[str, MetricInfo]:
    """The metrics `cfg` produces, with unit, direction, source and (for MCD/F0) alignment mode."""
    out: dict[str, MetricInfo] = {}
    if "mcd_f0" in cfg.metrics:
        mode = mode_name(cfg.mcd_f0)
        f0_from = "torchcrepe" if cfg.mcd_f0.f0_extractor == "crepe" else "WORLD Harvest"
        out["F0_RMSE"] = MetricInfo("Hz", "lower", f"VERSA mcd_f0 (F0 by {f0_from})", mode)
        out["F0_CORR"] = MetricInfo("Pearson r", "higher", f"VERSA mcd_f0 (F0 by {f0_from})", mode)
        out["MCD"] = MetricInfo("dB", "lower", "VERSA mcd_f0", mode)
    if "per" in cfg.metrics:
        for i, backend in enumerate(cfg.per.backends):
            out[metric_name(i, backend)] = MetricInfo("%", "lower", f"{backend.kind} ASR vs score phones, rests removed")
    if "singer_sim" in cfg.metrics:
        out["Singer-Sim"] = MetricInfo("cosine", "higher", "resemblyzer d-vector")
        if cfg.singer_sim.extra_embedding:
            out["Singer-Sim_extra"] = MetricInfo("cosine", "higher", f"TorchScript {cfg.singer_sim.extra_embedding}")
    if "dnsmos" in cfg.metrics and cfg.mos.dnsmos:
        out["DNSMOS"] = MetricInfo("MOS 1-5", "higher", "speechmos DNSMOS P.835 OVRL")
        out["DNSMOS_SIG"] = MetricInfo("MOS 1-5", "higher", "speechmos DNSMOS P.835 SIG")
        out["DNSMOS_BAK"] = MetricInfo("MOS 1-5", "higher", "speechmos DNSMOS P.835 BAK")
        out["DNSMOS_P808"] = MetricInfo("MOS 1-5", "higher", "speechmos DNSMOS P.808")
    if "singmos" in cfg.metrics:
        out["SingMOS"] = MetricInfo("MOS 1-5", "higher", "South-Twilight/SingMOS singing_ssl_mos v0.2.0")
    if "sheet" in cfg.metrics:
        out["Sheet-SSQA"] = MetricInfo("MOS 1-5", "higher", "unilight/sheet default SSL-MOS v0.1.0")
    return out


@dataclass
class ScoreItem:
    utt: str
    ref_path: str
    hyp_path: str
    ref_phones: list[str] | None = None  # the score's phones (data/<split>/text); None = PER n/a


def _load(cls_or_fn, *args):
    """A model, or the `MetricUnavailable` explaining why it cannot be loaded."""
    try:
        return cls_or_fn(*args)
    except MetricUnavailable as err:
        return err


class UtteranceScorer:
    """Every configured metric of one (reference, synthesis) pair; models loaded once."""

    def __init__(self, cfg: MetricsConfig):
        self.cfg = cfg
        # WORLD analysis of each reference, made once: every condition is scored against the same ones.
        self._ref_features: dict[tuple[str, int, int], WorldFeatures] = {}
        # Each reference's speaker embeddings (or why it has none), for the same reason.
        self._ref_embeddings: dict[tuple[str, tuple[str, int, int]], np.ndarray | MetricUnavailable] = {}
        groups = set(cfg.metrics)
        self.recognizers = [_load(load_recognizer, b) for b in cfg.per.backends] if "per" in groups else []
        self.embedders = {}
        if "singer_sim" in groups:
            self.embedders["Singer-Sim"] = _load(ResemblyzerEmbedder, cfg.singer_sim.trim_silence)
            if cfg.singer_sim.extra_embedding:
                self.embedders["Singer-Sim_extra"] = _load(TorchScriptEmbedder, Path(cfg.singer_sim.extra_embedding))
        self.singmos = _load(SingMos, cfg.mos.singmos) if "singmos" in groups else None
        self.sheet = _load(SheetSsqa, cfg.mos.sheet) if "sheet" in groups else None
        self.names = list(metric_infos(cfg))

    @staticmethod
    def _guarded(names: list[str], fn, *args) -> dict[str, Any]:
        """Run one metric group -> {name: value}; a failure is n/a for this utterance, not the run."""
        try:
            out = fn(*args)
        except MetricUnavailable as err:
            return dict.fromkeys(names, err)
        except Exception as err:  # noqa: BLE001 - a metric library failing on odd audio must not stop the others
            logger.warning("%s failed: %s: %s", "/".join(names), type(err).__name__, err)
            return dict.fromkeys(names, MetricUnavailable(f"failed: {type(err).__name__}: {err}"))
        if isinstance(out, MetricUnavailable):
            return dict.fromkeys(names, out)
        return out if isinstance(out, dict) else {names[0]: out}

    @staticmethod
    def _phone_error_rate(name: str, recognizer, hyp: np.ndarray, ref_phones: list[str], details: dict) -> float:
        """PER (%) of one transcription; the transcript and counts go to `details` (for corpus PER)."""
        hyp_phones = recognizer.recognize(hyp)
        err = phone_errors(hyp_phones, ref_phones)
        details.update({f"{name}_hyp": " ".join(hyp_phones), f"{name}_edits": err.edits, f"{name}_ref_phones": err.ref_len})
        return err.per

    @staticmethod
    def _file_key(path: str) -> tuple[str, int, int]:
        stat = Path(path).stat()
        return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns

    def _mcd_f0(self, ref_path: str, hyp_path: str, hyp: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
        key = self._file_key(ref_path)
        if key not in self._ref_features:
            self._ref_features[key] = world_features(ref, self.cfg.mcd_f0, self.cfg.sample_rate)
        ref_features = self._ref_features[key]
        # The ground truth scored against itself: one analysis serves both sides.
        hyp_features = ref_features if self._file_key(hyp_path) == key else None
        return mcd_f0(hyp, ref, self.cfg.mcd_f0, self.cfg.sample_rate, ref_features=ref_features,
                      hyp_features=hyp_features)

    def _singer_sim(self, name: str, embedder, ref_path: str, hyp: np.ndarray, ref: np.ndarray) -> float | MetricUnavailable:
        key = (name, self._file_key(ref_path))
        if key not in self._ref_embeddings:
            try:
                self._ref_embeddings[key] = embedder.embed(ref)
            except MetricUnavailable as err:
                self._ref_embeddings[key] = MetricUnavailable(f"reference: {err}")
        ref_embedding = self._ref_embeddings[key]
        if isinstance(ref_embedding, MetricUnavailable):
            return ref_embedding
        return singer_similarity(embedder, hyp, ref, ref_embedding)

    def score(self, item: ScoreItem) -> tuple[dict[str, Any], dict[str, Any]]:
        """(metric -> value or MetricUnavailable, details such as transcripts). Raises AudioError."""
        sr = self.cfg.sample_rate
        ref = load_wav(item.ref_path, sr, mono=True)
        hyp = load_wav(item.hyp_path, sr, mono=True)
        values: dict[str, Any] = {}
        details: dict[str, Any] = {}
        if "mcd_f0" in self.cfg.metrics:
            values.update(self._guarded(["MCD", "F0_RMSE", "F0_CORR"], self._mcd_f0, item.ref_path, item.hyp_path, hyp, ref))
        for i, recognizer in enumerate(self.recognizers):
            name = metric_name(i, self.cfg.per.backends[i])
            if isinstance(recognizer, MetricUnavailable):
                values[name] = recognizer
            elif item.ref_phones is None:
                values[name] = MetricUnavailable("no reference phones (no text file given)")
            else:
                values.update(self._guarded([name], self._phone_error_rate, name, recognizer, hyp,
                                            item.ref_phones, details))
        for name, embedder in self.embedders.items():
            values.update(self._guarded([name], self._singer_sim, name, embedder, item.ref_path, hyp, ref)
                          if not isinstance(embedder, MetricUnavailable) else {name: embedder})
        if "dnsmos" in self.cfg.metrics and self.cfg.mos.dnsmos:
            values.update(self._guarded(["DNSMOS", "DNSMOS_SIG", "DNSMOS_BAK", "DNSMOS_P808"], dnsmos, hyp))
        for name, model in (("SingMOS", self.singmos), ("Sheet-SSQA", self.sheet)):
            if model is not None:
                values.update(self._guarded([name], model, hyp) if not isinstance(model, MetricUnavailable)
                              else {name: model})
        return {k: values[k] for k in self.names if k in values}, details


@dataclass
class Summary:
    mean: float
    ci95: float | None  # half-width of the 95% t-interval; None with a single value
    n: int  # utterances with a value
    n_na: int  # utterances where the metric is n/a
    corpus: float | None = None  # PER only: all edits / all reference phones, %

    def to_json(self) -> dict[str, Any]:
        out = {"mean": self.mean, "ci95": self.ci95, "n": self.n, "n_na": self.n_na}
        if self.corpus is not None:
            out["corpus"] = self.corpus
        return out


def mean_ci95(values: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% confidence interval from Student's t (n - 1 dof)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return float(x.mean()), None
    half = scipy.stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(half)


@dataclass
class ScoreReport:
    name: str  # what was scored, e.g. a condition
    infos: dict[str, MetricInfo]
    utts: dict[str, dict[str, Any]]  # utt -> metric -> float or MetricUnavailable
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # utt -> transcripts and counts
    errors: dict[str, str] = field(default_factory=dict)  # utt -> why it could not be scored at all
    only_in_ref: list[str] = field(default_factory=list)  # references with no synthesis
    only_in_hyp: list[str] = field(default_factory=list)  # syntheses with no reference
    config: dict[str, Any] = field(default_factory=dict)  # the MetricsConfig used
    inputs: dict[str, Any] = field(default_factory=dict)  # fingerprint of the scored files (for resuming)

    def summary(self) -> dict[str, Summary | MetricUnavailable]:
        out: dict[str, Summary | MetricUnavailable] = {}
        for name in self.infos:
            values = [v[name] for v in self.utts.values() if name in v]
            numbers = [float(v) for v in values if not is_na(v)]
            reasons = [na_reason(v) for v in values if is_na(v)]
            if not numbers:
                reason = max(set(reasons), key=reasons.count) if reasons else "no utterance was scored"
                out[name] = MetricUnavailable(reason)
                continue
            mean, ci = mean_ci95(numbers)
            corpus = None
            if self.infos[name].unit == "%":  # PER: also the corpus rate, all edits over all phones
                edits = sum(d.get(f"{name}_edits", 0) for d in self.details.values())
                ref_len = sum(d.get(f"{name}_ref_phones", 0) for d in self.details.values())
                corpus = 100.0 * edits / ref_len if ref_len else None
            out[name] = Summary(mean, ci, len(numbers), len(reasons), corpus)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metrics": {k: {"unit": i.unit, "better": i.better, "source": i.source, "mode": i.mode}
                        for k, i in self.infos.items()},
            "summary": {k: to_jsonable(v) if is_na(v) else v.to_json() for k, v in self.summary().items()},
            "utts": {u: {k: to_jsonable(v) for k, v in vals.items()} for u, vals in self.utts.items()},
            "details": self.details,
            "errors": self.errors,
            "only_in_ref": self.only_in_ref,
            "only_in_hyp": self.only_in_hyp,
            "config": self.config,
            "inputs": self.inputs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScoreReport:
        """Read back `to_json`'s output (n/a values become `MetricUnavailable` again)."""
        return cls(
            name=data["name"],
            infos={k: MetricInfo(**i) for k, i in data["metrics"].items()},
            utts={u: {k: from_jsonable(v) for k, v in vals.items()} for u, vals in data["utts"].items()},
            details=data.get("details", {}), errors=data.get("errors", {}),
            only_in_ref=data.get("only_in_ref", []), only_in_hyp=data.get("only_in_hyp", []),
            config=data.get("config", {}), inputs=data.get("inputs", {}),
        )

    def markdown(self) -> str:
        """The summary table, then one row per utterance."""
        lines = [f"## {self.name}", "", markdown_table([self]), ""]
        names = list(self.infos)
        lines += ["| utt | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for utt, vals in self.utts.items():
            cells = ["n/a" if is_na(vals.get(n, {"n/a": ""})) else f"{vals[n]:.3f}" for n in names]
            lines.append(f"| {utt} | " + " | ".join(cells) + " |")
        for title, items in (("Not scored (errors)", [f"{u}: {e}" for u, e in self.errors.items()]),
                             ("References without synthesis", self.only_in_ref),
                             ("Syntheses without reference", self.only_in_hyp)):
            if items:
                lines += ["", f"{title}:", *[f"- {i}" for i in items]]
        return "\n".join(lines) + "\n"


def format_summary(value: Summary | MetricUnavailable, digits: int = 3) -> str:
    if is_na(value):
        return "n/a"
    ci = f" ± {value.ci95:.{digits}f}" if value.ci95 is not None else ""
    return f"{value.mean:.{digits}f}{ci}"


def markdown_table(reports: list[ScoreReport], columns: tuple[str, ...] | None = None) -> str:
    """Rows = reports, columns = metrics (mean ± 95% CI); units and modes in the header; n/a reasons below."""
    infos: dict[str, MetricInfo] = {}
    for r in reports:
        infos.update(r.infos)
    # By default the DNSMOS sub-scores stay in the per-system files; OVRL is the table's DNSMOS.
    cols = [c for c in (columns or tuple(infos)) if c in infos and (columns or not c.startswith("DNSMOS_"))]
    header = [f"{c} ({infos[c].unit}{', ' + infos[c].mode if infos[c].mode else ''}) {'↑' if infos[c].better == 'higher' else '↓'}"
              for c in cols]
    lines = ["| system | " + " | ".join(header) + " |", "|---" * (len(cols) + 1) + "|"]
    notes: dict[str, str] = {}
    for r in reports:
        summary = r.summary()
        cells = []
        for c in cols:
            value = summary.get(c, MetricUnavailable("not computed for this system"))
            cells.append(format_summary(value))
            if is_na(value):
                notes.setdefault(f"{c}: {na_reason(value)}", r.name)
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    if notes:
        lines += ["", "n/a reasons:", *[f"- {note}" for note in notes]]
    return "\n".join(lines)


_WORKER: UtteranceScorer | None = None


def _init_worker(cfg: MetricsConfig) -> None:
    global _WORKER
    if _WORKER is None or _WORKER.cfg != cfg:  # the models load once per process and config
        _WORKER = UtteranceScorer(cfg)


@contextlib.contextmanager
def scoring_pool(cfg: MetricsConfig, nj: int):
    """`nj` worker processes with the scorer's models loaded, for several `score_items` calls
    (None when nj <= 1: scoring runs in this process)."""
    if nj <= 1:
        yield None
        return
    with process_pool(nj, _init_worker, (cfg,)) as pool:  # one torch thread per worker
        yield pool


def _score_one(item: ScoreItem) -> tuple[str, dict | None, dict | None, str | None]:
    try:
        values, details = _WORKER.score(item)
        return item.utt, values, details, None
    except AudioError as err:
        return item.utt, None, None, str(err)


def _file_size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0  # scoring it reports why it cannot be read


Result = tuple  # (utt, values, details, error) of one scored item, as `_score_one` returns it


def _score_group(group: list[tuple[str, ScoreItem]]) -> list[tuple[str, Result]]:
    return [(name, _score_one(item)) for name, item in group]


def score_reports(items: dict[str, list[ScoreItem]], cfg: MetricsConfig, nj: int = 1, pool: Any = None,
                  known: dict[tuple[str, str], Result] | None = None,
                  on_group: Callable[[list[tuple[str, ScoreItem, Result]]], None] | None = None,
                  ) -> dict[str, ScoreReport]:
    """One report per name of `items` (e.g. per condition), all scored in one pass of `nj` worker
    processes (in this process when nj == 1, which then sets torch to one thread, as each worker
    does); `pool`: workers of `scoring_pool(cfg, nj)` to reuse.

    The work is dealt out one reference at a time, every name's synthesis of it together: a
    worker then analyses each reference once (WORLD Harvest, the costliest step), and no name
    waits for the slowest utterance of the one before. `known`: results by (name, utt) that are
    taken as they are (scored before); `on_group`: called with each reference's fresh results as
    they arrive (to save them, so that a killed run resumes)."""
    known = known or {}
    item_of = {(name, item.utt): item for name, its in items.items() for item in its}
    groups: dict[str, list[tuple[str, ScoreItem]]] = {}
    for name, its in items.items():
        for item in its:
            if (name, item.utt) not in known:
                groups.setdefault(item.ref_path, []).append((name, item))
    # Longest reference first: the last groups to start are short, so the workers finish together.
    work = sorted(groups.values(), key=lambda g: -_file_size(g[0][1].ref_path))
    results = [(name, result) for (name, _), result in known.items() if name in items]
    if work:
        with contextlib.ExitStack() as stack:
            if pool is None and nj <= 1:
                _init_worker(cfg)
                scored = map(_score_group, work)
            else:
                if pool is None:
                    pool = stack.enter_context(scoring_pool(cfg, nj))
                scored = pool.imap_unordered(_score_group, work)
            with tqdm(total=sum(len(g) for g in work), desc="scoring", unit="wav") as bar:
                for group_results in scored:
                    results.extend(group_results)
                    if on_group is not None:
                        on_group([(name, item_of[name, result[0]], result) for name, result in group_results])
                    bar.update(len(group_results))
    reports = {name: ScoreReport(name=name, infos=metric_infos(cfg), utts={}, config=to_dict(cfg)) for name in items}
    for name, (utt, values, details, error) in sorted(results, key=lambda r: (r[0], r[1][0])):
        report = reports[name]
        if error is not None:
            logger.error("%s: %s: not scored: %s", name, utt, error)
            report.errors[utt] = error
        else:
            report.utts[utt] = values
            if details:
                report.details[utt] = details
    return reports


def score_items(items: list[ScoreItem], cfg: MetricsConfig, nj: int = 1, name: str = "scores",
                pool: Any = None) -> ScoreReport:
    """The report of one list of items (`score_reports` with one name)."""
    return score_reports({name: items}, cfg, nj, pool)[name]
