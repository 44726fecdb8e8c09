"""Stage 2: add the svs_lb tokens and the svs task marker to a pretrained ESPnet-SpeechLM checkpoint.

    python -m svslm.bin.extend_vocab --pretrained_dir exp/pretrained_lm/mini \
        --token_list dump/token_list/svs_lb.txt --out_dir exp/lm_init/mini [--config conf/lm/tiny.yaml] \
        [--override extend.seed=1]

The same token list and token_bias as ESPnet's speechlm_extend_vocab.py (svslm.lm.extend); the
new rows' initialisation is the LM YAML's `extend` section (default: ESPnet's).
"""
from __future__ import annotations

import argparse
import sys

from svslm.bin.args import add_override
from svslm.lm.checkpoint import CheckpointError
from svslm.lm.config import LMRecipeConfig
from svslm.lm.extend import extend_checkpoint, read_token_list
from svslm.lm.vocab import VocabularyError
from svslm.utils.config import ConfigError, load_config
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained_dir", required=True, help="checkpoint: a directory (config.yaml + weights) or a weights file")
    parser.add_argument("--token_list", required=True, help="tokens to add, one per line (dump/token_list/svs_lb.txt)")
    parser.add_argument("--out_dir", required=True, help="where the extended checkpoint is written")
    parser.add_argument("--config", default=None, help="LM YAML whose `extend` section sets the new rows' init")
    add_override(parser)
    args = parser.parse_args(argv)
    if args.override and not args.config:
        parser.error("--override sets keys of the LM YAML (e.g. extend.seed=1): give it with --config")
    log = setup_logging()
    try:
        conf = load_config(args.config, LMRecipeConfig, args.override).extend if args.config else None
        extend_checkpoint(args.pretrained_dir, read_token_list(args.token_list), args.out_dir, conf)
    except (CheckpointError, VocabularyError, ConfigError, FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
