"""Load a trained vocoder for inference: log-mel [B, n_mels, T] -> waveform [B, T * hop]."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from svslm.utils.config import load_config
from svslm.utils.mel import MelConfig, check_same_mel
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.models import Generator


class Vocoder(nn.Module):
    """A trained HiFi-GAN generator (weight norm folded in) with the mel definition it expects."""

    def __init__(self, generator: Generator, mel_config: MelConfig):
        super().__init__()
        self.generator = generator
        self.mel_config = mel_config

    @property
    def hop_length(self) -> int:
        return self.mel_config.hop_length

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, n_mels, T] (any device; moved to the vocoder's) -> waveform [B, T * hop]."""
        if mel.dim() != 3 or mel.shape[1] != self.mel_config.n_mels:
            raise ValueError(f"vocoder input must be [B, {self.mel_config.n_mels}, T], got {list(mel.shape)}")
        device = next(self.generator.parameters()).device
        return self.generator(mel.to(device=device, dtype=torch.float32))


def load_vocoder(exp_dir: str | Path, device: str | torch.device = "cpu",
                 mel_config: MelConfig | None = None) -> Vocoder:
    """The vocoder trained in `exp_dir` (config.yaml + generator.pth), in eval mode on `device`.

    `mel_config`: the caller's mel definition (e.g. the flow model's); a vocoder trained on a
    different one is refused with MelMismatchError rather than producing plausible noise.
    """
    exp_dir = Path(exp_dir)
    weights = exp_dir / "generator.pth"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found: train the vocoder first (run.sh stage 5)")
    cfg = load_config(exp_dir / "config.yaml", VocoderConfig)
    if mel_config is not None:
        check_same_mel(cfg.mel, mel_config, f"vocoder {exp_dir}", "the caller")
    generator = Generator(cfg.generator, cfg.mel)
    generator.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    generator.remove_weight_norm()
    return Vocoder(generator, cfg.mel).to(device).eval()
