"""The stage 4 YAML (conf/flow/*.yaml): the model (svslm.flow.model), its data
(svslm.flow.data), the optimiser and the training run."""
from __future__ import annotations

from dataclasses import dataclass, field

from svslm.flow.data import FlowDataConfig
from svslm.flow.model import FlowModelConfig
from svslm.utils.distributed import Precision


@dataclass
class OptimConfig:
    lr: float = 3e-4  # peak learning rate (AdamW)
    final_lr: float = 1e-4  # learning rate at `decay_end` and after
    decay_start: int = 200000  # step where the linear decay from lr to final_lr begins
    decay_end: int = 500000  # step where it ends
    warmup_steps: int = 0  # linear warm-up from 0 to lr over these first steps
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW betas
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    grad_clip: float = 1.0  # max gradient norm; 0 = no clipping


@dataclass
class FlowTrainConfig:
    epochs: int = 30  # passes over the training split (the paper's code: 30)
    max_steps: int = 0  # stop after this many optimizer steps instead; 0 = `epochs` decides
    seed: int = 42  # seeds weights, data order, crops, noise
    ema_decay: float = 0.0  # exponential moving average of the weights; 0 = off, e.g. 0.999
    log_every: int = 50  # steps between tensorboard scalars
    save_every: int = 1000  # steps between checkpoints (one is also written at every epoch end)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk (svslm.utils.checkpoint)
    device: str = "auto"  # torch device (svslm.utils.device: auto = CUDA when present), unless --device overrides it
    # "fp32", "bf16" (autocast to bfloat16) or "fp16" (autocast to float16 with a gradient scaler)
    precision: Precision = "fp32"


@dataclass
class FlowConfig:
    """The whole stage 4 YAML; a trained model's directory keeps it as config.yaml."""

    model: FlowModelConfig = field(default_factory=FlowModelConfig)
    data: FlowDataConfig = field(default_factory=FlowDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: FlowTrainConfig = field(default_factory=FlowTrainConfig)
