"""Real-time factor of the vocoder's generator on CPU: seconds of compute per second of audio.

    python bench/vocoder_rtf.py [--threads 2] [--seconds 10] [--repeats 5]

Times one forward pass over `--seconds` of audio (a random log-mel of seconds * 50 frames,
batch 1, weight norm folded in, torch.inference_mode) for the V1 generator (conf/vocoder/paper.yaml),
V1 with the harmonic source and linear upsampling, the tiny one (conf/vocoder/tiny.yaml), and for the same V1 architecture in a maintained
reference implementation, transformers' SpeechT5HifiGan. Prints a markdown table of the median
over `--repeats` runs after one warm-up. RTF < 1 is faster than real time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from svslm.utils.config import load_config
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.models import Generator

CONF = Path(__file__).resolve().parents[1] / "conf" / "vocoder"


def median_seconds(forward, mel: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        forward(mel)  # warm-up: allocator and oneDNN kernel selection
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            forward(mel)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def ours(config: Path, overrides: list[str]) -> tuple[torch.nn.Module, int]:
    cfg = load_config(config, VocoderConfig, overrides=overrides)
    generator = Generator(cfg.generator, cfg.mel)
    generator.remove_weight_norm()
    return generator.eval(), sum(p.numel() for p in generator.parameters())


def reference_v1() -> tuple[object, int] | str:
    """transformers' SpeechT5HifiGan at the V1 geometry of paper.yaml, or why it is unavailable."""
    try:
        from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig
    except ImportError as err:
        return f"transformers not importable ({err})"
    g = load_config(CONF / "paper.yaml", VocoderConfig).generator
    model = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=80, sampling_rate=16000, upsample_rates=g.upsample_rates,
        upsample_kernel_sizes=g.upsample_kernel_sizes, upsample_initial_channel=g.upsample_initial_channel,
        resblock_kernel_sizes=g.resblock_kernel_sizes, resblock_dilation_sizes=g.resblock_dilation_sizes,
        normalize_before=False)).eval()
    # SpeechT5HifiGan takes [B, T, n_mels].
    return (lambda mel: model(mel.transpose(1, 2))), sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]  # other processes on the machine skew the timings
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mel = torch.randn(1, 80, int(args.seconds * 50)) * 10 - 40
    rows = []
    for name, config, overrides in (
        ("V1 (paper.yaml), svslm", CONF / "paper.yaml", []),
        ("V1 + harmonic source, linear upsampling, svslm", CONF / "paper.yaml",
         ["generator.source_harmonics=8", "generator.upsample_mode=linear"]),
        ("tiny (tiny.yaml: source, linear upsampling), svslm", CONF / "tiny.yaml", []),
    ):
        model, n_params = ours(config, overrides)
        rows.append((name, n_params, median_seconds(model, mel, args.repeats)))
    ref = reference_v1()
    if isinstance(ref, str):
        rows.append(("V1, transformers SpeechT5HifiGan", None, ref))
    else:
        forward, n_params = ref
        rows.append(("V1, transformers SpeechT5HifiGan (reference)", n_params, median_seconds(forward, mel, args.repeats)))
    print(f"{args.seconds:g} s of audio, batch 1, {args.threads} torch threads, median of {args.repeats}; "
          f"machine load average before: {load_before:.1f}\n")
    print("| generator | parameters | seconds | RTF |")
    print("|---|---|---|---|")
    for name, n_params, value in rows:
        if isinstance(value, str):
            print(f"| {name} | - | unavailable: {value} | - |")
        else:
            print(f"| {name} | {n_params / 1e6:.2f} M | {value:.2f} | {value / args.seconds:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
