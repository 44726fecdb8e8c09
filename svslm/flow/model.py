"""The flow model: condition encoders + U-Net estimator + CFM, in normalised feature space.

One class covers the paper's four variants, chosen by config only:
Flow1 (codec condition) or Flow2 (codec + the score's pitch), each generating either a mel
spectrogram (for the vocoder, "+Voc") or the codec embedding (for the codec decoder, "+CD").

Targets and conditions are normalised per channel by training-set statistics kept as buffers
(so a checkpoint carries them): the flow starts from N(0, I) noise, so its targets must have
roughly unit scale, and a dB mel or a codec latent does not.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from svslm.flow.cfm import CFM, CFMConfig, Draws
from svslm.flow.encoder import (
    ConditionEncoder,
    EncoderConfig,
    PitchEmbedding,
    PromptEncoder,
)
from svslm.flow.estimator import EstimatorConfig, UNetConfig, build_estimator
from svslm.utils.mel import MelConfig


@dataclass
class SamplingConfig:
    solver: str = "euler"  # "euler", "midpoint", or a torchdiffeq method ("rk4", "dopri5") when installed
    n_steps: int = 10  # ODE steps (the paper's code: Euler, 10)
    guidance: float = 0.7  # classifier-free guidance scale w in v = (1 + w) v_cond - w v_uncond; 0 = off


@dataclass
class FlowModelConfig:
    output: Literal["mel", "codec_emb"] = "mel"  # generate a mel (+Voc) or the codec embedding (+CD)
    # Codec tokens the condition is embedded from in training: the LM's decodes of each split
    # (the paper) or the ground-truth tokens of the audio.
    condition_source: Literal["lm_decode", "ground_truth"] = "lm_decode"
    use_pitch: bool = False  # Flow2: condition on the score's frame-level pitch as well
    use_prompt: bool = False  # condition on a speaker vector from a mel prompt of the same singer
    prompt_frames: int = 500  # prompt length in frames (tiled or cropped), as the LM's prompt
    mel: MelConfig = field(default_factory=MelConfig)  # THE mel definition (target and prompt)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    estimator: EstimatorConfig = field(default_factory=UNetConfig)  # UNetConfig or DiTConfig, by `kind`
    cfm: CFMConfig = field(default_factory=CFMConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # defaults of `sample`


class FlowModel(nn.Module):
    """Flow1/Flow2 over mel or codec embedding. `codec_dim`: the codec embedding width D."""

    def __init__(self, cfg: FlowModelConfig, codec_dim: int):
        super().__init__()
        self.cfg = cfg
        self.codec_dim = codec_dim
        n_mels = cfg.mel.n_mels
        self.out_dim = n_mels if cfg.output == "mel" else codec_dim
        # Normalisation statistics, set once from the training set by `set_stats`.
        for name, dim in (("target", self.out_dim), ("cond", codec_dim), ("prompt", n_mels)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))

        self.encoder = ConditionEncoder(codec_dim, self.out_dim, cfg.encoder)
        cond_channels = self.out_dim
        self.pitch = PitchEmbedding(self.out_dim) if cfg.use_pitch else None
        cond_channels += self.out_dim if cfg.use_pitch else 0
        self.prompt_encoder = PromptEncoder(n_mels, cfg.encoder.d_model, cfg.encoder.spk_dim) if cfg.use_prompt else None
        cond_channels += cfg.encoder.spk_dim if cfg.use_prompt else 0
        self.cfm = CFM(build_estimator(self.out_dim, cond_channels, cfg.estimator), cfg.cfm)

    # What stage 6 and `svslm sing` need to know about a loaded model.
    @property
    def output(self) -> str:
        return self.cfg.output

    @property
    def needs_pitch(self) -> bool:
        return self.cfg.use_pitch

    @property
    def needs_prompt(self) -> bool:
        return self.cfg.use_prompt

    @property
    def prompt_frames(self) -> int:
        return self.cfg.prompt_frames

    @property
    def condition_source(self) -> str:
        return self.cfg.condition_source

    @property
    def mel_config(self) -> MelConfig:
        return self.cfg.mel

    def set_stats(self, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Set per-channel (mean, std) of "target", "cond" and "prompt" features."""
        for name, (mean, std) in stats.items():
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_std").copy_(std.clamp(min=1e-5))

    def condition(
        self,
        codec_emb: torch.Tensor,
        mask: torch.Tensor,
        midi: torch.Tensor | None = None,
        prompt_mel: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The estimator's condition [B, Cc, T]: encoded codec embedding (mu), then pitch, then
        the speaker vector repeated over time. codec_emb [B, T, D], mask [B, T] bool, midi [B, T],
        prompt_mel [B, n_mels, P] in the model's mel definition, prompt_mask [B, P] bool."""
        emb = (codec_emb - self.cond_mean) / self.cond_std
        parts = [self.encoder(emb, mask)]
        if self.pitch is not None:
            if midi is None:
                raise ValueError("this flow model (Flow2) is conditioned on pitch: pass the score's MIDI per frame")
            parts.append(self.pitch(midi, mask))
        if self.prompt_encoder is not None:
            if prompt_mel is None:
                raise ValueError("this flow model is conditioned on a speaker prompt: pass prompt_mel [B, n_mels, P]")
            if prompt_mask is None:
                prompt_mask = torch.ones(prompt_mel.shape[0], prompt_mel.shape[-1], dtype=torch.bool, device=mask.device)
            prompt = (prompt_mel - self.prompt_mean.unsqueeze(-1)) / self.prompt_std.unsqueeze(-1)
            spk = self.prompt_encoder(prompt, prompt_mask)  # [B, spk_dim]
            parts.append(spk.unsqueeze(-1) * mask.unsqueeze(1).to(spk.dtype))
        return torch.cat(parts, dim=1)

    def loss(
        self,
        target: torch.Tensor,
        codec_emb: torch.Tensor,
        mask: torch.Tensor,
        midi: torch.Tensor | None = None,
        prompt_mel: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        draws: Draws | None = None,
    ) -> torch.Tensor:
        """Flow-matching loss. target [B, out_dim, T] in raw units (dB mel, or codec embedding
        channels first); the other arguments as in `condition`, `generator` and `draws` as in
        `CFM.loss`."""
        x1 = (target - self.target_mean.unsqueeze(-1)) / self.target_std.unsqueeze(-1)
        m = mask.unsqueeze(1).to(x1.dtype)
        cond = self.condition(codec_emb, mask, midi, prompt_mel, prompt_mask)
        return self.cfm.loss(x1 * m, m, cond, generator=generator, draws=draws)

    @torch.no_grad()
    def sample(
        self,
        codec_emb: torch.Tensor,
        pitch: torch.Tensor | None,
        mask: torch.Tensor,
        n_steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        prompt_mel: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        solver: str | None = None,
    ) -> torch.Tensor:
        """Generate from the condition: codec_emb [B, T, D], pitch [B, T] MIDI (0 = rest; ignored
        by Flow1), mask [B, T] bool. Returns mel [B, n_mels, T] (output "mel") or codec embedding
        [B, T, D] (output "codec_emb"), zero on padding. `n_steps`, `guidance`, `solver` default
        to the config's `sampling`. Each utterance's noise comes from its own generator seeded by
        `seed`, so a result does not depend on which other utterances share its batch."""
        sampling = self.cfg.sampling
        n_steps = sampling.n_steps if n_steps is None else n_steps
        guidance = sampling.guidance if guidance is None else guidance
        solver = sampling.solver if solver is None else solver
        b, t, _ = codec_emb.shape
        cond = self.condition(codec_emb, mask, pitch if self.needs_pitch else None, prompt_mel, prompt_mask)
        x0 = torch.zeros(b, self.out_dim, t, device=codec_emb.device)
        for i, n_valid in enumerate(mask.sum(1).tolist()):
            gen = torch.Generator().manual_seed(seed)
            x0[i, :, :n_valid] = torch.randn(self.out_dim, n_valid, generator=gen).to(x0.device)
        m = mask.unsqueeze(1).to(x0.dtype)
        x1 = self.cfm.sample(x0, m, cond, n_steps, solver, guidance)
        out = (x1 * self.target_std.unsqueeze(-1) + self.target_mean.unsqueeze(-1)) * m  # [B, out_dim, T]
        return out if self.output == "mel" else out.transpose(1, 2)
