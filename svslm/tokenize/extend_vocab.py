"""Extend a pretrained ESPnet-SpeechLM checkpoint's vocabulary with the `svs_lb` tokens.

The checkpoint (docs/formats.md) is a directory with `config.yaml` (inline `token_list`,
`token_bias`, `corelm_conf`) and `model.pth` (a state dict with `corelm.emb.weight [V, D]` and
`corelm.lm_head.weight [V, D]`). The SVS template needs the markers `<svs_lb_start/end>`,
`<spk_start/end>` and `<svs_task>`: those absent are written into reserved `<unused_token_N>`
slots (as ESPnet reserves them for new modalities and tasks), so ids the pretrained model knows
keep their meaning (each in the block of its kind when the list has one). The `svs_*` tokens are appended at the end as one contiguous block, whose
start becomes `token_bias["svs_lb"]`; their embedding and head rows are drawn from a normal
with the per-dimension mean and std of the existing rows, with a fixed seed, so they start at
the scale the network expects.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
import yaml

from svslm.utils.fileio import atomic_dir

log = logging.getLogger("svslm")

MARKERS = ("<svs_lb_start/end>", "<spk_start/end>", "<svs_task>")
GROWN = ("corelm.emb.weight", "corelm.lm_head.weight")  # the [V, D] tables indexed by token id
_UNUSED = re.compile(r"<unused_token_(\d+)>")


class CheckpointError(ValueError):
    """A checkpoint that does not match its own token list, or is not in the expected format."""


def read_token_list(path: str | Path) -> list[str]:
    tokens = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"{path}: repeated tokens")
    return tokens


def load_checkpoint(directory: Path) -> tuple[dict, dict]:
    for name in ("config.yaml", "model.pth"):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory}: {name} is missing (an ESPnet-SpeechLM checkpoint has config.yaml + model.pth)")
    with open(directory / "config.yaml", encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict) or not isinstance(config.get("token_list"), list):
        raise CheckpointError(f"{directory}/config.yaml: no inline token_list")
    state = torch.load(directory / "model.pth", map_location="cpu", weights_only=True)
    n_tokens = len(config["token_list"])
    for key in GROWN:
        if key not in state:
            raise CheckpointError(f"{directory}/model.pth: {key} is missing")
        if state[key].shape[0] != n_tokens:
            raise CheckpointError(
                f"{directory}: {key} has {state[key].shape[0]} rows but config.yaml's token_list has "
                f"{n_tokens} tokens; the checkpoint does not match its vocabulary"
            )
    return config, state


def _slot_for(marker: str, token_list: list[str], free_slots: list[int]) -> int | None:
    """The reserved slot for `marker`: the first free one after the last marker of its kind
    (ESPnet keeps modality markers and task markers in their own blocks), else the first free."""
    suffix = "_task>" if marker.endswith("_task>") else "_start/end>"
    same_kind = [i for i, t in enumerate(token_list) if t.endswith(suffix)]
    after = [i for i in free_slots if same_kind and i > max(same_kind)]
    return after[0] if after else (free_slots[0] if free_slots else None)


def _new_rows(table: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    mean, std = table.float().mean(dim=0), table.float().std(dim=0)
    rows = mean + std * torch.randn(n, table.shape[1], generator=generator)
    return rows.to(table.dtype)


def extend_checkpoint(pretrained_dir: str | Path, svs_tokens: list[str], out_dir: str | Path, seed: int = 0) -> dict:
    """Write `out_dir` = the checkpoint in `pretrained_dir` with `svs_tokens` and the SVS markers
    added. Returns a summary {"appended": n, "reused_slots": {token: id}, "vocab_size": V}."""
    pretrained_dir, out_dir = Path(pretrained_dir), Path(out_dir)
    config, state = load_checkpoint(pretrained_dir)
    token_list: list[str] = list(config["token_list"])
    index = {t: i for i, t in enumerate(token_list)}

    free_slots = [i for i, t in enumerate(token_list) if _UNUSED.fullmatch(t)]
    reused = {}
    to_append = []
    for marker in MARKERS:
        if marker in index:
            continue
        slot = _slot_for(marker, token_list, free_slots)
        if slot is None:
            to_append.append(marker)
        else:
            free_slots.remove(slot)
            token_list[slot] = marker
            reused[marker] = slot
    to_append += [t for t in svs_tokens if t not in index]

    generator = torch.Generator().manual_seed(seed)
    old_size = len(token_list)
    for key in GROWN:
        state[key] = torch.cat([state[key], _new_rows(state[key], len(to_append), generator)])
    token_list += to_append
    config["token_list"] = token_list
    bias = dict(config.get("token_bias") or {})
    first_svs = next((i for i, t in enumerate(token_list) if t in set(svs_tokens)), None)
    if first_svs is not None:
        bias["svs_lb"] = first_svs
    config["token_bias"] = bias

    with atomic_dir(out_dir) as tmp:
        torch.save(state, tmp / "model.pth")
        with open(tmp / "config.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
    summary = {"appended": len(to_append), "reused_slots": reused, "vocab_size": len(token_list)}
    log.info("vocabulary %d -> %d: %d tokens appended from id %d, markers in reserved slots %s",
             old_size, len(token_list), len(to_append), old_size, reused or "none")
    return summary
