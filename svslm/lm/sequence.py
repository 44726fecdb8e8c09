"""The `svs` task's token sequence as ESPnet's SpeechLMPreprocessor builds it, and batches.

Task template of the paper's fork (conditions svs_lb and spk, target codec_ssl). One row per frame,
nq streams per row; text-like tokens sit in stream 0 with <pad> in the other streams:

    <sos/eos> <svs_task>
    <svs_lb_start/end> svs_lb tokens...          + inter_segment_pad all-<pad> rows
    <spk_start/end> prompt frames (padded/cropped to speaker_prompt_length) + pad rows
    <codec_ssl_start/end> target frames... <sos/eos>                        + pad rows

`inter_segment_pad` = nq - 1, so that after the delay interleave no two segments overlap. The
loss mask (`loss_region: target`) covers the whole target segment, its start marker included,
and is 0 wherever the token is <pad>. The decoding prefix ends with <codec_ssl_start/end>.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from svslm.lm.vocab import Vocabulary


@dataclass
class SequenceConfig:
    """ESPnet preprocessor settings (config.yaml keys of the same names)."""

    loss_region: Literal["target", "whole"] = "target"  # target: the target segment only (the fork); whole: every token
    speaker_prompt_length: int = 500  # prompt frames: longer prompts are cropped, shorter padded (pad_speaker_prompt)
    pad_speaker_prompt: bool = True  # pad a short prompt with all-<pad> frames to speaker_prompt_length
    ssl_id0: Literal["pad", "token"] = "pad"  # pad: SSL id 0 becomes <pad> and leaves the loss, as ESPnet; token: <ssl_code1>
    n_ctx: int = 8192  # longest context: a sequence is cut at n_ctx - nq rows (ESPnet's preprocessor)


def text_frames(ids: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """int64 [N] token ids -> [N, nq] frames with the ids in stream 0 and <pad> elsewhere."""
    out = np.full((len(ids), vocab.nq), vocab.pad, dtype=np.int64)
    out[:, 0] = ids
    return out


def fit_prompt(prompt: np.ndarray, conf: SequenceConfig, pad: int, rng: random.Random | None) -> np.ndarray:
    """Crop (random start, as ESPnet; the first frames without `rng`) or pad a prompt [P, nq]."""
    length = conf.speaker_prompt_length
    if len(prompt) > length:
        start = rng.randint(0, len(prompt) - length - 1) if rng is not None else 0
        return prompt[start : start + length]
    if conf.pad_speaker_prompt and len(prompt) < length:
        return np.concatenate([prompt, np.full((length - len(prompt), prompt.shape[1]), pad, dtype=prompt.dtype)])
    return prompt


def _segments(vocab: Vocabulary, conf: SequenceConfig, svs_lb: list[str], prompt: np.ndarray | None,
              where: str, rng: random.Random | None) -> list[np.ndarray]:
    """The condition segments, each closed by its inter-segment pad rows."""
    marker = lambda name: text_frames(np.array([vocab.id(name)]), vocab)
    pad_rows = np.full((vocab.nq - 1, vocab.nq), vocab.pad, dtype=np.int64)
    segments = [np.concatenate([marker("<svs_lb_start/end>"), text_frames(vocab.text_ids(svs_lb, f"{where} svs_lb"), vocab),
                                pad_rows])]
    if prompt is not None:
        frames = fit_prompt(vocab.local_to_vocab(prompt, f"{where} prompt", conf.ssl_id0), conf, vocab.pad, rng)
        segments.append(np.concatenate([marker("<spk_start/end>"), frames, pad_rows]))
    return [marker("<sos/eos>"), marker("<svs_task>")] + segments


def build_prefix(vocab: Vocabulary, svs_lb: list[str], prompt: np.ndarray | None, where: str,
                 conf: SequenceConfig | None = None) -> np.ndarray:
    """int64 [L_prefix, nq]: everything the LM is conditioned on, up to <codec_ssl_start/end>."""
    conf = conf or SequenceConfig()
    parts = _segments(vocab, conf, svs_lb, prompt, where, None)
    return np.concatenate(parts + [text_frames(np.array([vocab.id("<codec_ssl_start/end>")]), vocab)])


def build_example(vocab: Vocabulary, svs_lb: list[str], prompt: np.ndarray | None, target: np.ndarray, where: str,
                  conf: SequenceConfig | None = None, rng: random.Random | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The whole sequence int64 [L, nq] and its loss mask bool [L, nq]."""
    conf = conf or SequenceConfig()
    conditions = _segments(vocab, conf, svs_lb, prompt, where, rng)
    target_seg = np.concatenate([
        text_frames(np.array([vocab.id("<codec_ssl_start/end>")]), vocab),
        vocab.local_to_vocab(target, f"{where} codec_ssl", conf.ssl_id0),
        text_frames(np.array([vocab.eos]), vocab),
        np.full((vocab.nq - 1, vocab.nq), vocab.pad, dtype=np.int64),
    ])
    seq = np.concatenate(conditions + [target_seg])
    mask = np.ones(seq.shape, dtype=bool)
    if conf.loss_region == "target":
        mask[: len(seq) - len(target_seg)] = False
    mask[seq == vocab.pad] = False
    limit = conf.n_ctx - vocab.nq
    return seq[:limit], mask[:limit]


def delay(x: torch.Tensor, pad: int | bool) -> torch.Tensor:
    """ESPnet's delay interleave [..., L, nq] -> [..., L, nq]: out[t, n] = x[t - n, n], `pad` for t < n."""
    out = torch.full_like(x, pad)
    L = x.shape[-2]
    for n in range(x.shape[-1]):
        out[..., n:, n] = x[..., : L - n, n]
    return out


@dataclass
class Batch:
    """Delayed, right-padded training batch; position t of `inputs` predicts `targets[t]`."""

    inputs: torch.Tensor  # int64 [B, L, nq]
    attention_mask: torch.Tensor  # int64 [B, L], 1 = real position
    targets: torch.Tensor  # int64 [B, L, nq]
    loss_mask: torch.Tensor  # bool [B, L, nq]
    utt_ids: list[str]

    @property
    def n_target_frames(self) -> int:
        return int(self.loss_mask[..., 0].sum())


def collate(examples: list[tuple[str, np.ndarray, np.ndarray]], pad: int) -> Batch:
    """(utt, seq [L, nq], mask [L, nq]) examples -> one delayed Batch (ESPnet's delay: L rows)."""
    delayed = [(delay(torch.from_numpy(seq), pad), delay(torch.from_numpy(mask), False)) for _, seq, mask in examples]
    length = max(len(s) for s, _ in delayed) - 1
    nq = delayed[0][0].shape[1]
    B = len(examples)
    inputs = torch.full((B, length, nq), pad, dtype=torch.long)
    targets = torch.full((B, length, nq), pad, dtype=torch.long)
    loss_mask = torch.zeros((B, length, nq), dtype=torch.bool)
    attention_mask = torch.zeros((B, length), dtype=torch.long)
    for b, (seq, mask) in enumerate(delayed):
        n = len(seq) - 1
        inputs[b, :n] = seq[:-1]
        targets[b, :n] = seq[1:]
        loss_mask[b, :n] = mask[1:]
        attention_mask[b, :n] = 1
    return Batch(inputs, attention_mask, targets, loss_mask, [utt for utt, _, _ in examples])
