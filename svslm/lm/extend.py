"""Vocabulary extension of an ESPnet-SpeechLM checkpoint, as ESPnet's `speechlm_extend_vocab.py`.

For each new modality (here `svs_lb`): its marker `<svs_lb_start/end>` takes the first
`<unused_token_N>` slot in 32..63 if the list lacks it, and its tokens are appended at the end
(a token already in the list is appended as `ext_<token>`); its raw `token_bias` entry is the
first appended id. Each new task's marker `<t_task>` takes the first free slot in 64..127. Ids the
pretrained model knows keep their meaning; only `corelm.emb.weight` and `corelm.lm_head.weight`
grow, their old rows untouched.

New rows (`init`): `espnet` is the script's, bit for bit (seed 0, `normal_(0, std=var(table))` for
each table, so both get the same draw, scaled by the variance the script passes as std);
`row_stats` draws from a normal with the per-dimension mean and std of the existing rows (seeded),
so new tokens start at the scale of the old ones.

The output is a complete checkpoint (config.yaml with processed token_bias, model.pth with
`criterion.lm_head.weight` = the grown lm_head, hf_config/config.json) plus ESPnet's
`token_list.json` / `token_bias.json` (raw starts) as the script writes them.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import yaml

from svslm.lm.checkpoint import (
    HF_CONFIG_DIR,
    CheckpointError,
    find_files,
    load_raw_state,
    read_config,
    resolve_hf_config,
)
from svslm.lm.vocab import (
    MODALITY_SLOTS,
    TASK_SLOTS,
    Vocabulary,
    process_token_bias,
    raw_token_bias,
)
from svslm.utils.fileio import atomic_dir

log = logging.getLogger("svslm")

GROWN = ("corelm.emb.weight", "corelm.lm_head.weight")  # the [V, D] tables indexed by token id


@dataclass
class ExtendConfig:
    """Vocabulary extension settings (the `extend` section of the LM YAML)."""

    init: Literal["espnet", "row_stats"] = "espnet"  # new rows: ESPnet's script (bit-exact) or per-dimension stats
    seed: int = 0  # seed of the new rows (ESPnet's script always uses 0)
    tasks: list[str] = field(default_factory=lambda: ["svs"])  # task markers the extension adds


def read_token_list(path: str | Path) -> list[str]:
    """One token per line (ESPnet's `<modality>_token_list`), or a JSON list."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token list not found: {path}")
    text = path.read_text(encoding="utf-8")
    tokens = json.loads(text) if path.suffix == ".json" else [t.strip() for t in text.splitlines() if t.strip()]
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"{path}: repeated tokens")
    return tokens


def _take_slot(tokens: list[str], index: dict[str, int], name: str, slots: tuple[int, int]) -> int | None:
    if name in index:
        return None
    for i in range(*slots):
        if f"<unused_token_{i}>" in index:
            slot = index.pop(f"<unused_token_{i}>")
            tokens[slot] = name
            index[name] = slot
            return slot
    return None


def extend_token_list(token_list: list[str], token_bias: dict, modalities: list[tuple[str, list[str]]],
                      tasks: list[str]) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """(new token list, new raw token_bias, renamed slots) as ESPnet's script computes them."""
    tokens = list(token_list)
    index = {t: i for i, t in enumerate(tokens)}
    raw = raw_token_bias(process_token_bias(dict(token_bias), tokens))
    renamed = {}
    for modality, new in modalities:
        if modality in raw:
            raise CheckpointError(f"modality {modality} is already in the vocabulary (token_bias {raw})")
        raw[modality] = len(tokens)
        if (slot := _take_slot(tokens, index, f"<{modality}_start/end>", MODALITY_SLOTS)) is not None:
            renamed[f"<{modality}_start/end>"] = slot
        for tok in new:
            if tok in index:
                log.warning("%s token %s is already in the vocabulary: appended as ext_%s", modality, tok, tok)
                tok = f"ext_{tok}"
            index[tok] = len(tokens)
            tokens.append(tok)
    for task in tasks:
        if (slot := _take_slot(tokens, index, f"<{task}_task>", TASK_SLOTS)) is not None:
            renamed[f"<{task}_task>"] = slot
    return tokens, raw, renamed


def new_rows(table: torch.Tensor, n: int, init: str, seed: int) -> torch.Tensor:
    """[n, D] rows for `table` [V, D] in its dtype."""
    gen = torch.Generator().manual_seed(seed)
    if init == "espnet":
        rows = torch.empty((n, table.shape[1]), dtype=table.dtype)
        return rows.normal_(mean=0, std=float(torch.var(table, dim=None)), generator=gen)
    mean, std = table.float().mean(dim=0), table.float().std(dim=0)
    return (mean + std * torch.randn(n, table.shape[1], generator=gen)).to(table.dtype)


def extend_checkpoint(pretrained: str | Path, svs_tokens: list[str], out_dir: str | Path,
                      conf: ExtendConfig | None = None, modality: str = "svs_lb") -> dict:
    """Write `out_dir` = the checkpoint `pretrained` (directory or weights file) extended with the
    modality `svs_lb` = `svs_tokens` and the task markers of `conf.tasks`. Returns a summary."""
    conf = conf or ExtendConfig()
    weights, config_path, notes = find_files(pretrained)
    config = read_config(config_path)
    flat, nested = load_raw_state(weights)  # the tables keep their stored dtype
    old_vocab = Vocabulary(config["token_list"], config["token_bias"], source=f"{config_path} token_list")
    for key in GROWN:
        if key not in flat:
            raise CheckpointError(f"{weights}: {key} is missing")
        if flat[key].shape[0] != len(old_vocab):
            raise CheckpointError(f"{weights}: {key} has {flat[key].shape[0]} rows but {config_path}'s token_list has "
                                  f"{len(old_vocab)} tokens; the checkpoint does not match its vocabulary")
    if modality in old_vocab.token_bias:  # e.g. a checkpoint the paper's fork fine-tuned: nothing to add
        start, end = old_vocab.token_bias[modality]
        missing = [t for t in svs_tokens if t not in old_vocab.token_list[start:end]]
        if missing:
            raise CheckpointError(f"{config_path}: modality {modality} is already in the vocabulary ([{start}, {end})) "
                                  f"but lacks {len(missing)} of the tokens: {missing[:20]}; its block cannot grow")
        tokens, raw, renamed = extend_token_list(old_vocab.token_list, old_vocab.token_bias, [], conf.tasks)
        log.info("%s: %s is already in the vocabulary with every token; checkpoint rewritten unchanged", config_path, modality)
    else:
        tokens, raw, renamed = extend_token_list(old_vocab.token_list, old_vocab.token_bias,
                                                 [(modality, svs_tokens)], conf.tasks)
    n_new = len(tokens) - len(old_vocab)
    grown = dict(flat)
    for key in GROWN:
        grown[key] = torch.cat([flat[key], new_rows(flat[key], n_new, conf.init, conf.seed)]).contiguous()
    grown["criterion.lm_head.weight"] = grown["corelm.lm_head.weight"]  # svslm keeps the alias current
    hf_config = resolve_hf_config(config, config_path, notes)
    vocab = Vocabulary(tokens, raw, source="extended token list")  # checks the new blocks
    config["token_list"] = tokens
    config["token_bias"] = {k: list(v) for k, v in vocab.token_bias.items()}
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        torch.save({nested: grown} if nested else grown, tmp / weights.name)
        (tmp / HF_CONFIG_DIR).mkdir()
        (tmp / HF_CONFIG_DIR / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
        (tmp / "token_list.json").write_text(json.dumps(tokens, indent=4, ensure_ascii=False))
        (tmp / "token_bias.json").write_text(json.dumps(raw, indent=4, ensure_ascii=False))
    summary = {"appended": n_new, "renamed_slots": renamed, "vocab_size": len(tokens), "token_bias": raw,
               "init": conf.init}
    log.info("vocabulary %d -> %d: %d %s tokens appended from id %d (init %s); markers in reserved slots: %s",
             len(old_vocab), len(tokens), n_new, modality, len(old_vocab), conf.init, renamed or "none")
    return summary
