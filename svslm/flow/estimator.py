"""Velocity estimators: the 1-D U-Net of Matcha-TTS and CosyVoice (the paper's), or a DiT.

Matcha-TTS (Mehta et al., ICASSP 2024, matcha/models/components/decoder.py) and CosyVoice's
`ConditionalDecoder`, which the paper's flow code uses: the noisy features x_t and the condition
are stacked on the channel axis; each U-Net level is a ResNet block (conv, GroupNorm, Mish, with
the time embedding added) then transformer blocks over time; every level but the last halves the
frame rate on the way down and doubles it on the way up, with skip connections between levels.

The DiT (Peebles and Xie 2023, as F5-TTS and CosyVoice 2 use it for flow matching): [x_t, cond]
projected to one width, a convolutional position embedding, transformer blocks whose LayerNorms
are modulated by the time embedding (adaLN-Zero: each block starts as the identity), a modulated
final norm and a linear output. Its residual stream carries x_t straight to the output, so it
learns the near-linear part of the velocity in few steps; on CPU budgets (the mini recipe) it
trains far faster than the U-Net, whose every path goes through GroupNorm and Mish.

Written here rather than imported: Matcha-TTS and CosyVoice are applications, not libraries, and
their blocks pull in diffusers; the transformer block below is diffusers' `BasicTransformerBlock`
in its default configuration (pre-norm self-attention, then a GELU feed-forward of width 4x).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UNetConfig:
    """The Matcha/CosyVoice U-Net (the paper's code). `kind` may be left out: the U-Net is the default."""

    kind: Literal["unet"] = "unet"
    channels: list[int] = field(default_factory=lambda: [256, 256])  # width per level; every level but the last halves time
    n_blocks: int = 1  # transformer blocks per level and per middle block
    n_mid_blocks: int = 2  # middle blocks (ResNet + transformers) at the lowest frame rate
    n_heads: int = 4  # attention heads
    head_dim: int = 64  # width of one attention head (heads x head_dim need not equal the channels)
    dropout: float = 0.05  # dropout in attention and feed-forward
    activation: Literal["gelu", "silu"] = "gelu"  # feed-forward nonlinearity of the transformer blocks
    groups: int = 8  # GroupNorm groups of the ResNet blocks (must divide every width)


@dataclass
class DiTConfig:
    """The DiT; `kind: dit` is required, so a config without it is the U-Net's."""

    kind: Literal["dit"]
    dim: int = 256  # model width
    n_blocks: int = 1  # number of DiT blocks
    n_heads: int = 4  # attention heads
    head_dim: int = 64  # width of one attention head
    dropout: float = 0.05  # dropout in attention and feed-forward
    activation: Literal["gelu", "silu"] = "gelu"  # feed-forward nonlinearity
    groups: int = 8  # groups of the convolutional position embedding (must divide `dim`)


# The config key `estimator` is one of these, told apart by `kind`; a field of the other is an error.
EstimatorConfig = UNetConfig | DiTConfig


class SinusoidalTimeEmbedding(nn.Module):
    """Flow time t [B] in [0, 1] -> [B, dim] sinusoids; t is scaled by 1000 as in Matcha-TTS so
    that small differences of t reach the high frequencies."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise ValueError(f"time embedding width must be even, got {dim}")
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / (half - 1))
        angles = 1000.0 * t.float().unsqueeze(1) * freqs.unsqueeze(0)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class MaskedGroupNorm(nn.GroupNorm):
    """GroupNorm whose statistics cover the valid frames only. Matcha-TTS uses torch's GroupNorm,
    whose mean and variance include the padded frames: an utterance's output then depends on how
    much padding its batch gave it, in training and in batched sampling."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # x [B, C, T], mask [B, 1, T]
        b, c, t = x.shape
        g = x.view(b, self.num_groups, c // self.num_groups, t)
        m = mask.view(b, 1, 1, t)
        count = (m.sum(-1, keepdim=True) * g.shape[2]).clamp(min=1.0)
        mean = (g * m).sum((2, 3), keepdim=True) / count
        var = (((g - mean) * m) ** 2).sum((2, 3), keepdim=True) / count
        normed = ((g - mean) / torch.sqrt(var + self.eps)).view(b, c, t)
        return normed * self.weight.view(1, c, 1) + self.bias.view(1, c, 1)


class Block1D(nn.Module):
    def __init__(self, dim: int, dim_out: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim_out, 3, padding=1)
        self.norm = MaskedGroupNorm(groups, dim_out)
        self.act = nn.Mish()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x * mask), mask)) * mask


class ResnetBlock1D(nn.Module):
    """Two conv blocks with the time embedding added between them, and a 1x1 residual path."""

    def __init__(self, dim: int, dim_out: int, time_dim: int, groups: int):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Mish(), nn.Linear(time_dim, dim_out))
        self.block1 = Block1D(dim, dim_out, groups)
        self.block2 = Block1D(dim_out, dim_out, groups)
        self.residual = nn.Conv1d(dim, dim_out, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        h = self.block1(x, mask) + self.time_mlp(time_emb).unsqueeze(-1)
        return self.block2(h, mask) + self.residual(x * mask)


class SelfAttention(nn.Module):
    """Multi-head self-attention over time with padded keys masked out: x [B, T, C], mask [B, T]."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.n_heads, self.head_dim, self.dropout = n_heads, head_dim, dropout
        self.qkv = nn.Linear(dim, 3 * n_heads * head_dim, bias=False)
        self.out = nn.Linear(n_heads * head_dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attend = mask.bool().view(b, 1, 1, t)  # every query sees the valid keys only
        h = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attend, dropout_p=self.dropout if self.training else 0.0
        )  # [B, heads, T, head_dim]
        return self.out(h.transpose(1, 2).reshape(b, t, -1))


def feed_forward(dim: int, activation: str, dropout: float) -> nn.Sequential:
    act = nn.GELU() if activation == "gelu" else nn.SiLU()
    return nn.Sequential(nn.Linear(dim, 4 * dim), act, nn.Dropout(dropout), nn.Linear(4 * dim, dim))


class TransformerBlock(nn.Module):
    """Pre-norm self-attention and feed-forward over time; x [B, T, C], mask [B, T]."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, dropout: float, activation: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, n_heads, head_dim, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = feed_forward(dim, activation, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.ff(self.norm2(x))


class UNetLevel(nn.Module):
    """One ResNet block followed by transformer blocks, all masked."""

    def __init__(self, dim: int, dim_out: int, time_dim: int, cfg: UNetConfig):
        super().__init__()
        self.resnet = ResnetBlock1D(dim, dim_out, time_dim, cfg.groups)
        self.transformers = nn.ModuleList(
            TransformerBlock(dim_out, cfg.n_heads, cfg.head_dim, cfg.dropout, cfg.activation)
            for _ in range(cfg.n_blocks)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        x = self.resnet(x, mask, time_emb).transpose(1, 2)  # [B, T, C]
        for block in self.transformers:
            x = block(x, mask.squeeze(1))
        return x.transpose(1, 2)  # [B, C, T]


class UNet1DEstimator(nn.Module):
    """v(x_t, t, cond): x [B, out_channels, T], cond [B, cond_channels, T] -> velocity [B, out_channels, T]."""

    def __init__(self, out_channels: int, cond_channels: int, cfg: UNetConfig):
        super().__init__()
        channels = list(cfg.channels)
        if any(c % cfg.groups for c in channels):
            raise ValueError(f"every estimator width {channels} must be divisible by groups={cfg.groups}")
        self.n_down = len(channels) - 1  # levels that halve the frame rate
        time_dim = 4 * channels[0]
        self.time_embedding = SinusoidalTimeEmbedding(channels[0])
        self.time_mlp = nn.Sequential(nn.Linear(channels[0], time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))

        self.down = nn.ModuleList()
        dim = out_channels + cond_channels
        for i, width in enumerate(channels):
            last = i == len(channels) - 1
            resample = nn.Conv1d(width, width, 3, padding=1) if last else nn.Conv1d(width, width, 3, stride=2, padding=1)
            self.down.append(nn.ModuleList([UNetLevel(dim, width, time_dim, cfg), resample]))
            dim = width
        self.mid = nn.ModuleList(UNetLevel(dim, dim, time_dim, cfg) for _ in range(cfg.n_mid_blocks))
        self.up = nn.ModuleList()
        widths_up = channels[::-1] + [channels[0]]
        for i in range(len(channels)):
            last = i == len(channels) - 1
            width_in, width = widths_up[i], widths_up[i + 1]
            resample = (
                nn.Conv1d(width, width, 3, padding=1) if last else nn.ConvTranspose1d(width, width, 4, stride=2, padding=1)
            )
            # The input is the level below concatenated with the skip connection of this level.
            self.up.append(nn.ModuleList([UNetLevel(2 * width_in, width, time_dim, cfg), resample]))
        self.final_block = Block1D(channels[0], channels[0], cfg.groups)
        self.final_proj = nn.Conv1d(channels[0], out_channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        n_frames = x.shape[-1]
        # Pad time to a multiple of 2^n_down so that halving and doubling return the same length.
        multiple = 2**self.n_down
        pad = (-n_frames) % multiple
        if pad:
            x, cond, mask = (F.pad(a, (0, pad)) for a in (x, cond, mask))
        time_emb = self.time_mlp(self.time_embedding(t))  # [B, time_dim]
        h = torch.cat([x, cond], dim=1)  # [B, out + cond channels, T]

        skips, masks = [], [mask]
        for level, downsample in self.down:
            h = level(h, masks[-1], time_emb)
            skips.append(h)
            h = downsample(h * masks[-1])
            masks.append(masks[-1][:, :, ::2])
        masks.pop()  # the last level keeps its frame rate
        mask_mid = masks[-1]
        for level in self.mid:
            h = level(h, mask_mid, time_emb)
        for level, upsample in self.up:
            mask_up = masks.pop()
            h = level(torch.cat([h, skips.pop()], dim=1), mask_up, time_emb)
            h = upsample(h * mask_up)
        h = self.final_block(h, mask)
        out = self.final_proj(h * mask) * mask
        return out[..., :n_frames]


class DiTBlock(nn.Module):
    """Transformer block with adaLN-Zero time conditioning: the time embedding sets the shift and
    scale of both LayerNorms and the gates of both residual branches (gates start at zero)."""

    def __init__(self, dim: int, time_dim: int, cfg: DiTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = SelfAttention(dim, cfg.n_heads, cfg.head_dim, cfg.dropout)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.ff = feed_forward(dim, cfg.activation, cfg.dropout)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, 6 * dim))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(time_emb).unsqueeze(1).chunk(6, dim=-1)
        x = x + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1, mask)
        return x + gate2 * self.ff(self.norm2(x) * (1 + scale2) + shift2)


class DiTEstimator(nn.Module):
    """v(x_t, t, cond) as a DiT: x [B, out_channels, T], cond [B, cond_channels, T] -> [B, out_channels, T]."""

    def __init__(self, out_channels: int, cond_channels: int, cfg: DiTConfig):
        super().__init__()
        dim = cfg.dim
        if dim % cfg.groups:
            raise ValueError(f"dit width {dim} must be divisible by groups={cfg.groups}")
        self.time_embedding = SinusoidalTimeEmbedding(dim)
        self.time_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.input = nn.Linear(out_channels + cond_channels, dim)
        # Relative position from a wide grouped convolution, as F5-TTS's ConvPositionEmbedding.
        self.position = nn.Sequential(nn.Conv1d(dim, dim, 31, padding=15, groups=cfg.groups), nn.Mish())
        self.blocks = nn.ModuleList(DiTBlock(dim, dim, cfg) for _ in range(cfg.n_blocks))
        self.final_norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.output = nn.Linear(dim, out_channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        m = mask.transpose(1, 2)  # [B, T, 1]
        time_emb = self.time_mlp(self.time_embedding(t))  # [B, dim]
        h = self.input(torch.cat([x, cond], dim=1).transpose(1, 2)) * m  # [B, T, dim]
        h = h + self.position(h.transpose(1, 2)).transpose(1, 2) * m
        for block in self.blocks:
            h = block(h, mask.squeeze(1), time_emb) * m
        shift, scale = self.final_modulation(time_emb).unsqueeze(1).chunk(2, dim=-1)
        out = self.output(self.final_norm(h) * (1 + scale) + shift) * m  # [B, T, out_channels]
        return out.transpose(1, 2)


def build_estimator(out_channels: int, cond_channels: int, cfg: EstimatorConfig) -> nn.Module:
    if cfg.kind == "dit":
        return DiTEstimator(out_channels, cond_channels, cfg)
    return UNet1DEstimator(out_channels, cond_channels, cfg)
