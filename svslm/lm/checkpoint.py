"""ESPnet-SpeechLM checkpoints: a directory with `config.yaml` and `model.pth` (docs/formats.md).

`config.yaml` holds the inline `token_list`, `token_bias` and `corelm_conf`; `model.pth` is a state
dict under `corelm.*`. Loading checks everything before touching the model and names every
missing key, unexpected key and shape mismatch at once.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch
import yaml

from svslm.lm.model import LMConfig, LossConfig, SpeechLM
from svslm.lm.vocab import Vocabulary
from svslm.utils.config import from_dict, to_dict
from svslm.utils.fileio import atomic_path, atomic_write_text

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint directory that does not match the ESPnet-SpeechLM format or the model."""


def read_config(model_dir: str | Path) -> dict:
    path = Path(model_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{model_dir}: no config.yaml (an ESPnet-SpeechLM checkpoint has config.yaml + model.pth)")
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    for key in ("token_list", "corelm_conf"):
        if key not in config:
            raise CheckpointError(f"{path}: missing '{key}'")
    if not isinstance(config["token_list"], list):
        raise CheckpointError(f"{path}: token_list must be an inline list")
    return config


def lm_config_from(corelm_conf: dict, where: str) -> LMConfig:
    """Build LMConfig from `corelm_conf`; keys it does not use are listed, not silently taken."""
    known = {f.name for f in dataclasses.fields(LMConfig)}
    ignored = sorted(set(corelm_conf) - known)
    if ignored:
        log.warning("%s: corelm_conf keys not used by svslm: %s", where, ignored)
    return from_dict(LMConfig, {k: v for k, v in corelm_conf.items() if k in known}, where)


def load_state_dict_into(model: SpeechLM, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy `state` into `model`, or raise naming every missing/unexpected key and bad shape."""
    own = model.state_dict()
    state = dict(state)
    head = state.get("corelm.head_emb.weight")
    nq = model.conf.nq
    if head is not None and head.dim() == 2 and head.shape[0] > nq:
        # ESPnet allocates 12 per-stream offsets whatever nq is; only the first nq are ever used.
        log.info("%s: using the first %d of %d head_emb rows", where, nq, head.shape[0])
        state["corelm.head_emb.weight"] = head[:nq]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {missing}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {unexpected}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {mismatched}")
    if problems:
        raise CheckpointError(f"{where} does not fit the model:\n  " + "\n  ".join(problems))
    model.load_state_dict(state, strict=True)


def load_checkpoint(
    model_dir: str | Path, loss: LossConfig | None = None, attn_implementation: str = "sdpa"
) -> SpeechLM:
    """Build the model a checkpoint describes and load its weights (float32, CPU)."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    vocab = Vocabulary(config["token_list"], source=f"{model_dir}/config.yaml token_list")
    conf = lm_config_from(config["corelm_conf"], f"{model_dir}/config.yaml corelm_conf")
    weights = model_dir / "model.pth"
    if not weights.is_file():
        raise CheckpointError(f"{model_dir}: no model.pth")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointError(f"{weights}: not a state dict")
    emb = state.get("corelm.emb.weight")
    if emb is not None and emb.shape[0] != len(vocab):
        raise CheckpointError(
            f"{weights}: corelm.emb.weight has {emb.shape[0]} rows but token_list has {len(vocab)} tokens"
        )
    model = SpeechLM(conf, vocab, loss, attn_implementation)
    # Modalities svslm cannot derive from token names (e.g. text_bpe) are kept as they were.
    model.token_bias = {**(config.get("token_bias") or {}), **model.token_bias}
    load_state_dict_into(model, {k: v.float() for k, v in state.items()}, str(weights))
    return model


def save_checkpoint(
    model: SpeechLM, model_dir: str | Path, state: dict[str, torch.Tensor] | None = None, extra: dict | None = None
) -> None:
    """Write `config.yaml` + `model.pth` (atomically each); `state` overrides the model's weights
    (e.g. an average of several checkpoints); `extra` adds keys to config.yaml."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    state = state if state is not None else model.state_dict()
    state = {k: v.detach().float().cpu().contiguous() for k, v in state.items()}
    config = {
        "token_list": list(model.vocab.token_list),
        "token_bias": model.token_bias,
        "corelm_conf": to_dict(model.conf),
        **(extra or {}),
    }
    with atomic_path(model_dir / "model.pth") as tmp:
        torch.save(state, tmp)
    atomic_write_text(model_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
