"""The one way every stage picks its torch device.

Configs and `--device` options say `auto` (CUDA when this machine has it, else the CPU), or name a
device (`cpu`, `cuda`, `cuda:1`, ...). Asking for CUDA where there is none is an error that says
so, not a silent fall-back to the CPU.
"""
from __future__ import annotations

import torch

AUTO = "auto"


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """`auto` -> cuda when available, else cpu; any other name -> that device, checked. Under a
    launcher (`local_rank` given) a plain `cuda` is this process's GPU, cuda:<local_rank>."""
    if name == AUTO:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {name!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: this machine has no CUDA device (use device: auto or cpu)")
    if device.type == "cuda" and device.index is None and local_rank is not None:
        device = torch.device("cuda", local_rank)
    return device
