"""Train the phoneme CTC recogniser that scores PER offline (run.sh stage 6 before scoring, or the
mini zoo's: local/mini_zoo/run.sh stage 6).

    python -m svslm.bin.asr_train --config conf/asr/tiny.yaml --data_dir data --exp_dir exp/asr/mini

Trains on `<data_dir>/train`, keeps the best model by PER on `<data_dir>/dev`, and writes the
ceiling (PER on the ground-truth `<data_dir>/test` audio) to `<exp_dir>/results.json`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from svslm.bin.args import add_override
from svslm.evaluate.ctc_asr import AsrConfig
from svslm.evaluate.ctc_train import train_ctc
from svslm.utils.config import load_config
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="ASR YAML (conf/asr/*.yaml)")
    parser.add_argument("--data_dir", required=True, help="directory holding train/, dev/ and test/")
    parser.add_argument("--exp_dir", required=True, help="output model directory")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logger = setup_logging(args.verbose)
    cfg = load_config(args.config, AsrConfig, args.override)
    results = train_ctc(cfg, Path(args.data_dir), Path(args.exp_dir))
    ceiling = results.get("test_per")
    logger.info(
        "CTC recogniser in %s: dev PER %.1f%% (epoch %d); ceiling on ground-truth test audio: %s",
        args.exp_dir, results["dev_per"], results["best_epoch"],
        f"{ceiling:.1f}%" if ceiling is not None else "n/a (no test split)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
