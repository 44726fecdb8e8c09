"""Quality against ODE steps of trained flow models, and the codec condition alone as a baseline.

    python bench/flow_steps.py --exp_dirs exp/flow/mini/tiny_flow1_mel exp/flow/mini/tiny_flow2_mel \
        --data_dir data --dump_dir dump --lm_decode_dir exp/lm/mini/decode --split test \
        --out bench/results/flow.md

For every model and number of steps (2, 4, 8, 16, 32 by default) the test utterances are sampled
in one batch and compared with the ground truth:
- mel L1: mean absolute difference of the log-mel, dB, over all frames and bands;
- mel-cepstral distance: 10/ln10 sqrt(2 sum_k (c_k - c'_k)^2), k = 1..24, averaged over frames,
  where c is the cepstrum of the mel's natural-log amplitude scaled as SPTK's
  (ln|X| = c_0 + 2 sum_k c_k cos(...)): an MCD computed on the 80-band mel, not on WORLD's
  spectrum, so comparable between rows here but not with VERSA's MCD;
- F0 RMSE (Hz, frames voiced in both) and voicing error: pyworld Harvest at 5 ms, 60-1000 Hz, on audio
  rebuilt from each mel by Griffin-Lim (32 iterations), the reference rebuilt the same way so that
  the inversion's own error cancels;
- real-time factor: sampling wall time per second of audio (torch threads as stated).
A model with codec-embedding output is judged on the mel of the codec decoder's audio. The baseline
"codec condition" row is the mel of the codec decoding the condition tokens (LM + CD without a
flow); with the mini codec, whose latent is a quantised log-mel, the condition's embedding read
directly as a mel is shown too.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pyworld
import scipy.fft
import torch

from svslm.flow.config import FlowConfig
from svslm.flow.data import FlowDataset, collate, load_flow_examples
from svslm.flow.inference import load_flow
from svslm.flow.train import variant_name
from svslm.utils.config import load_config
from svslm.utils.mel import MelConfig, griffin_lim, mel_spectrogram

N_CEPSTRA = 24


def mel_l1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def mel_cepstral_distance(a: np.ndarray, b: np.ndarray, cfg: MelConfig) -> float:
    """a, b: log-mel [n_mels, T] in the config's scale."""
    def cepstra(m):
        ln_amplitude = m * np.log(10.0) / 20.0 if cfg.log_scale == "db_power" else m
        # unnormalised DCT-II y_k = 2 sum_n x_n cos(pi k (2n + 1) / 2N) = 2N c_k
        return scipy.fft.dct(ln_amplitude, type=2, axis=0)[1 : N_CEPSTRA + 1] / (2 * m.shape[0])
    diff = cepstra(a) - cepstra(b)
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * (diff**2).sum(0))))


def f0_of_mel(m: np.ndarray, cfg: MelConfig) -> np.ndarray:
    wav = griffin_lim(m, cfg).astype(np.float64)
    f0, _ = pyworld.harvest(wav, cfg.sample_rate, f0_floor=60.0, f0_ceil=1000.0, frame_period=5.0)
    return f0


def f0_errors(ref: np.ndarray, hyp: np.ndarray) -> tuple[float, float]:
    n = min(len(ref), len(hyp))
    ref, hyp = ref[:n], hyp[:n]
    both = (ref > 0) & (hyp > 0)
    rmse = float(np.sqrt(np.mean((ref[both] - hyp[both]) ** 2))) if both.any() else float("nan")
    return rmse, float(np.mean((ref > 0) != (hyp > 0)))


def scores(refs: list[np.ndarray], hyps: list[np.ndarray], ref_f0: list[np.ndarray], cfg: MelConfig) -> dict:
    out = {"l1": [], "mcd": [], "f0": [], "vuv": []}
    for ref, hyp, f0_ref in zip(refs, hyps, ref_f0):
        n = min(ref.shape[1], hyp.shape[1])
        out["l1"].append(mel_l1(ref[:, :n], hyp[:, :n]))
        out["mcd"].append(mel_cepstral_distance(ref[:, :n], hyp[:, :n], cfg))
        rmse, vuv = f0_errors(f0_ref, f0_of_mel(hyp[:, :n], cfg))
        out["f0"].append(rmse)
        out["vuv"].append(vuv)
    return {k: float(np.nanmean(v)) for k, v in out.items()}


def row(name: str, s: dict, rtf: str = "") -> str:
    return f"| {name} | {s['l1']:.2f} | {s['mcd']:.2f} | {s['f0']:.1f} | {100 * s['vuv']:.1f} | {rtf} |"


def bench_model(exp_dir: Path, args, codec) -> list[str]:
    cfg = load_config(exp_dir / "config.yaml", FlowConfig)
    flow = load_flow(exp_dir)
    train_steps = torch.load(exp_dir / "best.pth", weights_only=True)["step"]
    mel_cfg = flow.mel_config
    name = variant_name(cfg.model)
    mel_out = cfg.model.output == "mel"
    if not mel_out:  # judged in mel space: the target mel is needed as the reference
        cfg.model.output = "mel"
    examples, bad = load_flow_examples(args.split, cfg.model, cfg.data, args.data_dir, args.dump_dir, args.lm_decode_dir)
    dataset = FlowDataset(examples[: args.max_utts], cfg.model)
    batch = collate([dataset[i] for i in range(len(dataset))])
    lengths = batch["mask"].sum(1).tolist()
    refs = [batch["target_mel"][i, :, :n].numpy() for i, n in enumerate(lengths)]
    ref_f0 = [f0_of_mel(r, mel_cfg) for r in refs]
    seconds = sum(lengths) / mel_cfg.frame_rate
    emb = codec.embed(batch["cond_tokens"]).float()

    def to_mels(out: torch.Tensor) -> list[np.ndarray]:
        if mel_out:
            return [out[i, :, :n].numpy() for i, n in enumerate(lengths)]
        wavs = [codec.decode_embedding(out[i, :n]) for i, n in enumerate(lengths)]
        return [mel_spectrogram(w, mel_cfg).numpy() for w in wavs]

    lines = [f"### {exp_dir.name}: {name}", "",
             (f"{len(refs)} utterances of {args.split} ({seconds:.1f} s){'; left out: ' + str(len(bad)) if bad else ''}; "
              f"solver {flow.cfg.sampling.solver}, seed 0; trained {train_steps} steps."), "",
             "| system | mel L1 (dB) | mel-cepstral dist. (dB) | F0 RMSE (Hz) | V/UV err. (%) | s per s of audio |",
             "|---|---|---|---|---|---|"]
    cond_mels = [mel_spectrogram(codec.decode(batch["cond_tokens"][i, :n]), mel_cfg).numpy() for i, n in enumerate(lengths)]
    lines.append(row(f"codec condition ({flow.condition_source}), codec decoder", scores(refs, cond_mels, ref_f0, mel_cfg)))
    if codec.embed_dim == mel_cfg.n_mels and type(codec).__name__ == "MiniCodec":
        direct = [emb[i, :n].T.numpy() for i, n in enumerate(lengths)]
        lines.append(row(f"codec condition ({flow.condition_source}), embedding as mel", scores(refs, direct, ref_f0, mel_cfg)))
    prompt = batch.get("prompt_mel")
    default = flow.cfg.sampling
    runs = [(n, default.guidance) for n in args.steps]
    runs += [(default.n_steps, g) for g in args.guidances if g != default.guidance]
    for n_steps, guidance in runs:
        start = time.perf_counter()
        out = flow.sample(emb, batch.get("midi"), batch["mask"], n_steps=n_steps, guidance=guidance, seed=0,
                          prompt_mel=prompt)
        rtf = (time.perf_counter() - start) / seconds
        name = f"flow, {n_steps} steps, guidance {guidance}"
        lines.append(row(name, scores(refs, to_mels(out), ref_f0, mel_cfg), f"{rtf:.3f}"))
        print(lines[-1], file=sys.stderr)
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="flow quality against ODE steps")
    parser.add_argument("--exp_dirs", nargs="+", required=True, type=Path)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--dump_dir", required=True)
    parser.add_argument("--lm_decode_dir", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--steps", nargs="+", type=int, default=[2, 4, 8, 16, 32])
    parser.add_argument("--guidances", nargs="*", type=float, default=[0.0, 0.7],
                        help="guidance scales tried at the config's number of steps")
    parser.add_argument("--max_utts", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write (default: print)")
    args = parser.parse_args(argv)
    from svslm.tokenize.codec import load_codec

    codec = load_codec(Path(args.dump_dir) / "tokenizers" / "codec")
    header = [
        "# Flow matching: quality against ODE steps", "",
        (f"Written by `bench/flow_steps.py` on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; "
         f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}; "
         "the machine was shared with other jobs, so times are upper bounds."), "",
        ("Lower is better everywhere. Metrics are defined in the script's docstring; F0 comes from "
         "Griffin-Lim audio of each mel, not from a vocoder."), "",
    ]
    body = []
    for exp_dir in args.exp_dirs:
        body += bench_model(exp_dir, args, codec)
    text = "\n".join(header + body)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
