"""Scoring whole directories: a pair of wav directories (`svslm score`), and stage 6's evaluation
directory, every condition against the test references, with the ground truth as its own row.

An evaluation directory's condition whose scores exist for the same wavs (by size and
modification time) and the same config is not scored again.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from svslm.evaluate.config import MetricsConfig
from svslm.evaluate.na import from_jsonable, to_jsonable
from svslm.evaluate.scorer import (
    ScoreItem,
    ScoreReport,
    markdown_table,
    score_items,
    score_reports,
)
from svslm.utils.config import to_dict
from svslm.utils.fileio import atomic_write_json, atomic_write_text, read_kaldi_map

logger = logging.getLogger(__name__)
REFERENCE_DIR = "reference"  # wav/reference/ holds copies of the references, not a system
GROUND_TRUTH = ("ground_truth", "Ground truth")  # (file name, row name)


def use_asr_dir(cfg: MetricsConfig, asr_dir: str | Path | None) -> None:
    """Give the `ctc` recogniser whose config leaves `model_dir` empty the directory `asr_dir`."""
    for backend in cfg.per.backends:
        if backend.kind == "ctc" and not backend.model_dir and asr_dir:
            backend.model_dir = str(asr_dir)


def wavs_by_name(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory")
    return {p.stem: p for p in sorted(directory.glob("*.wav"))}


def score_wav_dirs(ref_dir: Path, hyp_dir: Path, out_dir: Path, cfg: MetricsConfig, text: Path | None = None,
                   nj: int = 1, name: str | None = None) -> int:
    """Score `hyp_dir/<utt>.wav` against `ref_dir/<utt>.wav`; writes out_dir/scores.{json,md}.
    Returns 0, or 1 when an utterance could not be scored."""
    refs, hyps = wavs_by_name(Path(ref_dir)), wavs_by_name(Path(hyp_dir))
    texts = read_kaldi_map(text) if text else {}
    common = sorted(set(refs) & set(hyps))
    items = [ScoreItem(u, str(refs[u]), str(hyps[u]), texts[u].split() if u in texts else None) for u in common]
    report = score_items(items, cfg, nj, name=name or Path(hyp_dir).name)
    report.only_in_ref = sorted(set(refs) - set(hyps))
    report.only_in_hyp = sorted(set(hyps) - set(refs))
    for side, names in (("reference", report.only_in_ref), ("synthesis", report.only_in_hyp)):
        if names:
            logger.warning("%d wav(s) only on the %s side: %s", len(names), side, " ".join(names))
    if text:
        missing_text = [u for u in common if u not in texts]
        if missing_text:
            logger.warning("%d utterance(s) have no phones in %s (PER n/a): %s", len(missing_text), text, " ".join(missing_text))
    out = Path(out_dir)
    atomic_write_json(out / "scores.json", report.to_json())
    atomic_write_text(out / "scores.md", report.markdown())
    logger.info("scored %d utterance(s) -> %s/scores.json, scores.md", len(report.utts), out)
    print(markdown_table([report]))
    if report.errors:
        logger.error("%d utterance(s) could not be scored (listed in scores.json)", len(report.errors))
        return 1
    return 0


def item_fingerprint(item: ScoreItem) -> list:
    """Which files one item scores, by size and modification time: a changed wav means re-scoring."""
    ref, hyp = Path(item.ref_path).stat(), Path(item.hyp_path).stat()
    return [item.ref_path, ref.st_size, ref.st_mtime_ns, item.hyp_path, hyp.st_size, hyp.st_mtime_ns]


def fingerprint(items: list[ScoreItem]) -> dict[str, list]:
    return {it.utt: item_fingerprint(it) for it in items}


PARTIAL_DIR = "partial"  # scores/partial/<utt>.json: results of a scoring pass not yet finished


class PartialScores:
    """Each reference's fresh results, saved as they arrive under scores/partial/, so that a killed
    stage 6 scores only what it had not; removed once every report is written. An entry counts
    only for the same config and the same files (size and modification time)."""

    def __init__(self, scores_dir: Path, cfg: MetricsConfig):
        self.dir, self.config = scores_dir / PARTIAL_DIR, to_dict(cfg)

    def _load(self, utt: str) -> dict[str, dict]:
        """The saved results of one reference, by system name ({} when none or another config)."""
        path = self.dir / f"{utt}.json"
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return saved.get("results", {}) if saved.get("config") == self.config else {}

    def known(self, systems: dict[str, list[ScoreItem]]) -> dict[tuple[str, str], tuple]:
        """The saved results of these systems' items, by (name, utt), where the files are unchanged."""
        saved = {u: self._load(u) for u in {it.utt for items in systems.values() for it in items}}
        out: dict[tuple[str, str], tuple] = {}
        for name, items in systems.items():
            for item in items:
                entry = saved[item.utt].get(name)
                if entry and entry["inputs"] == item_fingerprint(item):
                    values = None if entry["values"] is None else {k: from_jsonable(v) for k, v in entry["values"].items()}
                    out[(name, item.utt)] = (item.utt, values, entry["details"], entry["error"])
        if out:
            logger.info("%d result(s) of an unfinished scoring pass reused from %s/", len(out), self.dir)
        return out

    def save(self, group: list[tuple[str, ScoreItem, tuple]]) -> None:
        """Add one reference's fresh results to what is saved for it."""
        utt = group[0][1].utt
        results = self._load(utt)
        for name, item, (_, values, details, error) in group:
            results[name] = {"inputs": item_fingerprint(item), "error": error, "details": details,
                             "values": None if values is None else {k: to_jsonable(v) for k, v in values.items()}}
        atomic_write_json(self.dir / f"{utt}.json", {"config": self.config, "results": results})

    def clear(self) -> None:
        if self.dir.is_dir():
            shutil.rmtree(self.dir)


def up_to_date(out_json: Path, items: list[ScoreItem], cfg: MetricsConfig) -> ScoreReport | None:
    """The report in `out_json` when it scored these files with this config, else None."""
    if not out_json.is_file():
        return None
    old = ScoreReport.from_json(json.loads(out_json.read_text(encoding="utf-8")))
    return old if old.config == to_dict(cfg) and old.inputs == fingerprint(items) else None


def write_condition(report: ScoreReport, slug: str, items: list[ScoreItem], refs: dict[str, str],
                    hyp_names: set[str], scores_dir: Path) -> None:
    """Complete one condition's fresh report (inputs, missing files) and write its JSON and table."""
    report.inputs = fingerprint(items)
    report.only_in_ref = sorted(set(refs) - hyp_names)
    report.only_in_hyp = sorted(hyp_names - set(refs))
    if report.only_in_ref:
        logger.warning("%s: %d test utterance(s) have no synthesis: %s", report.name, len(report.only_in_ref), " ".join(report.only_in_ref))
    if report.only_in_hyp:
        logger.warning("%s: %d wav(s) are not test utterances: %s", report.name, len(report.only_in_hyp), " ".join(report.only_in_hyp))
    atomic_write_json(scores_dir / f"{slug}.json", report.to_json())
    atomic_write_text(scores_dir / f"{slug}.md", report.markdown())


def score_eval_dir(cfg: MetricsConfig, data_dir: Path, split: str, eval_dir: Path, nj: int = 1) -> int:
    """Score every `<eval_dir>/wav/<condition>/<utt>.wav` and the references themselves against
    `<data_dir>/<split>/wav.scp` (phones from its `text`); writes `<eval_dir>/scores/`.
    Returns 0, or 1 when the split is missing or an utterance could not be scored."""
    data_dir, eval_dir = Path(data_dir), Path(eval_dir)
    test = data_dir / split
    if not (test / "wav.scp").is_file():
        hint = " (--data_dir is stage 1's output directory, e.g. data, not a split)" if (data_dir / "wav.scp").is_file() else ""
        logger.error("%s/wav.scp not found%s", test, hint)
        return 1
    refs = read_kaldi_map(test / "wav.scp")
    texts = read_kaldi_map(test / "text") if (test / "text").is_file() else {}
    phones = {u: texts[u].split() if u in texts else None for u in refs}
    wav_root = eval_dir / "wav"
    conditions = sorted(p for p in wav_root.iterdir() if p.is_dir() and p.name != REFERENCE_DIR) if wav_root.is_dir() else []
    if not conditions:
        logger.warning("no condition directory under %s; scoring the ground truth only", wav_root)
    scores_dir = eval_dir / "scores"

    # (slug, row name, items, synthesis names) of the ground truth and every condition
    systems = [(GROUND_TRUTH[0], GROUND_TRUTH[1], [ScoreItem(u, refs[u], refs[u], phones[u]) for u in sorted(refs)], set(refs))]
    for cond_dir in conditions:
        hyps = {p.stem: p for p in cond_dir.glob("*.wav")}
        items = [ScoreItem(u, refs[u], str(hyps[u]), phones[u]) for u in sorted(set(refs) & set(hyps))]
        systems.append((cond_dir.name, cond_dir.name, items, set(hyps)))
    reports: dict[str, ScoreReport] = {}
    for slug, name, items, _ in systems:
        old = up_to_date(scores_dir / f"{slug}.json", items, cfg)
        if old is not None:
            logger.info("%s: scores up to date in %s/%s.json", name, scores_dir, slug)
            reports[slug] = old
    pending = [s for s in systems if s[0] not in reports]
    if pending:
        partial = PartialScores(scores_dir, cfg)
        by_name = {name: items for _, name, items, _ in pending}
        fresh = score_reports(by_name, cfg, nj, known=partial.known(by_name), on_group=partial.save)
        for slug, name, items, hyp_names in pending:
            write_condition(fresh[name], slug, items, refs, hyp_names, scores_dir)
            reports[slug] = fresh[name]
        partial.clear()
    reports = {slug: reports[slug] for slug, *_ in systems}  # the table's order: ground truth, then by name

    summary = {
        "config": to_dict(cfg),
        "metrics": next(iter(reports.values())).to_json()["metrics"],
        "conditions": {slug: {"name": r.name, "summary": r.to_json()["summary"], "utterances": len(r.utts),
                              "errors": r.errors, "only_in_ref": r.only_in_ref}
                       for slug, r in reports.items()},
    }
    atomic_write_json(scores_dir / "summary.json", summary)
    table = markdown_table(list(reports.values()))
    atomic_write_text(scores_dir / "summary.md", table + "\n")
    print(table)
    n_errors = sum(len(r.errors) for r in reports.values())
    if n_errors:
        logger.error("%d utterance(s) could not be scored; see errors in %s/*.json", n_errors, scores_dir)
        return 1
    return 0
