"""The paper-size LM on one GPU: DeepSpeed training step time and peak memory, KV-cache decoding speed.

    python bench/gpu_lm_probe.py --out probe.json                       # the paper: conf/lm/paper.yaml
    python bench/gpu_lm_probe.py --config conf/lm/tiny.yaml --ssl_vocab 128 --codebook_size 256 \
        --n_text 32 --frames 20 30 --decode_frames 20 --out probe.json   # the same code on CPU, in seconds

Training: a random model of the config's geometry (paper: SmolLM2-1.7B, 24 x 2048) with the
vocabulary of an extended OpusLM token list (`--ssl_vocab` SSL + 8 x `--codebook_size` codec +
`--n_text` text BPE tokens + specials + svs_lb), written in the pretrained format and trained by
svslm.lm.train.Trainer's DeepSpeed engine (the config's JSON: ZeRO-2 FP16 for the paper,
batch_bins 4000, grad_accum 4, activation checkpointing) on synthetic utterances for `--steps`
optimizer steps after one warm-up step. Decoding: svslm.lm.inference.decode with the KV cache,
`--decode_frames` target frames per utterance, at each `--decode_batch` size. Writes one JSON
(bench/gpu_check.sh turns it into bench/results/gpu.md). Single process: it sets the
torch.distributed variables itself, as the deepspeed launcher would for one GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from svslm.lm.checkpoint import save_checkpoint
from svslm.lm.config import LMRecipeConfig
from svslm.lm.inference import DecodeConfig, decode
from svslm.lm.model import LMConfig
from svslm.lm.pretrained import make_pretrained
from svslm.lm.sequence import SequenceConfig
from svslm.lm.vocab import codec_ssl_tokens
from svslm.testing.lm import make_tiny_dump, svs_lb_tokens, synth_utterance
from svslm.utils.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "conf/lm/paper.yaml"), help="stage 3 YAML (geometry, training)")
    parser.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--ssl_vocab", type=int, default=5000, help="SSL k-means clusters (XEUS: 5000)")
    parser.add_argument("--codebook_size", type=int, default=1024, help="codes per codebook (DAC: 1024)")
    parser.add_argument("--n_text", type=int, default=49152, help="text BPE tokens (SmolLM2: 49152)")
    parser.add_argument("--frames", type=int, nargs=2, default=[250, 400], help="target frames of the synthetic utterances")
    parser.add_argument("--prompt_frames", type=int, default=500)
    parser.add_argument("--utts", type=int, default=24, help="synthetic training utterances")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps (after one warm-up step)")
    parser.add_argument("--decode_frames", type=int, default=250)
    parser.add_argument("--decode_batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--out", required=True, help="JSON with the measurements")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    from svslm.lm.train import Trainer  # imports deepspeed

    config_path = Path(args.config).resolve()
    conf = load_config(config_path, LMRecipeConfig, list(args.override))
    cuda = torch.cuda.is_available()
    result: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
                    "config": str(config_path), "overrides": args.override}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        # conf/lm/paper.yaml takes its geometry from the checkpoint; LMConfig's defaults are
        # SmolLM2-1.7B's (OpusLM_1.7B), the vocabulary ESPnet's layout after the svs_lb extension.
        model = make_pretrained(conf.model or LMConfig(), codec_ssl_tokens(args.ssl_vocab, 8, args.codebook_size),
                                args.n_text, 0, {"svs_lb": svs_lb_tokens()})
        model.sequence = SequenceConfig(speaker_prompt_length=args.prompt_frames)
        vocab = model.vocab
        save_checkpoint(model, tmp / "init")
        del model
        paths = make_tiny_dump(tmp, n_train=args.utts, n_dev=2, frames=tuple(args.frames), prompt_len=args.prompt_frames,
                               ssl_vocab=args.ssl_vocab, codebook_size=args.codebook_size)
        trainer = Trainer(conf, config_path, tmp / "init", paths["train"], paths["dev"], tmp / "exp")
        engine = trainer.engine
        result.update(vocab_size=len(vocab), vocab_parts={"ssl": args.ssl_vocab, "codec": 8 * args.codebook_size,
                                                           "text": args.n_text}, params_M=sum(p.numel() for p in trainer.model.parameters()) / 1e6,
                      setup_seconds=time.perf_counter() - t, batch_bins=conf.train.batch_bins,
                      grad_accum=engine.gradient_accumulation_steps(),
                      activation_checkpointing=conf.train.activation_checkpointing,
                      deepspeed={k: v for k, v in json.loads((tmp / "exp/deepspeed_config.json").read_text()).items()
                                 if k in ("fp16", "bf16", "zero_optimization", "optimizer")})
        batches = [b for _ in range(args.steps + 1) for b in trainer.train_batches][: (args.steps + 1) * result["grad_accum"]]
        if len(batches) < (args.steps + 1) * result["grad_accum"]:
            raise SystemExit(f"only {len(batches)} micro-batches; raise --utts")
        engine.train()
        positions = 0
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        for i, utts in enumerate(batches):
            if i == result["grad_accum"]:  # one optimizer step of warm-up
                sync()
                start, positions = time.perf_counter(), 0
            batch = trainer._batch(trainer.train_set, utts)
            loss, _ = engine(*trainer._to_device(batch))
            engine.backward(loss)
            engine.step()
            positions += int(batch.attention_mask.sum())
            if not torch.isfinite(loss):
                raise SystemExit(f"loss {loss.item()} at micro-batch {i}")
        sync()
        elapsed = time.perf_counter() - start
        result.update(train_step_seconds=elapsed / args.steps, train_positions_per_second=positions / elapsed,
                      train_loss=float(loss), peak_memory_GB=torch.cuda.max_memory_allocated() / 2**30 if cuda else None)

        model = engine.module.eval()
        rng = np.random.default_rng(0)
        decodes = []
        for batch_size in args.decode_batch:
            utts = [synth_utterance(rng, args.decode_frames, args.ssl_vocab, args.codebook_size) for _ in range(batch_size)]
            svs = [u[0] for u in utts]
            prompts = [np.resize(u[1], (args.prompt_frames, 9)).astype(np.int32) for u in utts]
            dconf = DecodeConfig(batch_size=batch_size)
            with torch.no_grad():
                decode(model, vocab, [s[:40] for s in svs[:1]], prompts[:1], dconf, seed=0)  # warm-up
                sync()
                t = time.perf_counter()
                out = decode(model, vocab, svs, prompts, dconf, seed=0)
                sync()
            seconds = time.perf_counter() - t
            frames = sum(len(o) for o in out)
            decodes.append({"batch": batch_size, "frames": frames, "seconds": seconds, "frames_per_second": frames / seconds})
        result["decode"] = decodes
    Path(args.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
