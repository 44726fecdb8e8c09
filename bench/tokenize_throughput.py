"""Stage 2 benchmark: tokenization throughput per backend, and the mini codec's reconstruction.

    python bench/tokenize_throughput.py --data_dir data --tokenizer_dir dump/tokenizers \
        --out bench/results/tokenize.md

Throughput is audio seconds per wall-clock second over the held-out splits (dev + test), with 1
and 2 worker processes (one thread each). Reconstruction compares held-out audio with the mini
codec's output: log-mel RMSE against the number of codebooks used, and mel-cepstral distortion
(WORLD CheapTrick envelope, order 39, alpha 0.466 at 16 kHz, c0 included, no time warping) of the
decoded audio, beside Griffin-Lim of the unquantized log-mel, which isolates what the quantizer
loses from what the phase reconstruction loses.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pysptk
import pyworld
import torch

from svslm.tokenize.codec import MiniCodec, load_codec, log_mel_frames
from svslm.tokenize.config import SSLConfig
from svslm.tokenize.ssl import HubertFeatures, load_ssl_tokenizer
from svslm.utils.audio import load_wav
from svslm.utils.fileio import read_kaldi_map
from svslm.utils.mel import griffin_lim
from svslm.utils.workers import process_pool

SR = 16000


def held_out_audio(data_dir: Path) -> dict[str, np.ndarray]:
    wavs = {}
    for split in ("dev", "test"):
        for utt, path in read_kaldi_map(data_dir / split / "wav.scp").items():
            wavs[utt] = load_wav(path, sample_rate=SR)
    return wavs


_STATE: dict = {}


def _init(tokenizer_dir: str, what: str) -> None:
    torch.set_num_threads(1)
    if what in ("codec", "codec_ssl"):
        _STATE["codec"] = load_codec(Path(tokenizer_dir) / "codec")
    if what in ("ssl", "codec_ssl"):
        _STATE["ssl"] = load_ssl_tokenizer(Path(tokenizer_dir) / "ssl")


def _encode(wav: np.ndarray) -> int:
    n = 0
    if "codec" in _STATE:
        n += len(_STATE["codec"].encode(wav))
    if "ssl" in _STATE:
        n += len(_STATE["ssl"].encode(wav))
    return n


def throughput(tokenizer_dir: Path, what: str, wavs: list[np.ndarray], nj: int) -> float:
    seconds = sum(len(w) for w in wavs) / SR
    if nj == 1:
        _init(str(tokenizer_dir), what)
        _encode(wavs[0])  # warm-up: first calls load lazy library code
        start = time.perf_counter()
        for w in wavs:
            _encode(w)
        elapsed = time.perf_counter() - start
        _STATE.clear()
    else:
        with process_pool(nj, _init, (str(tokenizer_dir), what)) as pool:
            pool.map(_encode, wavs[:nj])  # warm-up: workers load the tokenizers
            start = time.perf_counter()
            pool.map(_encode, wavs, chunksize=1)
            elapsed = time.perf_counter() - start
    return seconds / elapsed


def hubert_base_throughput(wavs: list[np.ndarray], tmp: Path) -> float:
    """HuBERT-base geometry (transformers' default config) with random weights: the speed of the
    feature extraction does not depend on the weights, which cannot be downloaded here."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(tmp / "hubert_base_random")
    torch.set_num_threads(1)
    extractor = HubertFeatures(SSLConfig(backend="hubert", model_path=str(tmp / "hubert_base_random"), layer=9))
    start = time.perf_counter()
    for w in wavs:
        extractor(w)
    return sum(len(w) for w in wavs) / SR / (time.perf_counter() - start)


def mcep(wav: np.ndarray) -> np.ndarray:
    """Mel-cepstra [T, 40] of the WORLD spectral envelope at a 5 ms shift."""
    x = wav.astype(np.float64) * 32768.0
    f0, t = pyworld.harvest(x, SR, f0_floor=40.0, f0_ceil=800.0, frame_period=5.0)
    sp = pyworld.cheaptrick(x, f0, t, SR, fft_size=1024)
    return pysptk.sp2mc(sp, order=39, alpha=0.466)


def mcd(ref: np.ndarray, hyp: np.ndarray) -> tuple[float, float]:
    """(MCD with c0, MCD without c0): c0 carries the gain, which mel inversion does not keep exactly."""
    a, b = mcep(ref), mcep(hyp)
    n = min(len(a), len(b))
    diff = a[:n] - b[:n]
    per_frame = lambda d: 10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum(d**2, axis=1))
    return float(np.mean(per_frame(diff))), float(np.mean(per_frame(diff[:, 1:])))


def reconstruction(codec: MiniCodec, wavs: list[np.ndarray]) -> tuple[list[float], np.ndarray, np.ndarray]:
    """(log-mel RMSE in dB for 1..8 codebooks, MCD (with, without c0) of decode, the same for
    Griffin-Lim on the true log-mel)."""
    rmse = np.zeros(8)
    frames = 0
    mcd_codec, mcd_gl = [], []
    for w in wavs:
        target = log_mel_frames(w, codec.mel)  # [T, 80]
        codes = codec.encode(w)
        approx = np.zeros_like(target)
        for i in range(8):
            approx = approx + codec.codebooks[i][codes[:, i]]
            rmse[i] += np.sum(np.mean((approx - target) ** 2, axis=1))
        frames += len(target)
        n = len(target) * 320
        mcd_codec.append(mcd(w[:n], codec.decode(codes)))
        mcd_gl.append(mcd(w[:n], griffin_lim(target.T, codec.mel, n_iter=codec.config.griffin_lim_iters)))
    return list(np.sqrt(rmse / frames)), np.mean(mcd_codec, axis=0), np.mean(mcd_gl, axis=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--tokenizer_dir", default="dump/tokenizers", help="fitted by stage 2")
    parser.add_argument("--out", default="bench/results/tokenize.md")
    args = parser.parse_args()
    data_dir, tokenizer_dir = Path(args.data_dir), Path(args.tokenizer_dir)
    held_out = held_out_audio(data_dir)
    wavs = list(held_out.values())
    seconds = sum(len(w) for w in wavs) / SR
    codec = load_codec(tokenizer_dir / "codec")
    ssl = load_ssl_tokenizer(tokenizer_dir / "ssl")

    rows = []
    for what, label in (("codec", f"codec `{codec.config.backend}` (8 x {codec.codebook_size})"),
                        ("ssl", f"SSL `{ssl.config.backend}` (k-means {ssl.vocab_size})"),
                        ("codec_ssl", "codec_ssl (both, as stage 2 runs)")):
        rows.append((label, throughput(tokenizer_dir, what, wavs, 1), throughput(tokenizer_dir, what, wavs, 2)))
    torch.set_num_threads(1)
    start = time.perf_counter()
    for w in wavs[:4]:
        codec.decode(codec.encode(w))
    decode_speed = sum(len(w) for w in wavs[:4]) / SR / (time.perf_counter() - start)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        hubert = hubert_base_throughput(wavs[:4], Path(tmp))
    try:
        import espnet2  # noqa: F401

        espnet_note = "espnet is installed, but no ESPnet-Codec/XEUS checkpoint is available here"
    except ImportError:
        espnet_note = "the optional `espnet` extra is not installed here (and the weights cannot be downloaded)"

    lines = [
        "# Stage 2 tokenization benchmark",
        "",
        (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
         f"(shared with other jobs), torch {torch.__version__}, one thread per process (spawned workers). "
         f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
         f"Audio: the held-out splits of `{data_dir}` ({len(wavs)} utterances, {seconds:.1f} s)."),
        "Command: `python bench/tokenize_throughput.py --data_dir data --tokenizer_dir dump/tokenizers`",
        "",
        "## Throughput (audio seconds per wall second)",
        "",
        "| backend | 1 process | 2 processes |",
        "|---|---|---|",
        *[f"| {label} | {one:.1f} | {two:.1f} |" for label, one, two in rows],
        f"| HuBERT-base geometry, random weights (feature extraction only) | {hubert:.1f} | not run |",
        f"| codec `{codec.config.backend}` decode (Griffin-Lim, {codec.config.griffin_lim_iters} iterations) | {decode_speed:.1f} | not run |",
        "| ESPnet-Codec DAC, XEUS | unavailable | unavailable |",
        "",
        f"ESPnet-Codec and XEUS: {espnet_note}.",
        "",
        "With so little audio, 2 processes are not faster: each worker receives the audio through a pipe and the 2 cores are shared with other jobs; stage 2 sends whole shards (file paths, not audio) to its workers.",
        "",
    ]
    if isinstance(codec, MiniCodec):
        rmse, mcd_codec, mcd_gl = reconstruction(codec, wavs)
        lines += [
            "## Mini codec reconstruction (held-out audio)",
            "",
            "Log-mel RMSE (dB, 80 bins) of the quantized log-mel (sum of the first n code vectors):",
            "",
            "| codebooks | " + " | ".join(str(i) for i in range(1, 9)) + " |",
            "|---|" + "---|" * 8,
            "| RMSE dB | " + " | ".join(f"{r:.2f}" for r in rmse) + " |",
            "",
            ("Mel-cepstral distortion against the original audio (dB; WORLD CheapTrick envelope, "
             "sp2mc order 39, alpha 0.466, frames truncated to the shorter, no DTW):"),
            "",
            "| audio | MCD dB, c0 included | MCD dB, without c0 |",
            "|---|---|---|",
            f"| codec decode (8 codebooks + Griffin-Lim) | {mcd_codec[0]:.2f} | {mcd_codec[1]:.2f} |",
            f"| Griffin-Lim of the unquantized log-mel (the decoder's own ceiling) | {mcd_gl[0]:.2f} | {mcd_gl[1]:.2f} |",
            "",
        ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
