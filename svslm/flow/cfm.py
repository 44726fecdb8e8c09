"""Conditional flow matching: the training loss and the sampling ODE, apart from any network.

Optimal-transport conditional flow matching (Lipman et al., "Flow Matching for Generative
Modeling", ICLR 2023) as Matcha-TTS and CosyVoice use it. Symbols follow the paper:

    x0 ~ N(0, I)                          noise (the source distribution)
    x1                                    a training target (normalised mel or codec embedding)
    t in [0, 1]                           flow time; t = 0 is noise, t = 1 is data
    sigma_min                             the width of the conditional path at t = 1
    x_t = (1 - (1 - sigma_min) t) x0 + t x1    the conditional path psi_t(x0 | x1)
    u_t = x1 - (1 - sigma_min) x0              its velocity d x_t / dt, the regression target

The estimator v(x_t, t, c) regresses u_t; sampling integrates dx/dt = v(x, t, c) from x0 at t = 0
to t = 1. Classifier-free guidance (Ho and Salimans 2022; VoiceBox and CosyVoice for flows): the
condition c is zeroed for a random fraction of training examples, and sampling extrapolates away
from the unconditional field, v = (1 + w) v(x, t, c) - w v(x, t, 0) with guidance scale w.

The estimator is any module called as `estimator(x [B, C, T], mask [B, 1, T], t [B], cond [B, Cc, T])`
returning the velocity [B, C, T]; `mask` is 1 on valid frames and 0 on padding.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

# A velocity field dx/dt = f(t, x): t is a 0-d tensor, x [B, C, T].
VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class CFMConfig:
    sigma_min: float = 1e-6  # width of the path at t = 1 (the paper's code: 1e-6)
    # How flow time is spread, in training (t = warp(u), u uniform) and over the sampling grid:
    # "cosine" = 1 - cos(u pi / 2), denser near the noise end (the paper's code, from CosyVoice).
    time_schedule: Literal["uniform", "cosine"] = "cosine"
    cond_drop_prob: float = 0.2  # fraction of training examples whose condition is zeroed (for guidance)


@dataclass
class Draws:
    """The random numbers of one training loss, when the caller draws them: the trainer draws
    them per utterance, so that a batch split over processes gets the same numbers as whole."""

    u: torch.Tensor  # [B] uniform in [0, 1): flow time before the schedule's warp
    x0: torch.Tensor  # [B, C, T] standard normal noise
    drop: torch.Tensor  # [B] uniform in [0, 1): the condition is dropped where it is < cond_drop_prob


def warp_time(u: torch.Tensor, schedule: str) -> torch.Tensor:
    """Map uniform u in [0, 1] to flow time t in [0, 1] by the schedule."""
    if schedule == "cosine":
        return 1.0 - torch.cos(u * 0.5 * math.pi)
    return u


def ot_path(
    x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, sigma_min: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The point x_t on the OT path and its velocity u_t; t broadcasts against x0 ([B, 1, 1])."""
    x_t = (1.0 - (1.0 - sigma_min) * t) * x0 + t * x1
    u_t = x1 - (1.0 - sigma_min) * x0
    return x_t, u_t


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over valid frames only: pred, target [B, C, T], mask [B, 1, T].

    Averaging over padding too (as the paper's code does) would weight short utterances by how
    much padding their batch happened to have."""
    n_values = mask.sum() * pred.shape[1]
    return ((pred - target) ** 2 * mask).sum() / n_values.clamp(min=1.0)


def integrate(field: VectorField, x0: torch.Tensor, t_grid: torch.Tensor, solver: str) -> torch.Tensor:
    """Solve dx/dt = field(t, x) from t_grid[0] to t_grid[-1] and return x at the end.

    "euler" and "midpoint" are the fixed-grid solvers (one and two field evaluations per step);
    any other name is a torchdiffeq method ("rk4", "dopri5", ...) when torchdiffeq is installed.
    The two fixed-grid solvers are written here because they are two lines each and must run
    without the optional dependency."""
    if solver in ("euler", "midpoint"):
        x = x0
        for t, t_next in itertools.pairwise(t_grid):
            dt = t_next - t
            if solver == "euler":
                x = x + dt * field(t, x)
            else:
                x_mid = x + 0.5 * dt * field(t, x)
                x = x + dt * field(t + 0.5 * dt, x_mid)
        return x
    try:
        from torchdiffeq import odeint
    except ImportError as err:
        raise ValueError(
            f"ODE solver '{solver}' needs torchdiffeq (pip install torchdiffeq); "
            "built-in solvers: euler, midpoint"
        ) from err
    return odeint(field, x0, t_grid, method=solver)[-1]


class CFM(nn.Module):
    """The flow-matching objective and sampler around a velocity estimator network."""

    def __init__(self, estimator: nn.Module, cfg: CFMConfig):
        super().__init__()
        self.estimator = estimator
        self.cfg = cfg

    def loss(
        self,
        x1: torch.Tensor,
        mask: torch.Tensor,
        cond: torch.Tensor,
        generator: torch.Generator | None = None,
        draws: Draws | None = None,
    ) -> torch.Tensor:
        """Flow-matching loss of targets x1 [B, C, T] under condition cond [B, Cc, T].

        `mask` [B, 1, T]; `generator` fixes t and x0 (for a validation loss comparable across
        epochs); `draws`, when given, are used instead of drawing. The condition is dropped for a
        `cond_drop_prob` fraction of examples in training."""
        b = x1.shape[0]
        u = draws.u if draws is not None else torch.rand(b, device=x1.device, generator=generator)
        t = warp_time(u, self.cfg.time_schedule)
        x0 = draws.x0 if draws is not None else torch.randn(x1.shape, device=x1.device, generator=generator)
        x_t, u_t = ot_path(x0, x1, t.view(b, 1, 1), self.cfg.sigma_min)
        if self.training and self.cfg.cond_drop_prob > 0:
            drop_u = draws.drop if draws is not None else torch.rand(b, device=x1.device)
            keep = drop_u >= self.cfg.cond_drop_prob
            cond = cond * keep.view(b, 1, 1).to(cond.dtype)
        v = self.estimator(x_t * mask, mask, t, cond)
        return masked_mse(v, u_t, mask)

    def velocity(
        self, x: torch.Tensor, mask: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, guidance: float
    ) -> torch.Tensor:
        """The (guided) velocity at x [B, C, T] and scalar time t."""
        b = x.shape[0]
        if guidance == 0.0:
            return self.estimator(x, mask, t.expand(b), cond)
        # Conditional and unconditional fields in one batched call.
        v_cond, v_uncond = self.estimator(
            torch.cat([x, x]), torch.cat([mask, mask]), t.expand(2 * b), torch.cat([cond, torch.zeros_like(cond)])
        ).chunk(2)
        return (1.0 + guidance) * v_cond - guidance * v_uncond

    @torch.no_grad()
    def sample(
        self,
        x0: torch.Tensor,
        mask: torch.Tensor,
        cond: torch.Tensor,
        n_steps: int,
        solver: str = "euler",
        guidance: float = 0.0,
    ) -> torch.Tensor:
        """Transport noise x0 [B, C, T] to data: integrate the ODE over `n_steps` steps of the
        time schedule's grid. Returns x1 [B, C, T], zero on padding."""
        if n_steps < 1:
            raise ValueError(f"n_steps must be at least 1, got {n_steps}")
        u = torch.linspace(0.0, 1.0, n_steps + 1, device=x0.device)
        t_grid = warp_time(u, self.cfg.time_schedule)
        x1 = integrate(lambda t, x: self.velocity(x, mask, t, cond, guidance), x0 * mask, t_grid, solver)
        return x1 * mask
