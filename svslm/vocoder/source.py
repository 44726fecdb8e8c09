"""A harmonic excitation for the generator (neural source-filter, NSF) and the F0 that drives it.

Why: a convolutional mel -> waveform generator is equivariant to a one-frame shift, so a steady
mel (a held note) can only come out 320-sample periodic: a 50 Hz comb, not the sung pitch. The
pitch must come from the phase, the running sum of F0 over the whole note, which no finite
receptive field computes (Morrison et al., "Chunked autoregressive GAN", ICLR 2022). HiFi-GAN
learns to work around it only after very long training. The NSF fix (Wang & Yamagishi, 2019; the
"NSF-HiFiGAN" of singing synthesis) adds sines at F0 and its harmonics, whose phase is that
running sum, to every upsampling stage. The vocoder's input stays the mel alone: a small F0
predictor reads F0 off the mel at inference; in training the source is driven by the recording's
F0 (pyworld), and the predictor learns from it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from svslm.utils.f0 import dio_f0

F0_FLOOR, F0_CEIL = 60.0, 1100.0  # Hz: from low male speech to the top of a soprano's range


def frame_f0(wav: np.ndarray, sample_rate: int, hop_length: int) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) at the centre of each mel frame: float32 [N // hop].

    DIO + StoneMask (svslm.utils.f0): fast enough to run on every training utterance. Mel frame t
    is centred on sample t * hop + hop / 2 (svslm.utils.mel), so F0 is analysed every half hop and
    the odd values kept.
    """
    n_frames = len(wav) // hop_length
    if n_frames == 0:
        return np.zeros(0, dtype=np.float32)
    f0, _ = dio_f0(wav, sample_rate, 1000.0 * hop_length / 2 / sample_rate, F0_FLOOR, F0_CEIL)
    index = np.minimum(2 * np.arange(n_frames) + 1, f0.size - 1)
    return f0[index].astype(np.float32)


class HarmonicSource(nn.Module):
    """Frame F0 [B, T] -> excitation [B, 1, T * hop]: sines at F0 x 1..H with one continuous phase
    plus a little noise in voiced frames, noise alone in unvoiced ones, mixed by a learned linear
    layer (NSF's sine source; amplitudes 0.1 and noise levels 0.003 / 0.033 as published)."""

    def __init__(self, n_harmonics: int, sample_rate: int, hop_length: int):
        super().__init__()
        self.sample_rate, self.hop_length = sample_rate, hop_length
        self.register_buffer("harmonics", torch.arange(1, n_harmonics + 1, dtype=torch.float32), persistent=False)
        self.mix = nn.Linear(n_harmonics, 1)

    def forward(self, f0: torch.Tensor) -> torch.Tensor:
        # Linear interpolation to the sample rate keeps glides and vibrato smooth.
        f0 = F.interpolate(f0.unsqueeze(1), scale_factor=self.hop_length, mode="linear").squeeze(1)  # [B, N]
        voiced = (f0 > 0).unsqueeze(-1).to(f0.dtype)  # [B, N, 1]
        cycles = torch.cumsum(f0.double() / self.sample_rate, dim=1)  # double: a long song's sum stays exact
        if self.training:  # random initial phase, as real recordings have
            cycles = cycles + torch.rand(f0.shape[0], 1, device=f0.device, dtype=cycles.dtype)
        phase = 2 * math.pi * (cycles - torch.floor(cycles)).to(f0.dtype).unsqueeze(-1)  # [B, N, 1]
        below_nyquist = (f0.unsqueeze(-1) * self.harmonics < self.sample_rate / 2).to(f0.dtype)
        sines = 0.1 * torch.sin(phase * self.harmonics) * below_nyquist  # [B, N, H]
        noise_level = 0.003 * voiced + 0.033 * (1 - voiced)
        excitation = sines * voiced + noise_level * torch.randn_like(sines)
        return torch.tanh(self.mix(excitation)).transpose(1, 2)  # [B, 1, N]


# The F0 predictor classifies each frame into 20-cent pitch bins plus "unvoiced" (as CREPE does):
# on the mini corpus a regression of log F0 by the same network stalled at ~60 cents median error,
# the classifier reached ~11 cents in the same steps.
F0_BIN_CENTS = 20.0
N_F0_BINS = int(1200 * math.log2(F0_CEIL / F0_FLOOR) / F0_BIN_CENTS) + 1
F0_TARGET_WIDTH_BINS = 1.25  # std of the Gaussian around the true bin in the training target (25 cents)


def f0_bin_position(f0: torch.Tensor) -> torch.Tensor:
    """Fractional bin index of F0 in Hz (bin 0 = F0_FLOOR)."""
    return 1200 * torch.log2(f0.clamp(min=F0_FLOOR) / F0_FLOOR) / F0_BIN_CENTS


def f0_target(f0: torch.Tensor) -> torch.Tensor:
    """F0 [B, T] in Hz (0 = unvoiced) -> target distribution [B, N_F0_BINS + 1, T]: a Gaussian over
    the pitch bins for a voiced frame, all mass on the last ("unvoiced") class otherwise."""
    bins = torch.arange(N_F0_BINS, device=f0.device, dtype=f0.dtype)[None, :, None]
    distance = bins - f0_bin_position(f0)[:, None, :]
    voiced = (f0 > 0).to(f0.dtype)[:, None, :]
    target = torch.cat([torch.exp(-0.5 * (distance / F0_TARGET_WIDTH_BINS) ** 2) * voiced, 1 - voiced], dim=1)
    return target / target.sum(1, keepdim=True)


def decode_f0(logits: torch.Tensor) -> torch.Tensor:
    """Logits [B, N_F0_BINS + 1, T] -> F0 [B, T] in Hz: 0 where "unvoiced" outweighs all pitch
    bins together, else the probability-weighted bin position in the 9 bins around the best one."""
    prob = logits.softmax(1)[:, :N_F0_BINS]  # [B, bins, T]
    voiced = prob.sum(1) > 0.5
    near = (prob.argmax(1, keepdim=True) + torch.arange(-4, 5, device=logits.device)[None, :, None])
    near = near.clamp(0, N_F0_BINS - 1)
    weights = prob.gather(1, near)
    position = (near.to(prob.dtype) * weights).sum(1) / weights.sum(1).clamp(min=1e-12)
    f0 = F0_FLOOR * 2 ** (position * F0_BIN_CENTS / 1200)
    return torch.where(voiced, f0, torch.zeros_like(f0))


class F0Predictor(nn.Module):
    """Log-mel (HiFi-GAN units) [B, n_mels, T] -> pitch-class logits [B, N_F0_BINS + 1, T].

    Five same-padded convolutions (~0.2 s of context each side) are enough: F0 is written in the
    mel as the positions of the low harmonics, and voicing as their presence."""

    def __init__(self, n_mels: int, channels: int):
        super().__init__()
        layers, width = [], n_mels
        for _ in range(5):
            layers += [nn.Conv1d(width, channels, 5, padding=2), nn.LeakyReLU(0.1)]
            width = channels
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv1d(channels, N_F0_BINS + 1, 1)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(log_mel))

    def predict(self, log_mel: torch.Tensor) -> torch.Tensor:
        """F0 in Hz [B, T], 0 for unvoiced frames."""
        return decode_f0(self(log_mel))


def f0_loss(logits: torch.Tensor, target_f0: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the predictor's pitch classes against f0_target(target_f0), per frame."""
    return -(f0_target(target_f0) * logits.log_softmax(1)).sum(1).mean()
