"""Decoding speed of the speech LM: KV cache against recomputing the whole prefix every step.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/lm_decode_bench.py [--quick]

For each model size (tiny = conf/lm/tiny.yaml's geometry with the mini vocabulary; mid = a 512-wide,
8-layer Llama with the paper's vocabulary sizes) and score length T (250, 1000 frames; the prefix
holds 2T svs_lb tokens and the prompt), it measures in a fresh process (so peak RSS is per case):
- end-to-end `decode()` of one utterance: target frames per second;
- the cost of one decoding step at the first and at the last target frame: with the cache (one
  position through the backbone) and without (the whole delayed prefix through the backbone).
End-to-end recompute is run only where it finishes in minutes; elsewhere the table says so.
Prints a markdown table (copied into bench/results/lm.md).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from svslm.lm.config import LMRecipeConfig
from svslm.lm.inference import DecodeConfig, _delayed_rows, decode
from svslm.lm.model import LMConfig, SpeechLM
from svslm.lm.sequence import build_prefix
from svslm.lm.vocab import Vocabulary
from svslm.testing.lm import codec_ssl_tokens, svs_lb_tokens, synth_utterance
from svslm.utils.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    # name: (geometry, ssl vocab, codebook size, prompt frames)
    "tiny": (load_config(ROOT / "conf/lm/tiny.yaml", LMRecipeConfig).model, 128, 256, 150),
    "mid": (LMConfig(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
                     intermediate_size=2048, rope_theta=130000.0, max_position_embeddings=8192, nq=9), 5000, 1024, 500),
}
# End-to-end recompute is quadratic in length: run it only where it takes minutes, not hours.
FULL_RECOMPUTE_E2E = {("tiny", 250), ("tiny", 1000)}


def build(size: str):
    conf, ssl_vocab, codebook, prompt_len = SIZES[size]
    from svslm.lm.pretrained import pretrained_token_list

    tokens, _ = pretrained_token_list(codec_ssl_tokens(ssl_vocab, 8, codebook), 32)
    vocab = Vocabulary(tokens + svs_lb_tokens())  # the svs markers are in ESPnet's special block
    model = SpeechLM(conf, vocab).eval()
    model.init_weights(0)
    return model, vocab, ssl_vocab, codebook, prompt_len


def step_costs(model: SpeechLM, prefix: np.ndarray, T: int, reps: int = 3) -> dict[str, float]:
    """ms per decoding step at the first (L) and last (L + T) target position, both modes."""
    from transformers import DynamicCache

    pad, nq = model.vocab.pad, model.conf.nq
    L = len(prefix)
    out = {}
    with torch.no_grad():
        for where, length in (("first", L), ("last", L + T + nq - 2)):
            buf = torch.full((1, length + nq, nq), pad, dtype=torch.long)
            buf[0, :L] = torch.from_numpy(prefix)
            rows = _delayed_rows(buf, 0, length + 1, pad)
            # with cache: prefill `length` positions, then time single-position steps
            cache = DynamicCache(config=model.corelm.decoders.model.config)
            model.hidden(rows[:, :length], cache=cache)
            t = time.perf_counter()
            for i in range(reps):
                pos = torch.tensor([[length + i]])
                model.hidden(rows[:, length : length + 1], position_ids=pos, cache=cache)
            out[f"cache_ms_{where}"] = 1000 * (time.perf_counter() - t) / reps
            t = time.perf_counter()
            for _ in range(reps):
                model.hidden(rows[:, : length + 1])
            out[f"recompute_ms_{where}"] = 1000 * (time.perf_counter() - t) / reps
    return out


def run_case(size: str, T: int, e2e_modes: list[str]) -> dict:
    torch.manual_seed(0)
    model, vocab, ssl_vocab, codebook, prompt_len = build(size)
    rng = np.random.default_rng(0)
    svs, target = synth_utterance(rng, T, ssl_vocab, codebook)
    prompt = np.resize(target, (prompt_len, 9)).astype(np.int32)
    prefix = build_prefix(vocab, svs, prompt, "bench")
    result = {"size": size, "T": T, "prefix": len(prefix), "params_M": sum(p.numel() for p in model.parameters()) / 1e6}
    decode(model, vocab, [svs[:40]], [prompt], DecodeConfig(), seed=0)  # warm-up
    for mode in e2e_modes:
        t = time.perf_counter()
        out = decode(model, vocab, [svs], [prompt], DecodeConfig(use_cache=mode == "cache"), seed=0)[0]
        assert out.shape == (T, 9)
        result[f"{mode}_fps"] = T / (time.perf_counter() - t)
    result.update(step_costs(model, prefix, T))
    result["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # size:T:modes, run in a child process
    parser.add_argument("--quick", action="store_true", help="T = 250 only")
    args = parser.parse_args()
    if args.case:
        size, T, modes = args.case.split(":")
        print(json.dumps(run_case(size, int(T), [m for m in modes.split(",") if m])))
        return 0
    rows = []
    for size in SIZES:
        for T in (250,) if args.quick else (250, 1000):
            modes = ["cache"] + (["recompute"] if (size, T) in FULL_RECOMPUTE_E2E else [])
            res = subprocess.run([sys.executable, __file__, "--case", f"{size}:{T}:{','.join(modes)}"],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(rows[-1], file=sys.stderr, flush=True)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), "
          f"torch {torch.__version__}, load average {Path('/proc/loadavg').read_text().split()[:3]}")
    print("| size | params | T | prefix | e2e frames/s cache | e2e frames/s recompute | step ms cache first/last "
          "| step ms recompute first/last | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rec = f"{r['recompute_fps']:.1f}" if "recompute_fps" in r else "not run (quadratic; see step cost)"
        print(f"| {r['size']} | {r['params_M']:.1f}M | {r['T']} | {r['prefix']} | {r['cache_fps']:.1f} | {rec} "
              f"| {r['cache_ms_first']:.1f} / {r['cache_ms_last']:.1f} "
              f"| {r['recompute_ms_first']:.1f} / {r['recompute_ms_last']:.1f} | {r['peak_rss_MB']:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
