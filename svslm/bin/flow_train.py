"""Stage 4: train one conditional flow-matching model (Flow1/Flow2, mel or codec-embedding output).

    python -m svslm.bin.flow_train --config conf/flow/tiny_flow1_mel.yaml --data_dir data \
        --dump_dir dump --lm_decode_dir exp/lm/mini/decode --exp_dir exp/flow/mini/tiny_flow1_mel

Resumable: a re-run continues from the newest checkpoint in --exp_dir, or does nothing when
training has finished. Data parallel on N processes (GPUs, or CPU with gloo), any of them on
resume: the same arguments after `torchrun --nproc_per_node N -m svslm.bin.flow_train`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from svslm.bin.args import add_override
from svslm.flow.config import FlowConfig
from svslm.flow.train import train, variant_name
from svslm.utils import distributed
from svslm.utils.config import load_config
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="flow YAML (conf/flow/*.yaml)")
    parser.add_argument("--data_dir", required=True, help="stage 1 output: <data_dir>/<split>/{wav.scp,score.json}")
    parser.add_argument("--dump_dir", required=True, help="stage 2 output: tokens, prompts, tokenizers/codec")
    parser.add_argument("--lm_decode_dir", default=None,
                        help="stage 3 decodes: <dir>/<split>/codec_ssl.scp (for condition_source lm_decode)")
    parser.add_argument("--exp_dir", required=True, help="output directory of this model")
    parser.add_argument("--device", default=None, help="torch device (default: the config's train.device)")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)

    overrides = list(args.override) + ([f"train.device={args.device}"] if args.device else [])
    from svslm.tokenize.codec import (
        load_codec,  # stage 2's tokenizer; imported late, only for training
    )

    try:
        cfg = load_config(args.config, FlowConfig, overrides=overrides)
        codec = load_codec(Path(args.dump_dir) / "tokenizers" / "codec")
        log.info("training %s from %s into %s", variant_name(cfg.model), args.config, args.exp_dir)
        best = train(cfg, args.data_dir, args.dump_dir, args.lm_decode_dir, args.exp_dir, codec)
    except (OSError, ValueError) as err:  # missing inputs, bad config, no usable utterance: say which
        log.error("%s", err)
        return 1
    finally:
        distributed.teardown()
    log.info("best model: %s", best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
