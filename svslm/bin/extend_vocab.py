"""Stage 2: add the svs_lb tokens and SVS markers to a pretrained ESPnet-SpeechLM checkpoint.

    python -m svslm.bin.extend_vocab --pretrained_dir exp/pretrained_lm/mini \
        --token_list dump/token_list/svs_lb.txt --out_dir dump/lm_init
"""
from __future__ import annotations

import argparse
import sys

from svslm.tokenize.extend_vocab import (
    CheckpointError,
    extend_checkpoint,
    read_token_list,
)
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained_dir", required=True, help="checkpoint dir: config.yaml + model.pth")
    parser.add_argument("--token_list", required=True, help="tokens to add, one per line (dump/token_list/svs_lb.txt)")
    parser.add_argument("--out_dir", required=True, help="where the extended checkpoint is written")
    parser.add_argument("--seed", type=int, default=0, help="seed of the new embedding/head rows")
    args = parser.parse_args(argv)
    log = setup_logging()
    try:
        extend_checkpoint(args.pretrained_dir, read_token_list(args.token_list), args.out_dir, seed=args.seed)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
