"""Training loop of the flow model: AdamW, a linear-decay LR schedule, optional EMA, validation
loss, tensorboard, resumable checkpoints.

`exp_dir` after training: `config.yaml` (the whole config), `checkpoints/step<N>.pth` (the last
few, each written atomically: model, EMA, optimizer, scheduler, RNG, position), `best.pth` (the
weights with the lowest validation loss, EMA weights when EMA is on, with the codec width),
`tensorboard/`, `bad_utts.txt` when utterances had to be left out. A re-run resumes from the
newest checkpoint that loads; a finished run is left as it is.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from svslm.flow.data import (
    FlowDataConfig,
    FlowDataset,
    collate,
    epoch_batches,
    load_split,
)
from svslm.flow.model import FlowModel, FlowModelConfig
from svslm.utils.config import save_config, to_dict
from svslm.utils.device import resolve_device
from svslm.utils.fileio import atomic_path, atomic_write_text

log = logging.getLogger("svslm")


class CodecEmbedder(Protocol):
    """The part of `svslm.tokenize.codec`'s tokenizer the flow uses (docs/formats.md)."""

    embed_dim: int

    def embed(self, tokens: torch.Tensor) -> torch.Tensor: ...  # LongTensor [B, T, 8] -> [B, T, embed_dim]


@dataclass
class OptimConfig:
    lr: float = 3e-4  # peak learning rate (AdamW)
    final_lr: float = 1e-4  # learning rate at `decay_end` and after
    decay_start: int = 200000  # step where the linear decay from lr to final_lr begins
    decay_end: int = 500000  # step where it ends
    warmup_steps: int = 0  # linear warm-up from 0 to lr over these first steps
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW betas
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    grad_clip: float = 1.0  # max gradient norm; 0 = no clipping


@dataclass
class TrainConfig:
    epochs: int = 30  # passes over the training split (the paper's code: 30)
    max_steps: int = 0  # stop after this many optimizer steps instead; 0 = `epochs` decides
    seed: int = 42  # seeds weights, data order, crops, noise
    ema_decay: float = 0.0  # exponential moving average of the weights; 0 = off, e.g. 0.999
    log_every: int = 50  # steps between tensorboard scalars
    save_every: int = 1000  # steps between checkpoints (one is also written at every epoch end)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    device: str = "auto"  # torch device (svslm.utils.device: auto = CUDA when present), unless --device overrides it


@dataclass
class FlowTrainConfig:
    model: FlowModelConfig = field(default_factory=FlowModelConfig)
    data: FlowDataConfig = field(default_factory=FlowDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


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
    with torch.no_grad():
        codec_emb = codec.embed(batch["cond_tokens"].to(device)).float()  # [B, T, D]
        if model.output == "mel":
            target = batch["target_mel"].to(device)  # [B, n_mels, T]
        else:
            target = codec.embed(batch["target_tokens"].to(device)).float().transpose(1, 2)  # [B, D, T]
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


def compute_stats(dataset: FlowDataset, codec: CodecEmbedder, model: FlowModel, cfg: FlowTrainConfig, device) -> dict:
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


def _checkpoints(exp_dir: Path) -> list[Path]:
    return sorted((exp_dir / "checkpoints").glob("step*.pth"), key=lambda p: int(p.stem[4:]))


def _save_checkpoint(exp_dir: Path, state: dict, keep: int) -> None:
    path = exp_dir / "checkpoints" / f"step{state['step']:08d}.pth"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in _checkpoints(exp_dir)[:-keep]:
        old.unlink()


def _load_latest(exp_dir: Path) -> dict | None:
    """The newest checkpoint that loads; files that do not (a damaged disk) are reported and skipped."""
    for path in reversed(_checkpoints(exp_dir)):
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # torch.load raises many types for a damaged file
            log.warning("cannot load checkpoint %s (%s); trying an older one", path, err)
    return None


def _save_best(exp_dir: Path, weights: dict, codec_dim: int, step: int, valid_loss: float) -> None:
    with atomic_path(exp_dir / "best.pth") as tmp:
        torch.save({"model": weights, "codec_dim": codec_dim, "step": step, "valid_loss": valid_loss}, tmp)


def train(
    cfg: FlowTrainConfig,
    data_dir: str | Path,
    dump_dir: str | Path,
    lm_decode_dir: str | Path | None,
    exp_dir: str | Path,
    codec: CodecEmbedder,
) -> Path:
    """Train (or resume training) one flow model; returns the path of best.pth."""
    exp_dir = Path(exp_dir)
    device = resolve_device(cfg.train.device)
    tcfg = cfg.train
    train_examples, bad = load_split(cfg.data.train_split, cfg.model, cfg.data, data_dir, dump_dir, lm_decode_dir)
    valid_examples, bad_valid = load_split(cfg.data.valid_split, cfg.model, cfg.data, data_dir, dump_dir, lm_decode_dir)
    if bad or bad_valid:
        atomic_write_text(exp_dir / "bad_utts.txt", "".join(f"{m}\n" for m in bad + bad_valid))
    log.info("%d training and %d validation utterances (%d left out)",
             len(train_examples), len(valid_examples), len(bad) + len(bad_valid))
    train_set = FlowDataset(train_examples, cfg.model, cfg.data.max_frames, tcfg.seed)
    valid_set = FlowDataset(valid_examples, cfg.model)
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
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%s: %.2fM parameters", variant_name(cfg.model), n_params / 1e6)

    step, epoch, batch_in_epoch, best_loss = 0, 0, 0, math.inf
    state = _load_latest(exp_dir)
    if state is not None:
        if state["model_config"] != to_dict(cfg.model):
            raise ValueError(f"{exp_dir}: the model config differs from the one its checkpoints were trained "
                             "with; use a new exp_dir or the old config")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, batch_in_epoch, best_loss = state["step"], state["epoch"], state["batch_in_epoch"], state["best_loss"]
        log.info("resumed from step %d (epoch %d, batch %d)", step, epoch + 1, batch_in_epoch)
    else:
        model.set_stats(compute_stats(train_set, codec, model, cfg, device))
    # Created after the statistics are set: the EMA copy keeps the buffers it starts with.
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tcfg.ema_decay)) if tcfg.ema_decay > 0 else None
    if ema is not None and state is not None and state["ema"] is not None:
        ema.load_state_dict(state["ema"])
    if state is not None:
        torch.set_rng_state(state["rng"])
    save_config(cfg, exp_dir / "config.yaml")
    if step >= total_steps and (exp_dir / "best.pth").is_file():
        log.info("training already finished (%d steps); nothing to do", step)
        return exp_dir / "best.pth"

    def checkpoint() -> None:
        _save_checkpoint(exp_dir, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None, "rng": torch.get_rng_state(),
            "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "best_loss": best_loss,
            "model_config": to_dict(cfg.model), "codec_dim": codec.embed_dim,
        }, tcfg.keep_checkpoints)

    def end_of_epoch_validation() -> None:
        nonlocal best_loss
        evaluated = ema.module if ema is not None else model
        valid_loss = validate(evaluated, valid_loader, codec, tcfg.seed, device)
        writer.add_scalar("valid/loss", valid_loss, step)
        log.info("epoch %d step %d: validation loss %.4f (best %.4f)", epoch + 1, step, valid_loss, best_loss)
        if valid_loss < best_loss or not (exp_dir / "best.pth").is_file():
            best_loss = min(best_loss, valid_loss)
            _save_best(exp_dir, evaluated.state_dict(), codec.embed_dim, step, valid_loss)

    writer = SummaryWriter(str(exp_dir / "tensorboard"))
    model.train()
    progress = tqdm(total=total_steps, initial=step, desc="flow training", dynamic_ncols=True)
    while step < total_steps:
        train_set.set_epoch(epoch)
        batches = epoch_batches(train_set.lengths(), cfg.data.batch_size, tcfg.seed, epoch)[batch_in_epoch:]
        loader = DataLoader(train_set, batch_sampler=batches, collate_fn=collate,
                            num_workers=cfg.data.num_workers, generator=torch.Generator())
        for batch in loader:
            loss = model.loss(**model_inputs(batch, codec, model, device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {step} (utterances {batch['utts']})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or math.inf)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            batch_in_epoch += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch + 1)
            if step % tcfg.log_every == 0:
                writer.add_scalar("train/loss", loss.item(), step)
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
    writer.close()
    log.info("finished after %d steps; best validation loss %.4f", step, best_loss)
    return exp_dir / "best.pth"
