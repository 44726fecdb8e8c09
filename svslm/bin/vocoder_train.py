"""Stage 5: train the HiFi-GAN vocoder on data/train (validated on data/dev).

    python -m svslm.bin.vocoder_train --config conf/vocoder/tiny.yaml --data_dir data \
        --exp_dir exp/vocoder/mini

Resumes from the newest checkpoint in --exp_dir; a finished run only rewrites generator.pth.
Data parallel on N processes (GPUs, or CPU with gloo), any of them on resume: the same arguments
after `torchrun --nproc_per_node N -m svslm.bin.vocoder_train`.
"""
from __future__ import annotations

import argparse
import sys

from svslm.bin.args import add_override
from svslm.utils import distributed
from svslm.utils.config import load_config
from svslm.utils.logging import setup_logging
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.train import train_vocoder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="vocoder YAML (conf/vocoder/*.yaml)")
    parser.add_argument("--data_dir", required=True, help="stage 1 output with train/ and dev/ wav.scp")
    parser.add_argument("--exp_dir", required=True, help="output: config.yaml, checkpoints/, generator.pth")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    cfg = load_config(args.config, VocoderConfig, overrides=args.override)
    try:
        path = train_vocoder(cfg, args.data_dir, args.exp_dir)
    finally:
        distributed.teardown()
    log.info("done: %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
