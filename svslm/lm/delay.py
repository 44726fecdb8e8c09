"""Delay interleave of multi-stream tokens (MusicGen's "delay" pattern, ESPnet-SpeechLM ARDelayLM).

Stream n is shifted right by n frames, so when the LM predicts position t it has already seen
streams 0..n-1 of the same frame: the SSL token conditions the first codebook, which conditions the
second, and so on, at the cost of nq - 1 extra positions. Unlike ESPnet's version we keep those
nq - 1 tail positions instead of truncating them, so the inverse is exact.
"""
from __future__ import annotations

import torch


def delay_interleave(x: torch.Tensor, pad: int | bool) -> torch.Tensor:
    """[..., T, nq] -> [..., T + nq - 1, nq]: out[..., t + n, n] = x[..., t, n], the rest `pad`."""
    *lead, T, nq = x.shape
    out = x.new_full((*lead, T + nq - 1, nq), pad)
    for n in range(nq):
        out[..., n : n + T, n] = x[..., :, n]
    return out


def inverse_delay_interleave(y: torch.Tensor) -> torch.Tensor:
    """[..., T + nq - 1, nq] -> [..., T, nq]; exact inverse of `delay_interleave`."""
    nq = y.shape[-1]
    T = y.shape[-2] - nq + 1
    if T < 0:
        raise ValueError(f"a delayed sequence needs at least {nq - 1} positions, got {y.shape[-2]}")
    return torch.stack([y[..., n : n + T, n] for n in range(nq)], dim=-1)
