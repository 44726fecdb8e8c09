"""The one mel-spectrogram definition shared by the flow model, the vocoder and the metrics.

Geometry follows the codec (16 kHz, hop 320 = 50 fps), so mel frames and codec frames align
one to one. Framing follows HiFi-GAN: the signal is reflect-padded by (n_fft - hop) / 2 on each
side and not centred, so `n_samples // hop` frames come out and a vocoder that upsamples by
`hop` returns the original length.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import librosa
import numpy as np
import torch

from svslm.utils.audio import HOP_LENGTH, SAMPLE_RATE


@dataclass
class MelConfig:
    sample_rate: int = SAMPLE_RATE  # Hz; the codec's rate
    n_fft: int = 1024  # FFT size
    hop_length: int = HOP_LENGTH  # samples per frame: 16000 / 320 = 50 frames per second
    win_length: int = 1024  # Hann window length
    n_mels: int = 80  # mel bins
    fmin: float = 0.0  # lowest mel band edge, Hz
    fmax: float = 8000.0  # highest mel band edge, Hz (Nyquist at 16 kHz)
    # How amplitudes are compressed: "db_power" = 10 log10(power) as the paper's flow code
    # (log-power in dB); "ln_magnitude" = natural log of magnitude as HiFi-GAN.
    log_scale: Literal["db_power", "ln_magnitude"] = "db_power"
    floor: float = 1e-5  # magnitude floor before the log (a power floor of floor**2)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length


class MelMismatchError(ValueError):
    """Two components were built with different mel definitions."""


def check_same_mel(a: MelConfig, b: MelConfig, a_name: str, b_name: str) -> None:
    """Refuse to combine components (flow, vocoder, metric) whose mel definitions differ."""
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    diff = {k: (da[k], db[k]) for k in da if da[k] != db.get(k)}
    if diff:
        details = ", ".join(f"{k}: {va!r} vs {vb!r}" for k, (va, vb) in diff.items())
        raise MelMismatchError(f"mel settings of {a_name} and {b_name} differ ({details})")


_FILTERBANKS: dict[tuple, torch.Tensor] = {}


def _mel_basis(cfg: MelConfig, device: torch.device) -> torch.Tensor:
    key = (cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax, str(device))
    if key not in _FILTERBANKS:
        basis = librosa.filters.mel(
            sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
        )
        _FILTERBANKS[key] = torch.from_numpy(basis).float().to(device)
    return _FILTERBANKS[key]


def mel_spectrogram(wav: torch.Tensor | np.ndarray, cfg: MelConfig) -> torch.Tensor:
    """Log-mel of `wav` [B, N] or [N] -> [B, n_mels, N // hop] (or [n_mels, N // hop])."""
    squeeze = False
    if isinstance(wav, np.ndarray):
        wav = torch.from_numpy(np.asarray(wav, dtype=np.float32))
    if wav.dim() == 1:
        wav, squeeze = wav.unsqueeze(0), True
    pad = (cfg.n_fft - cfg.hop_length) // 2
    x = torch.nn.functional.pad(wav.unsqueeze(1), (pad, cfg.n_fft - cfg.hop_length - pad), mode="reflect")
    spec = torch.stft(
        x.squeeze(1),
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=torch.hann_window(cfg.win_length, device=wav.device),
        center=False,
        return_complex=True,
    )
    n_frames = wav.shape[-1] // cfg.hop_length
    power = spec.abs().pow(2)[..., :n_frames]
    mel_power = torch.matmul(_mel_basis(cfg, wav.device), power)
    if cfg.log_scale == "db_power":
        mel = 10.0 * torch.log10(torch.clamp(mel_power, min=cfg.floor**2))
    else:
        mel = torch.log(torch.clamp(mel_power.sqrt(), min=cfg.floor))
    return mel.squeeze(0) if squeeze else mel


def mel_to_linear_magnitude(mel: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """Invert the log and the filterbank (least squares): [n_mels, T] -> magnitude [n_fft/2+1, T]."""
    # The mel was built from power, so the filterbank is inverted on power, then the root taken:
    # inverting it on magnitude leaves the level about 13 dB too high.
    if cfg.log_scale == "db_power":
        mel_power = np.power(10.0, mel / 10.0)
    else:
        mel_power = np.exp(2.0 * mel)
    basis = librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )
    return np.sqrt(librosa.util.nnls(basis, mel_power))


def griffin_lim(mel: np.ndarray, cfg: MelConfig, n_iter: int = 32) -> np.ndarray:
    """Griffin-Lim waveform from a log-mel [n_mels, T]: the baseline every vocoder must beat."""
    mag = mel_to_linear_magnitude(mel, cfg)
    wav = librosa.griffinlim(
        mag, n_iter=n_iter, hop_length=cfg.hop_length, win_length=cfg.win_length, n_fft=cfg.n_fft,
        center=True, random_state=0,
    )
    n = mel.shape[-1] * cfg.hop_length
    return np.pad(wav, (0, max(0, n - wav.size)))[:n].astype(np.float32)
