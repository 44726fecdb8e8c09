"""Stage 6 scoring: every condition of an evaluation directory against the test references.

    python -m svslm.bin.score_eval --config conf/score/tiny.yaml --data_dir data [--split test] \\
        --eval_dir exp/eval/mini --nj 2

`--data_dir` is stage 1's output directory, as for every entry point (`svslm.bin.infer` too).
Scores each `<eval_dir>/wav/<condition>/<utt>.wav` against `<data_dir>/<split>/wav.scp` (phones
for PER from `<data_dir>/<split>/text`), and the references against themselves as the `Ground truth`
row (its PER is the recogniser's ceiling; its MOS the corpus's). Writes
`<eval_dir>/scores/<condition>.json` + `.md`, `scores/ground_truth.json` + `.md`, and
`scores/summary.json` + `summary.md`. A condition whose scores exist for the same wavs and
config is not scored again. The `ctc` recogniser's empty `model_dir` means exp/asr/<tag>, where
<tag> is the evaluation directory's name (exp/eval/<tag>).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from svslm.bin.args import add_override
from svslm.evaluate.scorer import (
    ScoreConfig,
    ScoreItem,
    ScoreReport,
    markdown_table,
    score_items,
    scoring_pool,
)
from svslm.utils.config import load_config, to_dict
from svslm.utils.fileio import atomic_write_json, atomic_write_text, read_kaldi_map
from svslm.utils.logging import setup_logging

logger = logging.getLogger(__name__)
REFERENCE_DIR = "reference"  # wav/reference/ holds copies of the references, not a system
GROUND_TRUTH = ("ground_truth", "Ground truth")  # (file name, row name)


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

    def __init__(self, cfg: ScoreConfig, nj: int, stack: contextlib.ExitStack):
        self.cfg, self.nj, self.stack, self.pool = cfg, nj, stack, None

    def get(self):
        if self.pool is None and self.nj > 1:
            self.pool = self.stack.enter_context(scoring_pool(self.cfg, self.nj))
        return self.pool


def score_condition(name: str, slug: str, items: list[ScoreItem], refs: dict[str, str], hyp_names: set[str],
                    cfg: ScoreConfig, nj: int, scores_dir: Path, pool: LazyPool) -> ScoreReport:
    out_json = scores_dir / f"{slug}.json"
    inputs = fingerprint(items)
    if out_json.is_file():
        old = ScoreReport.from_json(json.loads(out_json.read_text(encoding="utf-8")))
        if old.config == to_dict(cfg) and old.inputs == inputs:
            logger.info("%s: scores up to date in %s", name, out_json)
            return old
    report = score_items(items, cfg, nj, name=name, pool=pool.get())
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="scoring YAML (conf/score/*.yaml)")
    parser.add_argument("--data_dir", required=True, help="stage 1 output (data/), as for every entry point")
    parser.add_argument("--split", default="test", help="the scored split: <data_dir>/<split>/{wav.scp,text}")
    parser.add_argument("--eval_dir", required=True, help="stage 6 evaluation directory (wav/<condition>/)")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    cfg = load_config(args.config, ScoreConfig, args.override)
    eval_dir = Path(args.eval_dir)
    for backend in cfg.per.backends:
        if backend.kind == "ctc" and not backend.model_dir:
            backend.model_dir = str(eval_dir.parent.parent / "asr" / eval_dir.name)
    test = Path(args.data_dir) / args.split
    if not (test / "wav.scp").is_file():
        hint = (" (--data_dir is stage 1's output directory, e.g. data, not a split)"
                if (Path(args.data_dir) / "wav.scp").is_file() else "")
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
        pool = LazyPool(cfg, args.nj, stack)
        reports = {GROUND_TRUTH[0]: score_condition(GROUND_TRUTH[1], GROUND_TRUTH[0], gt_items, refs, set(refs), cfg,
                                                    args.nj, scores_dir, pool)}
        for cond_dir in conditions:
            hyps = {p.stem: p for p in cond_dir.glob("*.wav")}
            items = [ScoreItem(u, refs[u], str(hyps[u]), phones[u]) for u in sorted(set(refs) & set(hyps))]
            reports[cond_dir.name] = score_condition(cond_dir.name, cond_dir.name, items, refs, set(hyps), cfg,
                                                     args.nj, scores_dir, pool)

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


if __name__ == "__main__":
    sys.exit(main())
