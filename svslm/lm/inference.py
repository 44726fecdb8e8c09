"""Decoding `codec_ssl` tokens from a score and a speaker prompt with the fine-tuned LM.

Python interface used by stage 3 (`decode_split`, called by `svslm.bin.lm_decode`), stage 6 and
`svslm sing`:

    model, vocab = load_lm("exp/lm/mini/best")
    tokens = decode(model, vocab, svs_lb=[["svs_a", "svs_60", ...]], prompts=[prompt], conf=DecodeConfig(), seed=0)
    # -> [int32 [T, 9]] local ids, T = the score's frame count

Decoding follows ESPnet's ARDelayLM.inference: the delayed prefix is fed, then one delayed row per
step; stream n of step s is frame s - n. ESPnet's masks (`build_mask`): stream 0 may emit the SSL
range and `<codec_ssl_start/end>`, stream n >= 1 its own codebook and `<pad>`. The frame after the
last is `<sos/eos>` followed by <pad> rows, as ESPnet forces it at maxlen - (nq - 1) = T; so
decoding T frames here equals ESPnet's with maxlen = minlen = T + nq - 1 (all T frames kept).
A `<pad>` (or marker) that a stream emits is fed back as is; the written local id is the stream's
most likely own token at that place, since a codec frame needs a code in every stream.

Writing the undelayed frames into a buffer makes the bookkeeping exact: the row fed at delayed
position p is buf[p - n, n] for stream n. Utterances of a batch are left-padded so that their
prefixes end together; an utterance whose score is shorter than the batch's longest ignores its
extra steps.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import DynamicCache

from svslm.lm.checkpoint import load_checkpoint
from svslm.lm.data import read_data_json
from svslm.lm.model import SpeechLM
from svslm.lm.sequence import SequenceConfig, build_prefix
from svslm.lm.vocab import SVS_PLACEHOLDER, Vocabulary
from svslm.utils.device import resolve_device
from svslm.utils.fileio import write_kaldi_map
from svslm.utils.jobs import JobSlice
from svslm.utils.logging import setup_logging
from svslm.utils.shards import Shards
from svslm.utils.workers import process_pool

log = logging.getLogger("svslm")

SHARD_BATCHES = 4  # decoding batches per resumable shard


@dataclass
class DecodeConfig:
    top_k: int = 30  # sample among the k most likely tokens of each stream (0 = all)
    temperature: float = 0.8  # softmax temperature of every stream
    greedy: bool = False  # take the most likely token instead of sampling
    espnet_mask: bool = True  # allow <pad> in codec streams and the start marker in stream 0, as ESPnet
    batch_size: int = 8  # utterances decoded together
    use_cache: bool = True  # KV cache; false recomputes the whole prefix every step (for checking)
    seed: int = 0  # sampling seed of the stage 3 decode


def load_lm(model_dir: str | Path, device: str = "cpu") -> tuple[SpeechLM, Vocabulary]:
    """A fine-tuned (or pretrained) ESPnet-SpeechLM checkpoint, ready to decode."""
    model = load_checkpoint(model_dir).to(device).eval()
    return model, model.vocab


def svs_lb_frames(tokens: list[str], where: str = "svs_lb") -> int:
    """Frames of a flat svs_lb sequence: one (phone, pitch) token pair per frame."""
    n = sum(1 for t in tokens if t != SVS_PLACEHOLDER)
    if n == 0 or n % 2:
        raise ValueError(f"{where}: {n} svs_lb tokens (without placeholders) is not a whole number of (phone, pitch) frames")
    return n // 2


def _sample(logits: torch.Tensor, conf: DecodeConfig, gen: torch.Generator) -> torch.Tensor:
    """logits [B, K] -> indices [B] by greedy or top-k/temperature sampling."""
    if conf.greedy:
        return logits.argmax(-1)
    logits = logits / conf.temperature
    if 0 < conf.top_k < logits.shape[-1]:
        kth = logits.topk(conf.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(-1).to(logits.device)


def _delayed_rows(buf: torch.Tensor, start: int, end: int, pad: int) -> torch.Tensor:
    """Delayed positions [start, end) read from the undelayed buffer [B, F, nq] -> [B, end-start, nq]."""
    nq = buf.shape[-1]
    pos = torch.arange(start, end, device=buf.device)
    rows = []
    for n in range(nq):
        idx = pos - n
        col = buf[:, idx.clamp(min=0), n]
        rows.append(torch.where(idx >= 0, col, torch.full_like(col, pad)))
    return torch.stack(rows, dim=-1)


def allowed_ids(vocab: Vocabulary, stream: int, espnet_mask: bool) -> torch.Tensor:
    """Vocabulary ids a stream may emit: its own tokens first, then what ESPnet's mask adds."""
    own = torch.from_numpy(vocab.stream_ids(stream))
    if not espnet_mask:
        return own
    extra = vocab.id("<codec_ssl_start/end>") if stream == 0 else vocab.pad
    return torch.cat([own, torch.tensor([extra])])


@torch.no_grad()
def _decode_batch(
    model: SpeechLM, prefixes: list[np.ndarray], n_frames: list[int], conf: DecodeConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(global ids as fed back [B, T, nq], local ids [B, T, nq]) of the decoded frames."""
    vocab, nq = model.vocab, model.nq
    device = next(model.parameters()).device
    B = len(prefixes)
    L = max(len(p) for p in prefixes)  # the target starts at buffer frame L for everyone
    T = max(n_frames)
    left_pad = torch.tensor([L - len(p) for p in prefixes], device=device)
    t_len = torch.tensor(n_frames, device=device)
    # Undelayed frames: left pad, prefix, target, closing <sos/eos>, and room for the delay tail.
    buf = torch.full((B, L + T + nq, nq), vocab.pad, dtype=torch.long, device=device)
    for b, p in enumerate(prefixes):
        buf[b, L - len(p) : L] = torch.from_numpy(p)
    buf[torch.arange(B), L + t_len, 0] = vocab.eos
    out = torch.zeros((B, T, nq), dtype=torch.long, device=device)  # local ids
    total = L + T + nq - 1  # delayed positions up to the last frame's last stream
    positions = torch.arange(total, device=device)
    attention = (positions[None] >= left_pad[:, None]).long()  # [B, total]
    position_ids = (positions[None] - left_pad[:, None]).clamp(min=0)
    allowed = [allowed_ids(vocab, n, conf.espnet_mask).to(device) for n in range(nq)]
    n_own = [len(vocab.stream_ids(n)) for n in range(nq)]

    cache = DynamicCache(config=model.corelm.decoders.model.config) if conf.use_cache else None
    h, cache = model.hidden(_delayed_rows(buf, 0, L, vocab.pad), attention[:, :L], position_ids[:, :L], cache)
    h = h[:, -1]
    for p in range(L - 1, total - 1):  # h is the output at delayed position p; predict p + 1
        for n in range(nq):
            k = p + 1 - n - L  # target frame predicted for stream n
            if k < 0 or k >= T:
                continue
            logits = model.stream_logits(h, n, allowed[n])  # [B, K]
            pick = _sample(logits, conf, gen)
            # A <pad>/marker pick is fed back; the written local id is the best own token.
            local = torch.where(pick < n_own[n], pick, logits[:, : n_own[n]].argmax(-1))
            active = k < t_len  # utterances whose score still has frame k
            out[:, k, n] = torch.where(active, local, out[:, k, n])
            buf[:, L + k, n] = torch.where(active, allowed[n][pick], buf[:, L + k, n])
        if p + 1 == total - 1:
            break
        if conf.use_cache:
            row = _delayed_rows(buf, p + 1, p + 2, vocab.pad)
            h, cache = model.hidden(row, attention[:, : p + 2], position_ids[:, p + 1 : p + 2], cache)
        else:
            h, _ = model.hidden(_delayed_rows(buf, 0, p + 2, vocab.pad), attention[:, : p + 2], position_ids[:, : p + 2])
        h = h[:, -1]
    return buf[:, L : L + T].cpu(), out.cpu()


def greedy_frames(model: SpeechLM, prefix: np.ndarray, n_frames: int, use_cache: bool = True) -> np.ndarray:
    """int64 [n_frames, nq]: greedy decoding from `prefix` (undelayed, global ids, <pad> kept as 0)."""
    conf = DecodeConfig(greedy=True, use_cache=use_cache)
    frames, _ = _decode_batch(model, [np.asarray(prefix, dtype=np.int64)], [n_frames], conf, torch.Generator())
    return frames[0].numpy()


def decode(
    model: SpeechLM,
    vocab: Vocabulary,
    svs_lb: list[list[str]],
    prompts: list[np.ndarray | None],
    conf: DecodeConfig,
    seed: int,
    n_frames: list[int] | None = None,
) -> list[np.ndarray]:
    """int32 [T, 9] local codec_ssl ids per utterance; T = `n_frames` or the svs_lb frame count.

    Utterances are decoded in batches of `conf.batch_size` in length order (less padding);
    results come back in input order. The same seed and batch composition give the same output.
    """
    if len(svs_lb) != len(prompts):
        raise ValueError(f"{len(svs_lb)} svs_lb sequences but {len(prompts)} prompts")
    frames = n_frames or [svs_lb_frames(s, f"utterance {i}") for i, s in enumerate(svs_lb)]
    seq_conf = getattr(model, "sequence", None) or SequenceConfig()
    prefixes = [build_prefix(vocab, s, p, f"utterance {i}", seq_conf) for i, (s, p) in enumerate(zip(svs_lb, prompts))]
    order = sorted(range(len(prefixes)), key=lambda i: (len(prefixes[i]) + frames[i], i))
    gen = torch.Generator().manual_seed(seed)
    results: list[np.ndarray | None] = [None] * len(prefixes)
    for start in range(0, len(order), conf.batch_size):
        idx = order[start : start + conf.batch_size]
        _, local = _decode_batch(model, [prefixes[i] for i in idx], [frames[i] for i in idx], conf, gen)
        for b, i in enumerate(idx):
            results[i] = local[b, : frames[i]].numpy().astype(np.int32)
    return results  # type: ignore[return-value]


def _decode_job(args: tuple) -> int:
    return decode_split(*args)


def decode_split(conf: DecodeConfig, model_dir: str | Path, data_json: str | Path, out_dir: str | Path,
                 device: str = "auto", job: JobSlice | None = None, nj: int = 1) -> int:
    """Stage 3's decoding of a split: `out_dir/codec_ssl.scp` over the resumable shards
    `out_dir/data/codec_ssl.<k>.{ark,scp}` (svslm.utils.shards) of `SHARD_BATCHES` batches each;
    a re-run decodes only the shards not finished. With `job`: only that job's shards, no merge.
    `nj` > 1 (without `job`): the shards as `nj` jobs, one in this process and the others in worker
    processes of one thread, then the merge; each shard has its own seed, so the tokens do not
    depend on `nj`.
    Returns the utterances in codec_ssl.scp (0 for a job)."""
    device = str(resolve_device(device))  # a device this machine lacks fails before any work
    split = read_data_json(data_json, need_targets=False)
    out_dir = Path(out_dir)
    shards = Shards(out_dir / "data", "codec_ssl", list(split.utt_ids), conf.batch_size * SHARD_BATCHES)
    left = sum(not shards.done(k) for k in range(len(shards)))
    if job is None and nj > 1 and left > 1:
        n = min(nj, left)
        # Jobs 2..n in workers, job 1 here: this process has paid its imports, a worker pays them again.
        with process_pool(n - 1, setup_logging) as pool:  # the workers' shard lines reach the log too
            others = pool.map_async(_decode_job, [(conf, model_dir, data_json, out_dir, device, JobSlice(j + 1, n))
                                                  for j in range(1, n)])
            decode_split(conf, model_dir, data_json, out_dir, device, JobSlice(1, n))
            others.get()
    model = vocab = None  # loaded when a shard is left to decode (a merging run may have none)
    for k, utts in enumerate(shards.units):
        if shards.done(k) or (job is not None and not job.owns(k)):
            continue
        if model is None:
            model, vocab = load_lm(model_dir, device)
        # One seed per shard: a resumed run gives the same tokens as an uninterrupted one.
        tokens = decode(model, vocab, [split.svs_lb[u] for u in utts], [split.prompt(u) for u in utts],
                        conf, seed=conf.seed + k)
        shards.write(k, dict(zip(utts, tokens)))
        log.info("decoded shard %d of %d (%d utterances)", k + 1, len(shards), len(utts))
    if job is not None:
        log.info("%s: decoded its shards of %d", job, len(shards))
        return 0
    lines = shards.merged()
    write_kaldi_map(out_dir / "codec_ssl.scp", lines)
    log.info("wrote %s: %d utterances", out_dir / "codec_ssl.scp", len(lines))
    return len(lines)
