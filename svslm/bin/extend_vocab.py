"""Stage 2: add the svs_lb tokens and SVS markers to a pretrained ESPnet-SpeechLM checkpoint.

    python -m svslm.bin.extend_vocab --pretrained_dir exp/pretrained_lm/mini \
        --token_list dump/token_list/svs_lb.txt --out_dir dump/lm_init [--override seed=1]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from svslm.bin.args import add_override, options_from_overrides
from svslm.tokenize.extend_vocab import (
    CheckpointError,
    extend_checkpoint,
    read_token_list,
)
from svslm.utils.logging import setup_logging


@dataclass
class ExtendVocabOptions:
    seed: int = 0  # seed of the new embedding/head rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained_dir", required=True, help="checkpoint dir: config.yaml + model.pth")
    parser.add_argument("--token_list", required=True, help="tokens to add, one per line (dump/token_list/svs_lb.txt)")
    parser.add_argument("--out_dir", required=True, help="where the extended checkpoint is written")
    add_override(parser)
    args = parser.parse_args(argv)
    log = setup_logging()
    try:
        opts = options_from_overrides(ExtendVocabOptions, args.override, "svslm.bin.extend_vocab --override")
        extend_checkpoint(args.pretrained_dir, read_token_list(args.token_list), args.out_dir, seed=opts.seed)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
