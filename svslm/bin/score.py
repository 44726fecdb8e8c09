"""Score any system's wavs against references: `svslm score REF_DIR HYP_DIR --out_dir OUT`.

    python -m svslm.bin.score REF_DIR HYP_DIR --out_dir OUT [--config conf/score/tiny.yaml] \\
        [--text data/test/text --asr_dir exp/asr/mini] [--nj 2]

Wavs are matched by file name (`<utt>.wav` in both directories); names found on one side only
are listed in the output. `--text` (Kaldi `<utt> <phn> ...`) gives the phones PER is counted
against and `--asr_dir` the recipe's CTC recogniser (`svslm.bin.asr_train`); without them PER
is n/a. Writes OUT/scores.json (per utterance, means with 95% confidence intervals, units,
modes, n/a reasons) and OUT/scores.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from svslm.bin.args import add_override
from svslm.evaluate.scorer import ScoreConfig, ScoreItem, markdown_table, score_items
from svslm.utils.config import from_dict, load_config
from svslm.utils.fileio import atomic_write_json, atomic_write_text, read_kaldi_map
from svslm.utils.logging import setup_logging


def wavs_by_name(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory")
    return {p.stem: p for p in sorted(directory.glob("*.wav"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ref_dir", help="directory of reference <utt>.wav")
    parser.add_argument("hyp_dir", help="directory of synthesized <utt>.wav")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--config", default=None, help="scoring YAML (conf/score/*.yaml); default: built-in defaults")
    parser.add_argument("--text", default=None, help="Kaldi text with the reference phones, for PER")
    parser.add_argument("--asr_dir", default="", help="CTC recogniser (asr_train output) for PER when the config leaves it empty")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    parser.add_argument("--name", default=None, help="name of the scored system (default: HYP_DIR's name)")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logger = setup_logging(args.verbose)
    cfg = load_config(args.config, ScoreConfig, args.override) if args.config else from_dict(ScoreConfig, {})
    for backend in cfg.per.backends:
        if backend.kind == "ctc" and not backend.model_dir:
            backend.model_dir = args.asr_dir
    refs, hyps = wavs_by_name(Path(args.ref_dir)), wavs_by_name(Path(args.hyp_dir))
    texts = read_kaldi_map(args.text) if args.text else {}
    common = sorted(set(refs) & set(hyps))
    items = [ScoreItem(u, str(refs[u]), str(hyps[u]), texts[u].split() if u in texts else None) for u in common]
    report = score_items(items, cfg, args.nj, name=args.name or Path(args.hyp_dir).name)
    report.only_in_ref = sorted(set(refs) - set(hyps))
    report.only_in_hyp = sorted(set(hyps) - set(refs))
    for side, names in (("reference", report.only_in_ref), ("synthesis", report.only_in_hyp)):
        if names:
            logger.warning("%d wav(s) only on the %s side: %s", len(names), side, " ".join(names))
    if args.text:
        missing_text = [u for u in common if u not in texts]
        if missing_text:
            logger.warning("%d utterance(s) have no phones in %s (PER n/a): %s", len(missing_text), args.text, " ".join(missing_text))
    out = Path(args.out_dir)
    atomic_write_json(out / "scores.json", report.to_json())
    atomic_write_text(out / "scores.md", report.markdown())
    logger.info("scored %d utterance(s) -> %s/scores.json, scores.md", len(report.utts), out)
    print(markdown_table([report]))
    if report.errors:
        logger.error("%d utterance(s) could not be scored (listed in scores.json)", len(report.errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
