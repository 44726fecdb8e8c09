"""The stage 3 YAML (conf/lm/*.yaml): the fine-tuning run's sequence, loss and training settings.

As in ESPnet, the fine-tuning config (not the pretrained checkpoint's config.yaml) decides the
preprocessor and loss settings; they are written into every checkpoint the run saves. The backbone
geometry is the checkpoint's: `model` only describes the made-up pretrained LM of the mini recipe
(`svslm.bin.lm_make_pretrained`), and stage 3 refuses a checkpoint that disagrees with it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from svslm.lm.extend import ExtendConfig
from svslm.lm.model import LMConfig, LossConfig
from svslm.lm.sequence import SequenceConfig


@dataclass
class LMTrainConfig:
    deepspeed_config: str = "../deepspeed/cpu.json"  # DeepSpeed JSON, relative to the YAML's directory
    lr: float | None = None  # peak learning rate; fills the JSON's optimizer lr ("auto"); an error if both set it differently
    max_epochs: int = 10  # epochs over the training split
    max_steps: int = 0  # stop after this many optimizer steps (0 = max_epochs decides)
    batch_bins: int = 4000  # per micro-batch: utterances x longest delayed sequence (positions)
    max_batch_size: int = 0  # utterances per micro-batch at most (0 = no limit)
    grad_accum: int = 1  # micro-batches per optimizer step
    valid_interval: int = 0  # optimizer steps between validations + checkpoints (0 = once per epoch)
    log_interval: int = 10  # optimizer steps between training log lines
    patience: int = 0  # stop once this many validations in a row bring no new best validation loss (ESPnet's patience; 0 = never)
    keep_best: int = 3  # best validation snapshots kept; averaged (or the best one) into best/
    best_mode: Literal["average", "select"] = "average"  # how best/ is made from the kept snapshots
    keep_checkpoints: int = 2  # complete DeepSpeed checkpoints kept for resuming
    nan_policy: Literal["stop", "skip"] = "stop"  # non-finite loss: stop with a message, or skip the batch
    activation_checkpointing: bool = False  # recompute layer activations in backward (saves memory)
    attn_implementation: str = "sdpa"  # transformers attention kernel: sdpa | eager | flash_attention_2
    seed: int = 0  # data order, prompt crops and RNG


@dataclass
class LMRecipeConfig:
    model: LMConfig | None = None  # geometry of lm_make_pretrained's made-up LM; checked against the checkpoint
    init_seed: int = 0  # seed of lm_make_pretrained's random initialisation
    n_text_tokens: int = 32  # text_bpe tokens in a made-up pretrained vocabulary
    extend: ExtendConfig = field(default_factory=ExtendConfig)  # stage 2's vocabulary extension
    sequence: SequenceConfig = field(default_factory=SequenceConfig)  # ESPnet preprocessor settings
    loss: LossConfig = field(default_factory=LossConfig)  # ESPnet criterion settings
    train: LMTrainConfig = field(default_factory=LMTrainConfig)
