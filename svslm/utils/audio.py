"""Audio I/O with soundfile and resampling with librosa (torchaudio is unusable with CPU torch)."""
from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from svslm.utils.fileio import atomic_path

# The one audio geometry of the recipe: the codec's (ESPnet-Codec, 16 kHz, 50 frames a second),
# which the SSL tokens, the mel, the score's frames and the metrics all follow.
SAMPLE_RATE = 16000  # Hz
FRAME_RATE = 50  # frames per second
HOP_LENGTH = SAMPLE_RATE // FRAME_RATE  # 320 samples per frame


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""


def load_wav(path: str | Path, sample_rate: int | None = None, mono: bool = False) -> np.ndarray:
    """Read `path` as float32 in [-1, 1], shape [samples].

    `sample_rate`: resample to this rate when given. Multi-channel audio is an error unless
    `mono=True`, in which case channels are averaged. Empty or non-finite audio is an error.
    """
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several error types for unreadable files
        raise AudioError(f"{path}: unreadable audio ({err})") from err
    if wav.shape[1] > 1:
        if not mono:
            raise AudioError(f"{path}: {wav.shape[1]} channels, expected mono")
        wav = wav.mean(axis=1, keepdims=True)
    wav = wav[:, 0]
    if wav.size == 0:
        raise AudioError(f"{path}: empty audio")
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"{path}: audio contains NaN or Inf samples")
    if sample_rate is not None and sr != sample_rate:
        wav = resample(wav, sr, sample_rate, where=str(path))
    return wav


def resample(wav: np.ndarray, orig_sr: int, target_sr: int, where: str = "audio") -> np.ndarray:
    if orig_sr <= 0 or target_sr <= 0:
        raise AudioError(f"{where}: cannot resample from {orig_sr} Hz to {target_sr} Hz")
    if orig_sr == target_sr:
        return wav.astype(np.float32)
    return librosa.resample(wav, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(
        np.float32
    )


def save_wav(path: str | Path, wav: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM atomically; samples are clipped to [-1, 1]."""
    wav = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wav, sample_rate, subtype="PCM_16", format="WAV")
