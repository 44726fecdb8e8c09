"""HiFi-GAN (Kong et al., 2020): generator, multi-period and multi-scale discriminators.

Written here rather than imported: no maintained package installs cleanly with these modules.
transformers' SpeechT5HifiGan is the same generator but inference-only (no discriminators), and
its `remove_weight_norm` fails on the weight norm its own `apply_weight_norm` adds under current
torch (parametrizations vs the old hook API); parallel-wavegan 0.6.1 is an sdist whose setup.py
imports pip (fails under pip's build isolation) and which no longer imports with current SciPy.
The generator is tested to compute exactly what SpeechT5HifiGan computes with the same weights.
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from svslm.utils.mel import MelConfig
from svslm.vocoder.config import SCALE_GROUPS, DiscriminatorConfig, GeneratorConfig
from svslm.vocoder.source import F0Predictor, HarmonicSource

LRELU_SLOPE = 0.1


def log_magnitude(mel: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """A log-mel in HiFi-GAN's units, ln(magnitude): the scale its input layer and loss weights
    were tuned for. A dB power mel (10 log10 |X|^2) is rescaled by ln(10) / 20."""
    if cfg.log_scale == "db_power":
        return mel * (math.log(10.0) / 20.0)
    return mel


def _conv_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd-kernel dilated convolution."""
    return (kernel_size * dilation - dilation) // 2


def _init_normal(module: nn.Module) -> nn.Module:
    """V1's initialisation of the upsampling and residual convolutions: N(0, 0.01)."""
    nn.init.normal_(module.weight, 0.0, 0.01)
    return module


class ResBlock(nn.Module):
    """Residual block type 1: per dilation, lrelu -> dilated conv -> lrelu -> conv, plus a skip."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(_init_normal(nn.Conv1d(channels, channels, kernel_size, dilation=d,
                                               padding=_conv_padding(kernel_size, d))))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(_init_normal(nn.Conv1d(channels, channels, kernel_size,
                                               padding=_conv_padding(kernel_size))))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2):
            y = conv2(F.leaky_relu(conv1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = x + y
        return x


class Generator(nn.Module):
    """Log-mel [B, n_mels, T] -> waveform [B, T * hop] in [-1, 1]."""

    def __init__(self, cfg: GeneratorConfig, mel: MelConfig):
        super().__init__()
        self.mel = mel
        self.hop_length = math.prod(cfg.upsample_rates)
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        ch = cfg.upsample_initial_channel
        self.conv_pre = weight_norm(nn.Conv1d(mel.n_mels, ch, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for rate, kernel in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
            if cfg.upsample_mode == "linear":
                # Resize-convolution (Odena et al., 2016): no transposed-conv checkerboard, whose
                # period at the first stage is one frame, i.e. a 50 Hz tone over everything.
                self.ups.append(nn.Sequential(
                    nn.Upsample(scale_factor=rate, mode="linear"),
                    weight_norm(_init_normal(nn.Conv1d(ch, ch // 2, 2 * rate + 1, padding=rate)))))
            else:
                # (kernel - rate) / 2 padding makes the output exactly `rate` times longer.
                self.ups.append(weight_norm(_init_normal(
                    nn.ConvTranspose1d(ch, ch // 2, kernel, stride=rate, padding=(kernel - rate) // 2))))
            ch //= 2
            for k, dilations in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(ResBlock(ch, k, dilations))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, padding=3))
        self.source = self.f0_predictor = None
        if cfg.source_harmonics:
            self.source = HarmonicSource(cfg.source_harmonics, mel.sample_rate, self.hop_length)
            self.f0_predictor = F0Predictor(mel.n_mels, cfg.f0_predictor_channels)
            # Strided convolutions bring the excitation down to each stage's rate.
            self.source_downs = nn.ModuleList()
            ch = cfg.upsample_initial_channel
            for i in range(len(cfg.upsample_rates)):
                ch //= 2
                stride = math.prod(cfg.upsample_rates[i + 1:])
                # kernel 2 s + 1 with padding s gives exactly length / s for any stride s
                self.source_downs.append(nn.Conv1d(1, ch, 2 * stride + 1, stride=stride, padding=stride))

    def forward(self, mel: torch.Tensor, f0: torch.Tensor | None = None) -> torch.Tensor:
        """mel [B, n_mels, T]; f0 [B, T] in Hz drives the harmonic source if there is one (the
        recording's F0 in training; None = the generator's own prediction from the mel)."""
        log_mel = log_magnitude(mel, self.mel)
        x = self.conv_pre(log_mel)  # [B, C, T]
        source = None
        if self.source is not None:
            source = self.source(self.f0_predictor.predict(log_mel) if f0 is None else f0)  # [B, 1, T * hop]
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))  # [B, C / 2^(i+1), T * prod(rates[:i+1])]
            if source is not None:
                x = x + self.source_downs[i](source)
            # Multi-receptive-field fusion: the mean of the residual blocks' outputs.
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # V1 uses lrelu's default slope 0.01 here
        return torch.tanh(x).squeeze(1)  # [B, T * hop]

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights for inference (same outputs, less compute)."""
        for module in list(self.modules()):
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight")


# Discriminators return (scores, feature_maps): one score tensor per sub-discriminator and, for
# each, the list of its intermediate activations (the feature-matching loss compares these).
DiscriminatorOutput = tuple[list[torch.Tensor], list[list[torch.Tensor]]]


class PeriodDiscriminator(nn.Module):
    """Views the waveform as a 2-D [T / period, period] image and convolves along time only."""

    def __init__(self, period: int, channels: list[int]):
        super().__init__()
        self.period = period
        widths = [1] + channels
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (3 if i < len(channels) - 1 else 1, 1),
                                  padding=(2, 0)))
            for i, (c_in, c_out) in enumerate(itertools.pairwise(widths))
        )
        self.conv_post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, n = wav.shape
        if n % self.period:  # reflect-pad to a whole number of periods
            wav = F.pad(wav.unsqueeze(1), (0, self.period - n % self.period), mode="reflect").squeeze(1)
        x = wav.view(b, 1, -1, self.period)  # [B, 1, N / period, period]
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods: list[int], channels: list[int]):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        outputs = [d(wav) for d in self.discriminators]
        return [score for score, _ in outputs], [feats for _, feats in outputs]


class ScaleDiscriminator(nn.Module):
    """Strided grouped 1-D convolutions over the waveform at one time scale."""

    def __init__(self, channels: list[int], use_spectral_norm: bool = False):
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        widths = [1] + channels
        kernels = (15, 41, 41, 41, 41, 41, 5)
        strides = (1, 2, 2, 4, 4, 1, 1)
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(c_in, c_out, k, s, groups=g, padding=_conv_padding(k)))
            for c_in, c_out, k, s, g in zip(widths[:-1], widths[1:], kernels, strides, SCALE_GROUPS)
        )
        self.conv_post = norm(nn.Conv1d(channels[-1], 1, 3, padding=1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = wav.unsqueeze(1)  # [B, 1, N]
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features


class MultiScaleDiscriminator(nn.Module):
    """Scale discriminators on the raw waveform (spectral norm) and on x2, x4 average-pooled copies."""

    def __init__(self, n_scales: int, channels: list[int]):
        super().__init__()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(channels, use_spectral_norm=(i == 0)) for i in range(n_scales)
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        scores, features = [], []
        for i, d in enumerate(self.discriminators):
            if i > 0:
                wav = self.pool(wav.unsqueeze(1)).squeeze(1)  # half the rate of the previous scale
            score, feats = d(wav)
            scores.append(score)
            features.append(feats)
        return scores, features


class Discriminators(nn.Module):
    """MPD and MSD together: their outputs are concatenated, as the losses sum over both."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.mpd = MultiPeriodDiscriminator(cfg.periods, cfg.period_channels)
        self.msd = MultiScaleDiscriminator(cfg.n_scales, cfg.scale_channels)

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        p_scores, p_feats = self.mpd(wav)
        s_scores, s_feats = self.msd(wav)
        return p_scores + s_scores, p_feats + s_feats
