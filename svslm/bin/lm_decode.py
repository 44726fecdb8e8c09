"""Stage 3: decode codec_ssl tokens for a split with the fine-tuned LM (resumable by shard).

    python -m svslm.bin.lm_decode --config conf/decode/tiny.yaml --model_dir exp/lm/mini/best \
        --data_json dump/test/data.json --out_dir exp/lm/mini/decode/test

Writes out_dir/codec_ssl.scp + out_dir/data/codec_ssl.<k>.{ark,scp}: int32 [T, 9] local ids per
utterance (docs/formats.md), T = the score's frame count. Finished shards are skipped on a re-run.
As a job array (run.sh --num_jobs N): `--job JOB --num_jobs N` decodes every N-th shard and does
not merge; a last run without --job merges (and decodes any shard a killed job left).
"""
from __future__ import annotations

import argparse
import sys

from svslm.bin.args import add_override
from svslm.lm.inference import DecodeConfig, decode_split
from svslm.utils.config import load_config
from svslm.utils.jobs import add_job_args, job_from_args
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="decoding YAML (conf/decode/*.yaml)")
    parser.add_argument("--model_dir", required=True, help="checkpoint: directory (config.yaml + weights) or weights file")
    parser.add_argument("--data_json", required=True, help="dump/<split>/data.json")
    parser.add_argument("--out_dir", required=True, help="output directory")
    parser.add_argument("--device", default="auto", help="torch device: auto (CUDA when present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--nj", type=int, default=1,
                        help="processes decoding the shards side by side (one thread each; the tokens do not depend on it)")
    add_job_args(parser)
    add_override(parser)
    args = parser.parse_args(argv)
    setup_logging()
    decode_split(load_config(args.config, DecodeConfig, args.override), args.model_dir, args.data_json,
                 args.out_dir, args.device, job_from_args(args), args.nj)
    return 0


if __name__ == "__main__":
    sys.exit(main())
