"""Training loop of the flow model: AdamW, a linear-decay LR schedule, optional EMA, validation
loss, tensorboard, resumable checkpoints, data parallelism over the processes of a `torchrun`
launch (svslm.utils.distributed) and bf16/fp16 mixed precision.

N processes train exactly what one process trains with the same (global) `data.batch_size`: each
trains on its share of every batch, padded to the whole batch's length, with its loss weighted
by its share of the batch's frames, and every random number of the loss (flow time, noise,
condition dropout) is drawn per utterance from (seed, epoch, utterance). Encoder dropout is the one
draw that differs: each process has its own stream.

`exp_dir` after training: `config.yaml` (the whole config), `checkpoints/step<N>/` (the last
few, svslm.utils.checkpoint: model, EMA, optimizer, scheduler, RNG, position), `best.pth` (the
weights with the lowest validation loss, EMA weights when EMA is on, with the codec width),
`tensorboard/`, `bad_utts.txt` when utterances had to be left out. A re-run resumes from the
newest checkpoint that loads; a finished run is left as it is.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from svslm.flow.cfm import Draws
from svslm.flow.config import FlowConfig, OptimConfig
from svslm.flow.data import FlowDataset, collate, epoch_batches, load_flow_examples
from svslm.flow.model import FlowModel, FlowModelConfig
from svslm.utils import distributed
from svslm.utils.checkpoint import CheckpointDir, restore_rng_per_rank, rng_state
from svslm.utils.config import save_config, to_dict
from svslm.utils.fileio import atomic_path, atomic_write_text

log = logging.getLogger("svslm")


class CodecEmbedder(Protocol):
    """The part of `svslm.tokenize.codec`'s tokenizer the flow uses (docs/formats.md)."""

    embed_dim: int

    def embed(self, tokens: torch.Tensor) -> torch.Tensor: ...  # LongTensor [B, T, 8] -> [B, T, embed_dim]


def variant_name(cfg: FlowModelConfig) -> str:
    """E.g. "Flow2 -> mel (condition: lm_decode, prompt: True)", for logs."""
    return (f"Flow{2 if cfg.use_pitch else 1} -> {cfg.output} "
            f"(condition: {cfg.condition_source}, prompt: {cfg.use_prompt})")


def lr_factor(step: int, cfg: OptimConfig) -> float:
    """LR multiplier at `step`: warm-up, constant lr, linear decay to final_lr, then constant."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if step <= cfg.decay_start:
        return 1.0
    frac = min(1.0, (step - cfg.decay_start) / max(1, cfg.decay_end - cfg.decay_start))
    return (cfg.lr + frac * (cfg.final_lr - cfg.lr)) / cfg.lr


def model_inputs(batch: dict, codec: CodecEmbedder, model: FlowModel, device: torch.device) -> dict[str, Any]:
    """A collated batch -> keyword arguments of `FlowModel.loss` (codec tokens embedded here)."""
    mask = batch["mask"].to(device)
    # Tokens go to the codec as they come (on the CPU): the codec keeps them where its tables are
    # (the mini codec's on the CPU, ESPnet's on its device), and the embedding comes here.
    with torch.no_grad():
        codec_emb = codec.embed(batch["cond_tokens"]).float().to(device)  # [B, T, D]
        if model.output == "mel":
            target = batch["target_mel"].to(device)  # [B, n_mels, T]
        else:
            target = codec.embed(batch["target_tokens"]).float().to(device).transpose(1, 2)  # [B, D, T]
    inputs = {"target": target, "codec_emb": codec_emb, "mask": mask}
    if "midi" in batch:
        inputs["midi"] = batch["midi"].to(device)
    if "prompt_mel" in batch:
        inputs["prompt_mel"] = batch["prompt_mel"].to(device)
    return inputs


def _masked_moments(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum, sum of squares per channel and count over valid frames: x [B, C, T], mask [B, T]."""
    m = mask.unsqueeze(1).to(x.dtype)
    return (x * m).sum((0, 2)), (x * x * m).sum((0, 2)), m.sum()


def compute_stats(dataset: FlowDataset, codec: CodecEmbedder, model: FlowModel, cfg: FlowConfig, device) -> dict:
    """Per-channel mean and std of target, condition and prompt over up to `stats_utts` utterances."""
    n = min(len(dataset), cfg.data.stats_utts)
    subset = torch.utils.data.Subset(dataset, range(n))
    loader = DataLoader(subset, batch_size=cfg.data.batch_size, collate_fn=collate,
                        num_workers=cfg.data.num_workers, generator=torch.Generator())
    sums: dict[str, list] = {}
    for batch in tqdm(loader, desc="normalisation statistics", leave=False):
        inputs = model_inputs(batch, codec, model, device)
        parts = {"target": (inputs["target"], inputs["mask"]),
                 "cond": (inputs["codec_emb"].transpose(1, 2), inputs["mask"])}
        if model.output == "mel":
            parts["prompt"] = parts["target"]
        if "prompt_mel" in inputs:
            p = inputs["prompt_mel"]
            parts["prompt"] = (p, torch.ones(p.shape[0], p.shape[-1], dtype=torch.bool, device=device))
        for name, (x, mask) in parts.items():
            moments = _masked_moments(x, mask)
            sums[name] = [a + b for a, b in zip(sums[name], moments)] if name in sums else list(moments)
    stats = {}
    for name, (s, s2, count) in sums.items():
        mean = s / count
        stats[name] = (mean, (s2 / count - mean**2).clamp(min=0).sqrt())
    return stats


@torch.no_grad()
def validate(model: FlowModel, loader: DataLoader, codec: CodecEmbedder, seed: int, device) -> float:
    """Mean flow-matching loss over the validation split, with t and noise fixed by `seed` so
    the numbers of different epochs compare."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    total, count = 0.0, 0
    for batch in loader:
        inputs = model_inputs(batch, codec, model, device)
        n = inputs["mask"].shape[0]
        total += model.loss(**inputs, generator=gen).item() * n
        count += n
    model.train()
    return total / max(count, 1)


def _save_best(exp_dir: Path, weights: dict, codec_dim: int, step: int, valid_loss: float) -> None:
    with atomic_path(exp_dir / "best.pth") as tmp:
        torch.save({"model": weights, "codec_dim": codec_dim, "step": step, "valid_loss": valid_loss}, tmp)


class LossModule(nn.Module):
    """The flow's loss as a forward(): DistributedDataParallel synchronises the gradients of
    what forward() computes."""

    def __init__(self, model: FlowModel):
        super().__init__()
        self.model = model

    def forward(self, inputs: dict[str, Any], draws: Draws) -> torch.Tensor:
        return self.model.loss(**inputs, draws=draws)


def utterance_draws(indices: list[int], n_valid: torch.Tensor, out_dim: int, n_frames: int,
                    seed: int, epoch: int, device: torch.device) -> Draws:
    """The loss's random numbers for the utterances `indices` of the training set: each from its
    own generator seeded by (seed, epoch, index), noise only on its n_valid frames."""
    u, drop = torch.empty(len(indices), device=device), torch.empty(len(indices), device=device)
    x0 = torch.zeros(len(indices), out_dim, n_frames, device=device)
    for i, (index, n) in enumerate(zip(indices, n_valid.tolist())):
        gen = torch.Generator(device=device).manual_seed((seed * 1000003 + epoch) * 1000003 + index)
        u[i] = torch.rand(1, device=device, generator=gen)[0]
        drop[i] = torch.rand(1, device=device, generator=gen)[0]
        x0[i, :, :n] = torch.randn(out_dim, n, device=device, generator=gen)
    return Draws(u, x0, drop)


def pad_batch(batch: dict, n_frames: int) -> dict:
    """A collated batch padded along time to `n_frames` (the whole global batch's length), so that
    a process's share of a batch sees the same padding as the batch would in one process."""
    pad = n_frames - batch["mask"].shape[1]
    if pad <= 0:
        return batch
    out = dict(batch)
    for key, dim in (("mask", 1), ("cond_tokens", 1), ("target_tokens", 1), ("midi", 1), ("target_mel", 2)):
        if key in batch:
            x = batch[key]
            shape = list(x.shape)
            shape[dim] = pad
            out[key] = torch.cat([x, x.new_zeros(shape)], dim=dim)
    return out


def train(
    cfg: FlowConfig,
    data_dir: str | Path,
    dump_dir: str | Path,
    lm_decode_dir: str | Path | None,
    exp_dir: str | Path,
    codec: CodecEmbedder,
) -> Path:
    """Train (or resume training) one flow model; returns the path of best.pth.

    Under `torchrun` every process calls this; rank 0 alone writes exp_dir."""
    exp_dir = Path(exp_dir)
    tcfg = cfg.train
    dist = distributed.setup(tcfg.device)
    device, main = dist.device, dist.is_main
    train_examples, bad = load_flow_examples(cfg.data.train_split, cfg.model, cfg.data, data_dir, dump_dir, lm_decode_dir)
    valid_examples, bad_valid = load_flow_examples(cfg.data.valid_split, cfg.model, cfg.data, data_dir, dump_dir,
                                                   lm_decode_dir)
    if (bad or bad_valid) and main:
        atomic_write_text(exp_dir / "bad_utts.txt", "".join(f"{m}\n" for m in bad + bad_valid))
    if main:
        log.info("%d training and %d validation utterances (%d left out); %d process(es), global batch %d",
                 len(train_examples), len(valid_examples), len(bad) + len(bad_valid), dist.world_size,
                 cfg.data.batch_size)
    train_set = FlowDataset(train_examples, cfg.model, cfg.data.max_frames, tcfg.seed, cfg.data.cache_mels)
    valid_set = FlowDataset(valid_examples, cfg.model, cache_mels=cfg.data.cache_mels)
    lengths = train_set.lengths()
    # Loaders get their own generator: drawing their seed from the global RNG would make a
    # resumed run differ from an uninterrupted one.
    valid_loader = DataLoader(valid_set, batch_size=cfg.data.batch_size, collate_fn=collate,
                              num_workers=cfg.data.num_workers, generator=torch.Generator())
    batches_per_epoch = math.ceil(len(train_set) / cfg.data.batch_size)
    total_steps = tcfg.max_steps or tcfg.epochs * batches_per_epoch

    torch.manual_seed(tcfg.seed)
    model = FlowModel(cfg.model, codec.embed_dim).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                  weight_decay=cfg.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg.optim))
    scaler = distributed.grad_scaler(tcfg.precision, device)
    if main:
        log.info("%s: %.2fM parameters, %s", variant_name(cfg.model),
                 sum(p.numel() for p in model.parameters()) / 1e6, tcfg.precision)

    step, epoch, batch_in_epoch, best_loss = 0, 0, 0, math.inf
    checkpoints = CheckpointDir(exp_dir / "checkpoints", tcfg.keep_checkpoints)
    state = checkpoints.load_latest_state()
    if state is not None:
        if state["model_config"] != to_dict(cfg.model):
            raise ValueError(f"{exp_dir}: the model config differs from the one its checkpoints were trained "
                             "with; use a new exp_dir or the old config")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step, epoch, batch_in_epoch, best_loss = state["step"], state["epoch"], state["batch_in_epoch"], state["best_loss"]
        if main:
            log.info("resumed from step %d (epoch %d, batch %d)", step, epoch + 1, batch_in_epoch)
    elif main:  # the other processes receive the statistics with the weights, when DDP wraps the model
        model.set_stats(compute_stats(train_set, codec, model, cfg, device))
    loss_module = dist.wrap(LossModule(model))
    # Created after the statistics are set: the EMA copy keeps the buffers it starts with.
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tcfg.ema_decay)) if tcfg.ema_decay > 0 else None
    if ema is not None and state is not None and state["ema"] is not None:
        ema.load_state_dict(state["ema"])
    if state is not None:  # each process continues its own dropout stream
        if not restore_rng_per_rank(state["rng"], dist.rank, dist.world_size, tcfg.seed, state["step"]) and main:
            log.info("checkpoint written by %d processes, resumed by %d: dropout draws start anew",
                     len(state["rng"]), dist.world_size)
    elif dist.enabled:  # dropout: one stream per process
        torch.manual_seed(tcfg.seed * 1000003 + dist.rank)
    if main:
        save_config(cfg, exp_dir / "config.yaml")
    if step >= total_steps and (exp_dir / "best.pth").is_file():
        if main:
            log.info("training already finished (%d steps); nothing to do", step)
        return exp_dir / "best.pth"

    def checkpoint() -> None:
        rng = dist.gather(rng_state())  # every process takes part
        if main:
            checkpoints.save_state(step, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "ema": ema.state_dict() if ema is not None else None, "rng": rng,
                "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "best_loss": best_loss,
                "model_config": to_dict(cfg.model), "codec_dim": codec.embed_dim, "world_size": dist.world_size,
            })

    def end_of_epoch_validation() -> None:
        nonlocal best_loss
        if main:
            evaluated = ema.module if ema is not None else model
            valid_loss = validate(evaluated, valid_loader, codec, tcfg.seed, device)
            writer.add_scalar("valid/loss", valid_loss, step)
            log.info("epoch %d step %d: validation loss %.4f (best %.4f)", epoch + 1, step, valid_loss, best_loss)
            if valid_loss < best_loss or not (exp_dir / "best.pth").is_file():
                best_loss = min(best_loss, valid_loss)
                _save_best(exp_dir, evaluated.state_dict(), codec.embed_dim, step, valid_loss)
        dist.barrier()

    writer = SummaryWriter(str(exp_dir / "tensorboard")) if main else None
    model.train()
    progress = tqdm(total=total_steps, initial=step, desc="flow training", dynamic_ncols=True, disable=not main)
    while step < total_steps:
        train_set.set_epoch(epoch)
        batches = epoch_batches(lengths, cfg.data.batch_size, tcfg.seed, epoch)[batch_in_epoch:]
        # This process's share of each batch; a share left empty (a batch smaller than the world)
        # trains on the batch's first utterance with weight 0, so every process joins every step.
        shares = [distributed.shard(b, dist.rank, dist.world_size) for b in batches]
        loader = DataLoader(train_set, batch_sampler=[share or whole[:1] for share, whole in zip(shares, batches)],
                            collate_fn=collate, num_workers=cfg.data.num_workers, generator=torch.Generator())
        for whole, share, batch in zip(batches, shares, loader):
            n_frames = max(lengths[i] for i in whole)
            inputs = model_inputs(pad_batch(batch, n_frames), codec, model, device)
            mask = inputs["mask"]
            # The loss is a mean over this share's frames; DDP averages over processes: weighted
            # by its share of the batch's frames, the processes' gradients add up to the batch's.
            weight = sum(lengths[i] for i in share) / sum(lengths[i] for i in whole) * dist.world_size
            share = share or whole[:1]
            draws = utterance_draws(share, mask.sum(1), inputs["target"].shape[1], n_frames, tcfg.seed, epoch, device)
            with distributed.autocast(tcfg.precision, device):
                loss = loss_module(inputs, draws)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {step} (utterances {batch['utts']})")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss * weight).backward()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or math.inf)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            batch_in_epoch += 1
            # The whole batch's loss: each process's frame-weighted share, summed.
            batch_loss = dist.sum(loss.detach() * weight / dist.world_size).item()
            progress.update(1)
            progress.set_postfix(loss=f"{batch_loss:.4f}", epoch=epoch + 1)
            if step % tcfg.log_every == 0 and main:
                writer.add_scalar("train/loss", batch_loss, step)
                writer.add_scalar("train/grad_norm", grad_norm.item(), step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
            if step >= total_steps:
                break
            if step % tcfg.save_every == 0:
                checkpoint()
        if batch_in_epoch >= batches_per_epoch:
            end_of_epoch_validation()
            epoch, batch_in_epoch = epoch + 1, 0
        elif step >= total_steps:
            end_of_epoch_validation()  # stopped mid-epoch by max_steps: validate what we have
        checkpoint()
    if not (exp_dir / "best.pth").is_file():  # killed between the last checkpoint and best.pth
        end_of_epoch_validation()
    progress.close()
    if main:
        writer.close()
        log.info("finished after %d steps; best validation loss %.4f", step, best_loss)
    dist.barrier()
    return exp_dir / "best.pth"
