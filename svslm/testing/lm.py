"""Tiny synthetic stage 2 outputs in the docs/formats.md layout, for tests and benchmarks.

The targets are a deterministic function of the score (SSL id from the phone, codec ids from the
pitch and the position in the note) so that a small LM can learn them and validation loss falls.
"""
from __future__ import annotations

import json
from pathlib import Path

import kaldiio
import numpy as np

from svslm.lm.checkpoint import save_checkpoint
from svslm.lm.model import LMConfig
from svslm.lm.pretrained import make_pretrained
from svslm.lm.sequence import SequenceConfig
from svslm.lm.vocab import codec_ssl_tokens
from svslm.utils.fileio import write_kaldi_map

PHONES = ["SP", "AP", "a", "i", "u", "e", "o", "n", "m", "l", "sh", "zh"]
__all__ = ["codec_ssl_tokens", "make_init_checkpoint", "make_tiny_dump", "svs_lb_tokens", "synth_utterance", "tiny_lm_config"]


def svs_lb_tokens() -> list[str]:
    return [f"svs_{p}" for p in PHONES] + [f"svs_{m}" for m in range(128)]


def synth_utterance(rng: np.random.Generator, n_frames: int, ssl_vocab: int, codebook_size: int) -> tuple[list[str], np.ndarray]:
    """Random notes -> (flat svs_lb tokens, int32 [T, 9] codec_ssl that follows them)."""
    tokens: list[str] = []
    frames = np.zeros((n_frames, 9), dtype=np.int32)
    t = 0
    while t < n_frames:
        dur = int(min(rng.integers(3, 12), n_frames - t))
        p = int(rng.integers(0, len(PHONES)))
        midi = 0 if PHONES[p] in ("SP", "AP") else int(rng.integers(55, 75))
        for k in range(dur):
            tokens += [f"svs_{PHONES[p]}", f"svs_{midi}"]
            frames[t + k, 0] = (p * 7 + min(k, 3)) % ssl_vocab
            frames[t + k, 1:] = (midi * np.arange(1, 9) + k) % codebook_size
        t += dur
    return tokens, frames


def write_split(
    dump: Path, split: str, n_utts: int, frames: tuple[int, int], prompt_len: int,
    ssl_vocab: int, codebook_size: int, seed: int,
) -> Path:
    """Write dump/<split>/{svs_lb, codec_ssl.scp, prompt.scp, utt2num_frames, data.json}."""
    rng = np.random.default_rng(seed)
    d = dump / split
    d.mkdir(parents=True, exist_ok=True)
    svs_lb, targets = {}, {}
    for i in range(n_utts):
        utt = f"spk{i % 2}#{split}{i:03d}"
        svs_lb[utt], targets[utt] = synth_utterance(rng, int(rng.integers(*frames)), ssl_vocab, codebook_size)
    utts = sorted(targets)
    with kaldiio.WriteHelper(f"ark,scp:{d}/codec_ssl.ark,{d}/codec_ssl.scp", write_function="numpy") as w:
        for u in utts:
            w(u, targets[u])
    with kaldiio.WriteHelper(f"ark,scp:{d}/prompt.ark,{d}/prompt.scp", write_function="numpy") as w:
        for i, u in enumerate(utts):
            other = targets[utts[(i + 2) % len(utts)]]  # same singer: ids alternate spk0/spk1
            w(u, np.resize(other, (prompt_len, 9)).astype(np.int32))
    write_kaldi_map(d / "svs_lb", {u: " ".join(svs_lb[u]) for u in utts})
    write_kaldi_map(d / "utt2num_frames", {u: str(len(targets[u])) for u in utts})
    meta = {
        "task": "svs",
        "vocabularies": [str(dump / "token_list" / "svs_lb.txt"), str(dump / "token_list" / "codec_ssl.txt")],
        "data_files": [f"{d}/svs_lb,svs_lb,text", f"{d}/prompt.scp,spk,kaldi_ark", f"{d}/codec_ssl.scp,codec_ssl,kaldi_ark"],
        "examples": utts,
        "num_examples": len(utts),
    }
    (d / "data.json").write_text(json.dumps(meta, indent=1))
    return d / "data.json"


def make_init_checkpoint(out_dir: Path, conf: LMConfig, ssl_vocab: int, codebook_size: int, seed: int = 0,
                         speaker_prompt_length: int = 10) -> Path:
    """A random pretrained-format model whose vocabulary already holds the svs tokens (what
    stage 2's vocabulary extension produces), written to `out_dir`; its config.yaml holds the
    fork's fine-tuning sequence settings with `speaker_prompt_length` (make_tiny_dump's prompts)."""
    model = make_pretrained(conf, codec_ssl_tokens(ssl_vocab, 8, codebook_size), 8, seed, {"svs_lb": svs_lb_tokens()})
    model.sequence = SequenceConfig(speaker_prompt_length=speaker_prompt_length)
    save_checkpoint(model, out_dir)
    return out_dir


def make_tiny_dump(
    root: Path, n_train: int = 8, n_dev: int = 4, frames: tuple[int, int] = (20, 40), prompt_len: int = 10,
    ssl_vocab: int = 16, codebook_size: int = 8, seed: int = 0,
) -> dict[str, Path]:
    dump = Path(root) / "dump"
    (dump / "token_list").mkdir(parents=True, exist_ok=True)
    (dump / "token_list" / "codec_ssl.txt").write_text("\n".join(codec_ssl_tokens(ssl_vocab, 8, codebook_size)) + "\n")
    (dump / "token_list" / "svs_lb.txt").write_text("\n".join(svs_lb_tokens()) + "\n")
    return {
        "train": write_split(dump, "train", n_train, frames, prompt_len, ssl_vocab, codebook_size, seed),
        "dev": write_split(dump, "dev", n_dev, frames, prompt_len, ssl_vocab, codebook_size, seed + 1),
    }


def tiny_lm_config(**overrides) -> LMConfig:
    conf = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "intermediate_size": 64, "rope_theta": 10000.0, "max_position_embeddings": 1024, "nq": 9}
    conf.update(overrides)
    return LMConfig(**conf)

