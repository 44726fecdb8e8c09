"""The `svs` task's token sequence, and batches of delayed sequences for training.

Template (ESPnet-SpeechLM: a task marker, then each condition and the target behind its modality
marker, closed by <sos/eos>; one row per frame, nq streams per row):

    <sos/eos> <svs_task> <svs_lb_start/end> svs_lb tokens... <spk_start/end> prompt frames...
    <codec_ssl_start/end> target frames... <sos/eos>

Text-like tokens (markers, svs_lb) sit in stream 0 with <pad> in the other streams; prompt and
target frames fill all nq streams. The prefix ends with <codec_ssl_start/end>; the loss covers the
target frames (all streams) and the closing <sos/eos> (stream 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from svslm.lm.delay import delay_interleave
from svslm.lm.vocab import Vocabulary


def text_frames(ids: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """int64 [N] token ids -> [N, nq] frames with the ids in stream 0 and <pad> elsewhere."""
    out = np.full((len(ids), vocab.nq), vocab.pad, dtype=np.int64)
    out[:, 0] = ids
    return out


def build_prefix(vocab: Vocabulary, svs_lb: list[str], prompt: np.ndarray | None, where: str) -> np.ndarray:
    """int64 [L_prefix, nq]: everything the LM is conditioned on, up to <codec_ssl_start/end>."""
    marker = lambda name: text_frames(np.array([vocab.id(name)]), vocab)
    parts = [
        marker("<sos/eos>"),
        marker("<svs_task>"),
        marker("<svs_lb_start/end>"),
        text_frames(vocab.text_ids(svs_lb, f"{where} svs_lb"), vocab),
    ]
    if prompt is not None:
        parts += [marker("<spk_start/end>"), vocab.local_to_vocab(prompt, f"{where} prompt")]
    parts.append(marker("<codec_ssl_start/end>"))
    return np.concatenate(parts)


def build_example(
    vocab: Vocabulary, svs_lb: list[str], prompt: np.ndarray | None, target: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """The whole sequence int64 [L, nq] and its loss mask bool [L, nq] (target region only)."""
    prefix = build_prefix(vocab, svs_lb, prompt, where)
    body = vocab.local_to_vocab(target, f"{where} codec_ssl")
    eos = text_frames(np.array([vocab.eos]), vocab)
    seq = np.concatenate([prefix, body, eos])
    mask = np.zeros(seq.shape, dtype=bool)
    mask[len(prefix) : len(prefix) + len(body)] = True
    mask[-1, 0] = True  # the closing <sos/eos> is predicted; its <pad> streams are not
    return seq, mask


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
    """(utt, seq [L, nq], mask [L, nq]) examples -> one delayed Batch."""
    delayed = [
        (delay_interleave(torch.from_numpy(seq), pad), delay_interleave(torch.from_numpy(mask), False))
        for _, seq, mask in examples
    ]
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
