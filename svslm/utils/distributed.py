"""Data-parallel training under torch.distributed, shared by the flow and the vocoder trainers.

A trainer started by `torchrun` (or `python -m torch.distributed.run`) finds the launcher's
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR in its environment: that is torch's own rendezvous
contract (`init_method="env://"`), not configuration, so it is the one place svslm reads them.
Started any other way, a trainer is one process with world size 1 and nothing here communicates.

How the trainers split the work: every rank builds the same list of *global* batches (the batch
size in YAML is the global one), and rank r trains on `shard(batch)[r]` of each. Gradients are
averaged by DistributedDataParallel; a trainer whose loss is a mean over a variable number of
elements (the flow's frames) weights each rank's loss by its share of them, so N processes
compute the same step as one process with the whole batch. Rank 0 alone logs, validates and writes files.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Literal, TypeVar, get_args

import torch
import torch.distributed as dist
from torch import nn

from svslm.utils.device import resolve_device

log = logging.getLogger("svslm")

T = TypeVar("T")

Precision = Literal["fp32", "bf16", "fp16"]  # train.precision in the flow and vocoder YAML


@dataclass
class Dist:
    """This process's place in the job: rank, world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, validates and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around `module` (parameters and buffers are broadcast from
        rank 0 here), or `module` itself in a one-process run."""
        if not self.enabled:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def sum(self, value: torch.Tensor | float) -> torch.Tensor:
        """The sum over ranks of a scalar or tensor (a float64 copy on this device)."""
        total = torch.as_tensor(value, dtype=torch.float64, device=self.device).clone()
        if self.enabled:
            dist.all_reduce(total)
        return total

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def gather(self, obj: T) -> list[T]:
        """One picklable object per rank, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def setup(device: str) -> Dist:
    """Join the launcher's process group when there is one (NCCL on CUDA, gloo on CPU) and pick
    this process's device; a plain `python -m` start is a one-process Dist."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Dist(device=resolve_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method="env://")
    log.info("rank %d of %d on %s", rank, world_size, dev)
    if rank != 0:  # rank 0 tells the story; the others speak only of problems
        log.setLevel(logging.WARNING)
    return Dist(rank, world_size, local_rank, dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Rank `rank`'s part of a global batch: every world_size-th item from position rank (so a
    length-sorted batch gives every rank items of similar length). May be empty."""
    return list(batch[rank::world_size])


def check_divisible(batch_size: int, world_size: int, what: str) -> None:
    """Trainers whose losses are per-item means need equal parts of every batch."""
    if batch_size % world_size:
        raise ValueError(f"{what} {batch_size} (the global batch) is not divisible by the "
                         f"{world_size} processes; choose a multiple of {world_size}")


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """The forward pass's mixed-precision context: bf16 or fp16 autocast, or nothing for fp32."""
    if precision not in get_args(Precision):
        raise ValueError(f"train.precision must be one of {get_args(Precision)}, got {precision!r}")
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A loss scaler for fp16 (fp16 gradients underflow without one); a disabled, pass-through
    one for bf16 and fp32, whose exponent range needs none."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
