"""Resynthesis quality of a trained vocoder against Griffin-Lim on held-out ground-truth mel.

    python bench/vocoder_mcd.py --vocoder_dir exp/vocoder/mini --data_dir data/test [--max_utts 20]

For each utterance of `--data_dir`: the ground-truth mel (svslm.utils.mel) is turned back into a
waveform by the vocoder and by Griffin-Lim (svslm.utils.mel.griffin_lim, 32 iterations, the
filterbank inverted in the power domain), and each is scored against the recording with the
project's VERSA-style MCD (svslm.evaluate.mcd_f0, `dtw: false`, the paper's mode). Prints a
markdown table. For a generator with a harmonic source, one more row drives the source with the
recording's F0 instead of the generator's own prediction: the source's ceiling.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from svslm.evaluate.mcd_f0 import McdF0Config, mcd_f0, mode_name
from svslm.utils.audio import load_wav
from svslm.utils.fileio import read_kaldi_map
from svslm.utils.mel import griffin_lim, mel_spectrogram
from svslm.vocoder.inference import load_vocoder
from svslm.vocoder.source import frame_f0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocoder_dir", required=True)
    parser.add_argument("--data_dir", required=True, help="a data split with wav.scp (held out from training)")
    parser.add_argument("--max_utts", type=int, default=0, help="first N utterances (0 = all)")
    args = parser.parse_args(argv)
    vocoder = load_vocoder(args.vocoder_dir)
    cfg = vocoder.mel_config
    metric = McdF0Config()
    wavs = read_kaldi_map(f"{args.data_dir}/wav.scp")
    utts = sorted(wavs)[: args.max_utts or None]
    systems = ["HiFi-GAN (this vocoder)", "Griffin-Lim, 32 iterations"]
    has_source = vocoder.generator.source is not None
    if has_source:  # the source's ceiling: driven by the recording's F0 instead of the predicted one
        systems.append("HiFi-GAN, source driven by the recording's F0 (oracle)")
    scores: dict[str, dict[str, list[float]]] = {s: {"MCD": [], "F0_RMSE": [], "mel": []} for s in systems}
    start = time.time()
    for utt in utts:
        wav = load_wav(wavs[utt], sample_rate=cfg.sample_rate)
        wav = wav[: wav.size // cfg.hop_length * cfg.hop_length]
        mel = mel_spectrogram(torch.from_numpy(wav), cfg)  # [n_mels, T]
        outputs = [vocoder(mel.unsqueeze(0))[0].numpy(), griffin_lim(mel.numpy(), cfg)]
        if has_source:
            f0 = torch.from_numpy(frame_f0(wav, cfg.sample_rate, cfg.hop_length)).unsqueeze(0)
            with torch.no_grad():
                outputs.append(vocoder.generator(mel.unsqueeze(0), f0)[0].numpy())
        for system, out in zip(systems, outputs):
            result = mcd_f0(out, wav, metric, cfg.sample_rate)
            scores[system]["mel"].append(float((mel_spectrogram(out, cfg) - mel).abs().mean()))
            for key in ("MCD", "F0_RMSE"):
                if isinstance(result[key], float):
                    scores[system][key].append(result[key])
    print(f"{len(utts)} utterances of {args.data_dir}, vocoder {args.vocoder_dir}, "
          f"svslm.evaluate.mcd_f0 ({mode_name(metric)}); {time.time() - start:.0f} s\n")
    print("| resynthesis of ground-truth mel | MCD (dB) mean ± std | F0_RMSE (Hz) | mel L1 (dB) | scored |")
    print("|---|---|---|---|---|")
    for system in systems:
        mcd, f0, mel_l1 = scores[system]["MCD"], scores[system]["F0_RMSE"], scores[system]["mel"]
        print(f"| {system} | {np.mean(mcd):.2f} ± {np.std(mcd):.2f} | {np.mean(f0):.1f} | {np.mean(mel_l1):.2f} "
              f"| {len(mcd)}/{len(utts)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
