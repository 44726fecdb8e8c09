"""Probe an LM checkpoint: its geometry, vocabulary blocks and what loading tolerated; optionally
the `svs` sequence, logits, loss and greedy decode of one example (`svslm lm-probe`, whose
docstring in svslm/bin/lm_probe.py gives the files written)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from svslm.lm.checkpoint import CheckpointError, load_checkpoint
from svslm.lm.inference import greedy_frames
from svslm.lm.sequence import build_example, build_prefix, collate
from svslm.lm.vocab import VocabularyError
from svslm.utils.fileio import atomic_save_npy, atomic_write_json

log = logging.getLogger(__name__)


def describe(model) -> str:
    c = model.corelm.decoders.model.config
    vocab = model.vocab
    lines = [
        (f"backbone: {type(model.corelm.decoders.model).__name__}, hidden {c.hidden_size}, layers {c.num_hidden_layers}, "
         f"heads {c.num_attention_heads} (kv {getattr(c, 'num_key_value_heads', '?')}), FFN {c.intermediate_size}, "
         f"rope {getattr(c, 'rope_parameters', None)}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters"),
        (f"streams: nq {model.nq} (1 SSL x {vocab.ssl_vocab} + {vocab.n_codebooks} codebooks x {vocab.codebook_size}); "
         f"head_emb rows {model.corelm.head_emb.weight.shape[0]}"),
        f"vocabulary: {len(vocab)} tokens; <pad> {vocab.pad}, <sos/eos> {vocab.eos}",
    ]
    lines += [f"  {m:14s} [{s}, {e})  {vocab.token_list[s] if s < e else ''} .. {vocab.token_list[e - 1] if s < e else ''}"
              for m, s, e in vocab.blocks()]
    for name in ("<svs_task>", "<svs_lb_start/end>", "<spk_start/end>", "<codec_ssl_start/end>", "<svs_placeholder>"):
        lines.append(f"  {name}: {vocab.token2id.get(name, 'absent')}")
    lines.append(f"sequence: {model.sequence}")
    lines.append(f"loss: {model.loss_conf}")
    lines.append("loading tolerated:" + ("".join(f"\n  - {n}" for n in model.load_notes) or " nothing"))
    return "\n".join(lines)


def probe(model_path: str, out_dir: str | Path, config: str | None = None, overrides: tuple[str, ...] | list[str] = (),
          inputs: str | None = None, delayed_input: str | None = None, n_greedy: int | None = None) -> int:
    """Print `describe` of the checkpoint and write out_dir/{sequence.npy,logits.npy,probe.json} as
    asked; 0, or 1 (logged) when the checkpoint or an input cannot be used."""
    try:
        model = load_checkpoint(model_path, config=config, overrides=list(overrides)).eval()
    except (CheckpointError, VocabularyError) as err:
        log.error("%s", err)
        return 1
    print(describe(model))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    logits_input = None
    if inputs:
        ex = json.loads(Path(inputs).read_text(encoding="utf-8"))
        try:
            svs_lb, prompt, target = ex["label"].split(), np.array(ex["prompt_local"]), np.array(ex["target_local"])
            seq, mask = build_example(model.vocab, svs_lb, prompt, target, inputs, model.sequence)
        except (KeyError, ValueError) as err:
            log.error("%s: %s", inputs, err)
            return 1
        atomic_save_npy(out / "sequence.npy", seq)
        batch = collate([(inputs, seq, mask)], model.vocab.pad)
        with torch.no_grad():
            loss, stats = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
        n = n_greedy if n_greedy is not None else len(target)
        prefix = build_prefix(model.vocab, svs_lb, prompt, inputs, model.sequence)
        frames = greedy_frames(model, prefix, n)
        atomic_write_json(out / "probe.json", {"loss": loss.item(), "stats": {k: v.item() for k, v in stats.items()},
                                               "greedy_frames_global": frames.tolist()})
        print(f"sequence: {len(seq)} rows; loss {loss.item():.7f}; {n} greedy frames -> {out / 'probe.json'}")
        logits_input = batch.inputs
    if delayed_input:
        x = np.load(delayed_input)
        if x.ndim != 2 or x.shape[1] != model.nq:
            log.error("%s: expected int [L-1, %d], got %s", delayed_input, model.nq, x.shape)
            return 1
        logits_input = torch.from_numpy(x.astype(np.int64))[None]
    if logits_input is not None:
        with torch.no_grad():
            atomic_save_npy(out / "logits.npy", model.all_logits(logits_input)[0].numpy())
        print(f"logits {tuple(logits_input.shape[1:])} -> {out / 'logits.npy'}")
    return 0
