"""The vocoder's YAML schema: mel definition, HiFi-GAN geometry, loss weights and training.

Defaults are HiFi-GAN V1 as published (Kong et al., 2020, config V1), with the upsampling
re-factored for the codec's hop of 320 samples (8 x 5 x 4 x 2 instead of V1's 8 x 8 x 2 x 2 = 256).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from svslm.utils.config import ConfigError
from svslm.utils.distributed import Precision
from svslm.utils.mel import MelConfig

SCALE_GROUPS = (1, 4, 16, 16, 16, 16, 1)  # groups of the scale discriminator's convs (V1)


@dataclass
class GeneratorConfig:
    upsample_rates: list[int] = field(default_factory=lambda: [8, 5, 4, 2])  # product = mel hop
    # Transposed-conv kernels; kernel - rate must be even so a layer multiplies the length exactly.
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 11, 8, 4])
    upsample_initial_channel: int = 512  # channels after the input conv, halved at each upsampling
    # "transposed" (V1: transposed convolutions with the kernels above) or "linear" (linear
    # interpolation, then a convolution of kernel 2 x rate + 1: no frame-rate checkerboard tone).
    upsample_mode: str = "transposed"
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])  # one block per size
    resblock_dilation_sizes: list[list[int]] = field(
        default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    )  # dilations of each block's convolutions (residual block type 1)
    # Harmonic (NSF) source: sines at F0 x 1..N added at every upsampling stage, F0 read off the
    # mel by a small predictor (svslm/vocoder/source.py). 0 = plain HiFi-GAN, as published.
    source_harmonics: int = 0
    f0_predictor_channels: int = 128  # width of the F0 predictor's convolutions (with a source)


@dataclass
class DiscriminatorConfig:
    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])  # multi-period discriminator
    period_channels: list[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])  # its conv widths
    n_scales: int = 3  # multi-scale discriminator: raw audio, then average-pooled x2, x4 (0 = none)
    # Widths of the 7 convs of each scale discriminator; V1's groups (SCALE_GROUPS) must divide them.
    scale_channels: list[int] = field(default_factory=lambda: [128, 128, 256, 512, 1024, 1024, 1024])


@dataclass
class LossConfig:
    feature_matching_weight: float = 2.0  # published weight of the feature-matching loss
    mel_weight: float = 45.0  # published weight of the mel L1 loss (in ln-magnitude units)
    f0_weight: float = 1.0  # weight of the F0 predictor's pitch-class cross-entropy (with a source)


@dataclass
class VocoderTrainConfig:
    segment_frames: int = 26  # mel frames per training segment: 26 x 320 = 8320 samples, V1's 8192
    batch_size: int = 16  # segments per step, over all processes together (a multiple of their number)
    learning_rate: float = 2e-4  # AdamW, both generator and discriminators
    adam_betas: list[float] = field(default_factory=lambda: [0.8, 0.99])  # AdamW betas
    lr_decay: float = 0.999  # learning-rate factor applied after every epoch
    max_steps: int = 2_500_000  # optimiser steps in total (V1 was trained for 2.5M)
    discriminator_start_step: int = 0  # steps of mel-L1-only training before the GAN losses start
    num_workers: int = 4  # DataLoader worker processes (0 = load in the training process)
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    # torch intra-op threads for CPU training; 0 = as the environment says (path.sh: 1, so that
    # --nj worker processes do not oversubscribe). One training alone on 2 idle cores: 2 is ~1.5x faster.
    num_threads: int = 0
    seed: int = 1234  # segment sampling and initialisation
    # "fp32", "bf16" (autocast to bfloat16) or "fp16" (autocast to float16 with a gradient scaler)
    precision: Precision = "fp32"
    log_interval: int = 100  # steps between training-loss logs
    valid_interval: int = 1000  # steps between validations on data/dev
    checkpoint_interval: int = 5000  # steps between checkpoints
    keep_checkpoints: int = 3  # newest checkpoints kept on disk
    max_valid_utts: int = 50  # dev utterances scored per validation (the first ones, sorted)
    n_audio_samples: int = 3  # dev utterances whose audio and mel images go to tensorboard
    # A vocoder exp dir whose newest generator and discriminator weights this training starts
    # from (fine-tuning); optimisers and the step count start anew.
    init_from: str | None = None


@dataclass
class VocoderConfig:
    mel: MelConfig = field(default_factory=MelConfig)  # THE mel definition; the flow's must equal it
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: VocoderTrainConfig = field(default_factory=VocoderTrainConfig)

    def __post_init__(self) -> None:
        g = self.generator
        if math.prod(g.upsample_rates) != self.mel.hop_length:
            raise ConfigError(
                f"generator.upsample_rates {g.upsample_rates} multiply to "
                f"{math.prod(g.upsample_rates)}, not the mel hop_length {self.mel.hop_length}"
            )
        if len(g.upsample_kernel_sizes) != len(g.upsample_rates):
            raise ConfigError("generator.upsample_kernel_sizes needs one kernel per upsample rate")
        for rate, kernel in zip(g.upsample_rates, g.upsample_kernel_sizes):
            if kernel < rate or (kernel - rate) % 2:
                raise ConfigError(
                    f"generator: upsample kernel {kernel} for rate {rate} must be >= the rate and "
                    "differ from it by an even number (else the output length is not T * hop)"
                )
        if len(g.resblock_dilation_sizes) != len(g.resblock_kernel_sizes):
            raise ConfigError("generator.resblock_dilation_sizes needs one list per resblock kernel")
        if g.upsample_mode not in ("transposed", "linear"):
            raise ConfigError(f"generator.upsample_mode must be 'transposed' or 'linear', got {g.upsample_mode!r}")
        if g.source_harmonics < 0:
            raise ConfigError(f"generator.source_harmonics must be >= 0 (0 = no source), got {g.source_harmonics}")
        if g.upsample_initial_channel % 2 ** len(g.upsample_rates):
            raise ConfigError("generator.upsample_initial_channel must halve at every upsampling")
        d = self.discriminator
        if len(d.scale_channels) != 7:
            raise ConfigError("discriminator.scale_channels needs 7 widths (V1's scale discriminator)")
        widths_in = [1] + d.scale_channels[:-1]
        for w_in, w_out, groups in zip(widths_in, d.scale_channels, SCALE_GROUPS):
            if w_in % groups or w_out % groups:
                raise ConfigError(
                    f"discriminator.scale_channels: a {w_in} -> {w_out} conv cannot have {groups} groups"
                )
        if len(self.train.adam_betas) != 2:
            raise ConfigError("train.adam_betas needs two values")
