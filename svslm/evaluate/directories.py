"""Scoring whole directories: a pair of wav directories (`svslm score`), and stage 6's evaluation
directory, every condition against the test references, with the ground truth as its own row.

An evaluation directory's condition whose scores exist for the same wavs (by size and
modification time) and the same config is not scored again.
"""
from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from svslm.evaluate.config import MetricsConfig
from svslm.evaluate.scorer import (
    ScoreItem,
    ScoreReport,
    markdown_table,
    score_items,
    scoring_pool,
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


def fingerprint(items: list[ScoreItem]) -> dict[str, list]:
    """Which files were scored, by size and modification time: a changed wav means re-scoring."""
    out = {}
    for it in items:
        ref, hyp = Path(it.ref_path).stat(), Path(it.hyp_path).stat()
        out[it.utt] = [it.ref_path, ref.st_size, ref.st_mtime_ns, it.hyp_path, hyp.st_size, hyp.st_mtime_ns]
    return out


class LazyPool:
    """The scoring workers, started (models loaded) only when a condition needs scoring, then
    shared by every condition."""

    def __init__(self, cfg: MetricsConfig, nj: int, stack: contextlib.ExitStack):
        self.cfg, self.nj, self.stack, self.pool = cfg, nj, stack, None

    def get(self):
        if self.pool is None and self.nj > 1:
            self.pool = self.stack.enter_context(scoring_pool(self.cfg, self.nj))
        return self.pool


def score_condition(name: str, slug: str, items: list[ScoreItem], refs: dict[str, str], hyp_names: set[str],
                    cfg: MetricsConfig, scores_dir: Path, pool: LazyPool) -> ScoreReport:
    """One condition's report: read back when up to date, else scored and written."""
    out_json = scores_dir / f"{slug}.json"
    inputs = fingerprint(items)
    if out_json.is_file():
        old = ScoreReport.from_json(json.loads(out_json.read_text(encoding="utf-8")))
        if old.config == to_dict(cfg) and old.inputs == inputs:
            logger.info("%s: scores up to date in %s", name, out_json)
            return old
    report = score_items(items, cfg, pool.nj, name=name, pool=pool.get())
    report.inputs = inputs
    report.only_in_ref = sorted(set(refs) - hyp_names)
    report.only_in_hyp = sorted(hyp_names - set(refs))
    if report.only_in_ref:
        logger.warning("%s: %d test utterance(s) have no synthesis: %s", name, len(report.only_in_ref), " ".join(report.only_in_ref))
    if report.only_in_hyp:
        logger.warning("%s: %d wav(s) are not test utterances: %s", name, len(report.only_in_hyp), " ".join(report.only_in_hyp))
    atomic_write_json(out_json, report.to_json())
    atomic_write_text(scores_dir / f"{slug}.md", report.markdown())
    return report


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

    gt_items = [ScoreItem(u, refs[u], refs[u], phones[u]) for u in sorted(refs)]
    with contextlib.ExitStack() as stack:
        pool = LazyPool(cfg, nj, stack)
        reports = {GROUND_TRUTH[0]: score_condition(GROUND_TRUTH[1], GROUND_TRUTH[0], gt_items, refs, set(refs), cfg,
                                                    scores_dir, pool)}
        for cond_dir in conditions:
            hyps = {p.stem: p for p in cond_dir.glob("*.wav")}
            items = [ScoreItem(u, refs[u], str(hyps[u]), phones[u]) for u in sorted(set(refs) & set(hyps))]
            reports[cond_dir.name] = score_condition(cond_dir.name, cond_dir.name, items, refs, set(hyps), cfg,
                                                     scores_dir, pool)

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
