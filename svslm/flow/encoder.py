"""What the flow is conditioned on: the codec-embedding encoder, the score's pitch, the singer.

- `ConditionEncoder`: codec embeddings [B, T, D] -> mu [B, C, T] in the output's width, a stack of
  pre-norm transformer blocks with an optional Conformer convolution module. The paper's code
  uses ESPnet's ConformerEncoder with 3 blocks, 4 heads, FFN 1024, the convolution module off and
  relative positions; here positions are absolute sinusoids (the condition is frame-aligned with
  the output, so only local order matters) and the block is torch's own TransformerEncoderLayer.
- `PitchEmbedding` (Flow2): the score's MIDI note per frame -> [log2(f0 / 440 Hz), voiced] ->
  a linear projection. The paper's code projects the raw MIDI number (rests 0) by Linear(1, 512);
  log-F0 in octaves with a separate voiced flag keeps rests from looking like a very low note.
- `PromptEncoder`: a mel prompt (another utterance of the same singer) -> one speaker vector,
  by two convolutions and a masked mean over time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderConfig:
    d_model: int = 512  # width of the condition encoder
    n_blocks: int = 3  # encoder blocks
    n_heads: int = 4  # attention heads
    ffn_dim: int = 1024  # feed-forward width
    conv_kernel: int = 0  # Conformer convolution module kernel after each block; 0 = none (the paper's code)
    dropout: float = 0.1  # dropout in the encoder
    spk_dim: int = 64  # width of the speaker vector made from the mel prompt (when the prompt is used)


def sinusoidal_positions(n_frames: int, dim: int, device: torch.device) -> torch.Tensor:
    """Absolute sinusoidal position encodings [T, dim] (Vaswani et al. 2017)."""
    pos = torch.arange(n_frames, device=device, dtype=torch.float32).unsqueeze(1)
    freqs = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n_frames, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freqs)
    pe[:, 1::2] = torch.cos(pos * freqs[: dim // 2])
    return pe


class ConvModule(nn.Module):
    """Conformer convolution module (Gulati et al. 2020): pointwise + GLU, depthwise conv, norm,
    SiLU, pointwise; LayerNorm instead of BatchNorm so padding never enters the statistics."""

    def __init__(self, dim: int, kernel: int, dropout: float):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd to keep frames aligned, got {kernel}")
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.depth_norm = nn.LayerNorm(dim)
        self.pointwise_out = nn.Conv1d(dim, dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x [B, T, C], mask [B, T, 1]
        h = nn.functional.glu(self.pointwise_in((self.norm(x) * mask).transpose(1, 2)), dim=1)
        h = self.depthwise(h * mask.transpose(1, 2)).transpose(1, 2)  # [B, T, C]
        h = self.pointwise_out(nn.functional.silu(self.depth_norm(h)).transpose(1, 2)).transpose(1, 2)
        return x + self.dropout(h)


class ConditionEncoder(nn.Module):
    """Codec embeddings [B, T, in_dim] + mask [B, T] -> mu [B, out_dim, T] (zero on padding)."""

    def __init__(self, in_dim: int, out_dim: int, cfg: EncoderConfig):
        super().__init__()
        self.input = nn.Sequential(nn.Linear(in_dim, cfg.d_model), nn.LayerNorm(cfg.d_model), nn.Dropout(cfg.dropout))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                cfg.d_model, cfg.n_heads, cfg.ffn_dim, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(cfg.n_blocks)
        )
        self.convs = nn.ModuleList(
            ConvModule(cfg.d_model, cfg.conv_kernel, cfg.dropout) if cfg.conv_kernel > 0 else nn.Identity()
            for _ in range(cfg.n_blocks)
        )
        self.final_norm = nn.LayerNorm(cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, out_dim)

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(emb.dtype)  # [B, T, 1]
        x = self.input(emb)
        x = x + sinusoidal_positions(x.shape[1], x.shape[2], x.device)
        for block, conv in zip(self.blocks, self.convs):
            x = block(x * m, src_key_padding_mask=~mask)
            if not isinstance(conv, nn.Identity):
                x = conv(x, m)
        return (self.proj(self.final_norm(x)) * m).transpose(1, 2)  # [B, out_dim, T]


def pitch_features(midi: torch.Tensor) -> torch.Tensor:
    """MIDI note per frame [B, T] (0 = rest) -> [B, T, 2]: log2(f0 / 440 Hz), 0 on rests, and voiced."""
    voiced = midi > 0
    log_f0 = torch.where(voiced, (midi.float() - 69.0) / 12.0, torch.zeros_like(midi, dtype=torch.float32))
    return torch.stack([log_f0, voiced.float()], dim=-1)


class PitchEmbedding(nn.Module):
    """Flow2's pitch condition: MIDI [B, T] -> [B, out_dim, T]."""

    def __init__(self, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(2, out_dim)

    def forward(self, midi: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (self.proj(pitch_features(midi)) * mask.unsqueeze(-1)).transpose(1, 2)


class PromptEncoder(nn.Module):
    """Normalised mel prompt [B, n_mels, P] + mask [B, P] -> speaker vector [B, spk_dim]."""

    def __init__(self, n_mels: int, hidden: int, spk_dim: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(n_mels, hidden, 5, padding=2), nn.GELU(), nn.Conv1d(hidden, hidden, 5, padding=2), nn.GELU()
        )
        self.proj = nn.Linear(hidden, spk_dim)

    def forward(self, prompt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(1).to(prompt.dtype)  # [B, 1, P]
        h = self.convs(prompt * m) * m
        pooled = h.sum(-1) / m.sum(-1).clamp(min=1.0)  # [B, hidden]
        return self.proj(pooled)
