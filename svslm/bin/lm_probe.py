"""What is this checkpoint? Geometry, vocabulary blocks, what loading tolerated; optionally the
`svs` sequence, logits, loss and greedy decode of one example (before spending GPU hours on it).

    svslm lm-probe exp/opuslm_1.7b --out_dir probe/
    svslm lm-probe extended/model.pth --config example/config.yaml --out_dir probe/ \
        --inputs example/inputs.json --greedy_frames 12

MODEL is a checkpoint directory or a weights file; `--config` replaces the config.yaml beside it
and `--override key=value` edits it (e.g. speaker_prompt_length=12). With `--inputs` (the format of
ESPnet fixture's inputs.json: `label`, `prompt_local`, `target_local`) it writes
    O/sequence.npy  int64 [L, nq]: the undelayed sequence (global ids)
    O/logits.npy    float32 [L-1, nq, V]: logits for its delayed input
    O/probe.json    {"loss": ..., "greedy_frames_global": [[nq ids], ...]} (N greedy frames from the
                    prefix, undelayed; N = --greedy_frames, default the target's frame count)
With `--delayed_input X.npy` (int [L-1, nq]), O/logits.npy holds the logits for that tensor instead.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from svslm.lm.checkpoint import CheckpointError, load_checkpoint
from svslm.lm.inference import greedy_frames
from svslm.lm.sequence import build_example, build_prefix, collate
from svslm.lm.vocab import VocabularyError
from svslm.utils.fileio import atomic_save_npy, atomic_write_json
from svslm.utils.logging import setup_logging


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="checkpoint directory or weights file")
    parser.add_argument("--config", default=None, help="config.yaml to use instead of the one beside MODEL")
    parser.add_argument("--out_dir", required=True, help="output directory")
    parser.add_argument("--inputs", default=None, help="one svs example (inputs.json format)")
    parser.add_argument("--delayed_input", default=None, help="int [L-1, nq] .npy: write its logits")
    parser.add_argument("--greedy_frames", type=int, default=None, help="frames of greedy decoding (with --inputs)")
    parser.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="edit a config.yaml value, e.g. speaker_prompt_length=12 (repeatable)")
    args = parser.parse_args(argv)
    log = setup_logging()
    try:
        model = load_checkpoint(args.model, config=args.config, overrides=args.override).eval()
    except (CheckpointError, VocabularyError) as err:
        log.error("%s", err)
        return 1
    print(describe(model))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    logits_input = None
    if args.inputs:
        ex = json.loads(Path(args.inputs).read_text(encoding="utf-8"))
        try:
            svs_lb, prompt, target = ex["label"].split(), np.array(ex["prompt_local"]), np.array(ex["target_local"])
            seq, mask = build_example(model.vocab, svs_lb, prompt, target, args.inputs, model.sequence)
        except (KeyError, ValueError) as err:
            log.error("%s: %s", args.inputs, err)
            return 1
        atomic_save_npy(out / "sequence.npy", seq)
        batch = collate([(args.inputs, seq, mask)], model.vocab.pad)
        with torch.no_grad():
            loss, stats = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
        n = args.greedy_frames if args.greedy_frames is not None else len(target)
        prefix = build_prefix(model.vocab, svs_lb, prompt, args.inputs, model.sequence)
        frames = greedy_frames(model, prefix, n)
        atomic_write_json(out / "probe.json", {"loss": loss.item(), "stats": {k: v.item() for k, v in stats.items()},
                                               "greedy_frames_global": frames.tolist()})
        print(f"sequence: {len(seq)} rows; loss {loss.item():.7f}; {n} greedy frames -> {out / 'probe.json'}")
        logits_input = batch.inputs
    if args.delayed_input:
        x = np.load(args.delayed_input)
        if x.ndim != 2 or x.shape[1] != model.nq:
            log.error("%s: expected int [L-1, %d], got %s", args.delayed_input, model.nq, x.shape)
            return 1
        logits_input = torch.from_numpy(x.astype(np.int64))[None]
    if logits_input is not None:
        with torch.no_grad():
            atomic_save_npy(out / "logits.npy", model.all_logits(logits_input)[0].numpy())
        print(f"logits {tuple(logits_input.shape[1:])} -> {out / 'logits.npy'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
