"""Stage 3: fine-tune the speech LM with DeepSpeed (resumable; writes exp_dir/best).

    torchrun --standalone --nproc_per_node 1 -m svslm.bin.lm_train --config conf/lm/tiny.yaml \
        --init_dir dump/lm_init --train_json dump/train/data.json --valid_json dump/dev/data.json \
        --exp_dir exp/lm/mini
    deepspeed --num_gpus 8 -m svslm.bin.lm_train ...      (GPUs; add --hostfile for several nodes)
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from svslm.bin.args import add_override
from svslm.utils.logging import FORMAT, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="stage 3 YAML (conf/lm/*.yaml)")
    parser.add_argument("--init_dir", required=True, help="initial checkpoint (ESPnet-SpeechLM format)")
    parser.add_argument("--train_json", required=True, help="dump/train/data.json")
    parser.add_argument("--valid_json", required=True, help="dump/dev/data.json")
    parser.add_argument("--exp_dir", required=True, help="output directory (checkpoints, logs, best/)")
    add_override(parser)
    parser.add_argument("--local_rank", type=int, default=0, help="set by the deepspeed launcher; unused")
    args = parser.parse_args(argv)
    setup_logging()
    exp_dir = Path(args.exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(exp_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.getLogger().addHandler(handler)

    # Imported here: DeepSpeed is slow to import, and argument errors should come first.
    from svslm.lm.train import train

    best = train(args.config, args.init_dir, args.train_json, args.valid_json, exp_dir, args.override)
    logging.getLogger("svslm").info("best model: %s", best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
