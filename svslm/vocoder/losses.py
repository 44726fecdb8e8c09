"""HiFi-GAN's losses: least-squares GAN, feature matching and mel L1.

Each function returns an unweighted scalar; the weights (feature matching 2, mel 45, as
published) are applied in the training step from `LossConfig`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from svslm.utils.mel import MelConfig, mel_spectrogram
from svslm.vocoder.models import log_magnitude


def discriminator_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: each discriminator pushes real scores to 1 and generated ones to 0; summed over them."""
    return sum(
        torch.mean((1.0 - real) ** 2) + torch.mean(fake**2) for real, fake in zip(real_scores, fake_scores)
    )


def generator_adversarial_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: the generator pushes every discriminator's score of its output to 1."""
    return sum(torch.mean((1.0 - fake) ** 2) for fake in fake_scores)


def feature_matching_loss(
    real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]]
) -> torch.Tensor:
    """L1 between the discriminators' activations on real and generated audio, summed over layers
    and discriminators. Real activations are constants: only the generator learns from this."""
    return sum(
        F.l1_loss(fake, real.detach())
        for real_layers, fake_layers in zip(real_features, fake_features)
        for real, fake in zip(real_layers, fake_layers)
    )


def mel_l1_loss(fake_wav: torch.Tensor, real_wav: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """L1 between the log-mels of generated and real audio [B, N], in ln-magnitude units (the scale
    the published weight 45 goes with), whatever log scale the mel definition uses."""
    fake = log_magnitude(mel_spectrogram(fake_wav, cfg), cfg)
    real = log_magnitude(mel_spectrogram(real_wav, cfg), cfg)
    return F.l1_loss(fake, real)
