"""Load a trained flow model for sampling (stage 6 and `svslm sing`).

    flow = load_flow("exp/flow/mini/tiny_flow2_mel")
    mel = flow.sample(codec_emb, pitch, mask, n_steps=10, guidance=0.7, seed=0)   # [B, n_mels, T]

The returned `FlowModel` says what it needs and gives: `output` ("mel" or "codec_emb"),
`needs_pitch` (Flow2), `needs_prompt` (a mel prompt: see `prompt_mel_from_wav`),
`condition_source` (codec tokens it was trained on: "lm_decode" or "ground_truth"),
`mel_config` (its MelConfig, to check against the vocoder's) and `codec_dim`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from svslm.flow.data import prompt_mel_from_wav
from svslm.flow.model import FlowModel, FlowModelConfig
from svslm.utils.config import load_config

__all__ = ["load_flow", "prompt_mel_from_wav"]


def load_flow(exp_dir: str | Path, device: str = "cpu", weights: str = "best.pth") -> FlowModel:
    """The model of `exp_dir` (its config.yaml and `weights`), in eval mode on `device`."""
    exp_dir = Path(exp_dir)
    for name in ("config.yaml", weights):
        if not (exp_dir / name).is_file():
            raise FileNotFoundError(f"{exp_dir / name} not found: is {exp_dir} a trained flow directory (stage 4)?")
    cfg = load_config(exp_dir / "config.yaml", FlowModelConfig, section="model")  # stage 4's saved config
    state = torch.load(exp_dir / weights, map_location=device, weights_only=True)
    model = FlowModel(cfg, codec_dim=state["codec_dim"])
    model.load_state_dict(state["model"])
    return model.to(device).eval()
