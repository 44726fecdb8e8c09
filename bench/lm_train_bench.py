"""Training throughput of the tiny LM config through DeepSpeed on CPU (target frames per second).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/lm_train_bench.py [--data_dir dump --init_dir exp/lm_init/mini]

Uses the real mini dump (`--data_dir` with train/ and dev/ data.json, `--init_dir` stage 2's
extended LM) when given,
otherwise synthetic data of the same shape (44 utterances of 150-300 frames, 150-frame prompts,
128 SSL clusters, 8 x 256 codec). The time covers the whole training loop, including the
per-epoch validation and checkpoint writes, and excludes DeepSpeed start-up.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch

from svslm.lm.config import LMRecipeConfig
from svslm.testing.lm import make_init_checkpoint, make_tiny_dump
from svslm.utils.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", help="a stage 2 dump/ directory (default: synthetic data)")
    parser.add_argument("--init_dir", help="with --data_dir: stage 2's extended LM (exp/lm_init/<tag>)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if bool(args.data_dir) != bool(args.init_dir):
        parser.error("--data_dir and --init_dir go together (the real dump and the LM stage 2 extended for it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    from svslm.lm.train import Trainer

    config_path = ROOT / "conf/lm/tiny.yaml"
    conf = load_config(config_path, LMRecipeConfig, [f"train.max_epochs={args.epochs}"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.data_dir:
            dump = Path(args.data_dir)
            paths = {"train": dump / "train/data.json", "dev": dump / "dev/data.json"}
            init = Path(args.init_dir)
        else:
            paths = make_tiny_dump(tmp, n_train=44, n_dev=4, frames=(150, 300), prompt_len=150,
                                   ssl_vocab=128, codebook_size=256)
            init = make_init_checkpoint(tmp / "init", conf.model, 128, 256)
        trainer = Trainer(conf, config_path, init, paths["train"], paths["dev"], tmp / "exp")
        frames = sum(trainer.train_set.split.num_frames.values())
        positions = sum(trainer.train_set.lengths.values())
        t = time.perf_counter()
        trainer.run()
        elapsed = time.perf_counter() - t
    n_params = sum(p.numel() for p in trainer.model.parameters()) / 1e6
    print(f"tiny ({n_params:.2f}M params), {torch.get_num_threads()} torch thread(s), "
          f"{'real dump' if args.data_dir else 'synthetic data'}: {args.epochs} epochs x {frames} target frames "
          f"({positions} delayed positions) in {elapsed:.1f} s = {args.epochs * frames / elapsed:.0f} target frames/s "
          f"({args.epochs * positions / elapsed:.0f} positions/s); load average {Path('/proc/loadavg').read_text().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
