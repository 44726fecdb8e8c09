"""Spectrograms (0-2 kHz) and Harvest F0 of one held-out recording and its resynthesis by vocoders.

    python bench/vocoder_spectrograms.py --data_dir data/test --out spectrograms.png \
        --vocoder exp/vocoder/a "label a" --vocoder exp/vocoder/b "label b" [--utt N]

Shows what MCD alone does not: whether a vocoder sings the note (harmonics at F0 x k, followed by
the red F0 track) or a frame-rate comb (lines every 50 Hz, and Harvest then tracks 50 Hz).
"""
from __future__ import annotations

import argparse
import sys
import warnings

import librosa
import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from svslm.utils.audio import load_wav
from svslm.utils.fileio import read_kaldi_map
from svslm.utils.mel import mel_spectrogram
from svslm.vocoder.inference import load_vocoder

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # pyworld imports the deprecated pkg_resources
    import pyworld

MAX_HZ = 2000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="a data split with wav.scp (held out from training)")
    parser.add_argument("--vocoder", nargs=2, action="append", required=True, metavar=("DIR", "LABEL"))
    parser.add_argument("--utt", type=int, default=0, help="index of the utterance in sorted wav.scp")
    parser.add_argument("--out", required=True, help="output image (.png)")
    args = parser.parse_args(argv)
    utt, path = sorted(read_kaldi_map(f"{args.data_dir}/wav.scp").items())[args.utt]
    wav = load_wav(path)
    signals = [(f"recording {utt}", wav[: wav.size // 320 * 320])]
    for vocoder_dir, label in args.vocoder:
        vocoder = load_vocoder(vocoder_dir)
        mel = mel_spectrogram(torch.from_numpy(signals[0][1]), vocoder.mel_config)
        signals.append((label, vocoder(mel.unsqueeze(0))[0].numpy()))
    sr, n_fft, hop = 16000, 2048, 160  # 7.8 Hz bins resolve 50 Hz combs and sung harmonics alike
    bins = int(MAX_HZ / sr * n_fft) + 1
    fig, axes = plt.subplots(len(signals), 1, figsize=(10, 2.4 * len(signals)), sharex=True, squeeze=False)
    for ax, (label, x) in zip(axes[:, 0], signals):
        spec = librosa.amplitude_to_db(np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop)), ref=np.max)[:bins]
        ax.imshow(spec, origin="lower", aspect="auto", vmin=-80, extent=[0, spec.shape[1] * hop / sr, 0, MAX_HZ])
        f0, _ = pyworld.harvest(x.astype(np.float64), sr, 40, 800, frame_period=1000 * hop / sr)
        ax.plot(np.arange(f0.size) * hop / sr, np.where(f0 > 0, f0, np.nan), "r", lw=1)
        ax.set_title(f"{label} (red: Harvest F0)", fontsize=9)
        ax.set_ylabel("Hz")
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(args.out, dpi=60)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
