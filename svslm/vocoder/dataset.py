"""Training segments for the vocoder: aligned (input mel, waveform) pairs cut from utterances.

The input mel is the ground truth, cropped so that it equals the whole utterance's mel (what the
vocoder sees at inference). Randomness is a function of (seed, epoch) only, so an interrupted
training resumes mid-epoch with exactly the segments it would have drawn.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from svslm.utils.audio import load_wav
from svslm.utils.fileio import read_kaldi_map
from svslm.utils.mel import MelConfig, mel_spectrogram
from svslm.vocoder.source import frame_f0

log = logging.getLogger("svslm")

class DataError(ValueError):
    """Training data that cannot be used; the message lists every bad utterance."""


@dataclass
class VocoderUtterance:
    """A recording the vocoder cuts training segments from (svslm.data.utterance.Utterance is the
    annotated score of stage 1; this is only audio and its length)."""

    utt: str
    wav_path: str
    n_frames: int  # mel frames: N // hop


def read_utterances(wav_scp: Path, mel: MelConfig, min_frames: int) -> list[VocoderUtterance]:
    """The usable utterances of `wav_scp`, sorted by id.

    Utterances shorter than `min_frames` are skipped with a warning. Unreadable audio or a wrong
    sample rate are errors, all reported together.
    """
    wavs = read_kaldi_map(wav_scp)
    bad, short, items = [], [], []
    for utt in sorted(wavs):
        try:
            info = sf.info(wavs[utt])
        except Exception as err:  # noqa: BLE001 soundfile raises several types for unreadable files
            bad.append(f"{utt}: unreadable audio {wavs[utt]} ({err})")
            continue
        if info.samplerate != mel.sample_rate:
            bad.append(f"{utt}: {wavs[utt]} is {info.samplerate} Hz, the mel needs {mel.sample_rate} Hz")
            continue
        n_frames = info.frames // mel.hop_length
        if n_frames < min_frames:
            short.append(utt)
            continue
        items.append(VocoderUtterance(utt, wavs[utt], n_frames))
    if bad:
        raise DataError(f"{len(bad)} bad utterance(s) for the vocoder:\n  " + "\n  ".join(bad))
    if short:
        log.warning("%s: %d utterances shorter than %d frames skipped: %s",
                    wav_scp, len(short), min_frames, " ".join(short[:20]))
    return items


def ground_truth_mel_segment(wav: np.ndarray, start: int, n_frames: int, cfg: MelConfig) -> np.ndarray:
    """Frames [start, start + n_frames) of the whole utterance's mel, computing only a slice.

    The slice carries enough context on each side for every kept frame's analysis window; where
    it meets the utterance's ends, the reflect padding is the same as for the whole utterance.
    """
    margin = -(-(cfg.n_fft - cfg.hop_length) // cfg.hop_length)  # frames of window overhang
    first = max(0, start - margin)
    end = min(wav.size, (start + n_frames + margin) * cfg.hop_length)
    mel = mel_spectrogram(wav[first * cfg.hop_length:end], cfg).numpy()  # [n_mels, frames of slice]
    return mel[:, start - first:start - first + n_frames]


class SegmentDataset(Dataset):
    """Item `(index, seed)` -> (mel float32 [n_mels, S], waveform float32 [S * hop], F0 float32 [S]
    in Hz, or [0] when `with_f0` is off), S = segment_frames.

    F0 (for a generator with a harmonic source) is analysed once per utterance, when first drawn,
    and kept: 50 floats a second."""

    def __init__(self, utterances: list[VocoderUtterance], mel: MelConfig, segment_frames: int, with_f0: bool = False):
        self.utterances = utterances
        self.mel = mel
        self.segment_frames = segment_frames
        self.with_f0 = with_f0
        self._f0: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key
        item = self.utterances[index]
        hop, frames = self.mel.hop_length, self.segment_frames
        wav = load_wav(item.wav_path)
        start = int(np.random.default_rng(seed).integers(0, item.n_frames - frames + 1))
        mel = ground_truth_mel_segment(wav, start, frames, self.mel)
        segment = wav[start * hop:(start + frames) * hop]
        f0 = np.zeros(0, dtype=np.float32)
        if self.with_f0:
            if item.utt not in self._f0:
                self._f0[item.utt] = frame_f0(wav, self.mel.sample_rate, hop)
            f0 = self._f0[item.utt][start:start + frames]
        return (torch.from_numpy(np.ascontiguousarray(mel)), torch.from_numpy(segment.copy()),
                torch.from_numpy(f0.copy()))


def epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int) -> list[list[tuple[int, int]]]:
    """The batches of one epoch: a shuffled pass over the utterances, one random segment each
    (the segment's seed rides along with the index); the last incomplete batch is dropped."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n_items)
    segment_seeds = rng.integers(0, 2**31 - 1, size=n_items)
    keys = [(int(i), int(s)) for i, s in zip(order, segment_seeds)]
    return [keys[b:b + batch_size] for b in range(0, n_items - batch_size + 1, batch_size)]
