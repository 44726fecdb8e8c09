"""Training checkpoints: one layout and one resume rule for every training (flow, vocoder, LM,
CTC recogniser), the random-number state they carry, and the best-k weight snapshots.

Layout under a training's `checkpoints/` directory:

    step<N>/            one checkpoint, N = the training's position (optimizer steps; epochs for
                        the CTC recogniser)
      state.pt          the training's state (`save_state`), or a DeepSpeed engine's own files
      complete          written last (JSON: step, time): a directory without it was killed while
                        being written, is never resumed, and the next save removes it

Resuming takes the newest complete checkpoint; saving keeps the newest `keep` complete ones.
"""
from __future__ import annotations

import json
import logging
import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from svslm.utils.fileio import atomic_path, atomic_write_text

log = logging.getLogger("svslm")

MARKER = "complete"  # the file written last into a checkpoint directory
STATE_FILE = "state.pt"  # a plain (non-DeepSpeed) training's state inside step<N>/
_STEP_DIR = re.compile(r"^step(\d+)$")


class CheckpointDir:
    """The `step<N>/` checkpoints of one training; saving keeps the newest `keep` complete ones."""

    def __init__(self, root: str | Path, keep: int = 1):
        if keep < 1:
            raise ValueError(f"{root}: keep_checkpoints must be at least 1, got {keep}")
        self.root, self.keep = Path(root), keep

    def path(self, step: int) -> Path:
        return self.root / f"step{step}"

    def _all(self) -> list[tuple[int, Path]]:
        if not self.root.is_dir():
            return []
        return sorted((int(m.group(1)), p) for p in self.root.iterdir()
                      if p.is_dir() and (m := _STEP_DIR.match(p.name)))

    def complete(self) -> list[tuple[int, Path]]:
        """(step, directory) of the complete checkpoints, oldest first."""
        return [(s, p) for s, p in self._all() if (p / MARKER).is_file()]

    def incomplete(self) -> list[Path]:
        return [p for _, p in self._all() if not (p / MARKER).is_file()]

    def latest(self) -> Path | None:
        """The newest complete checkpoint (incomplete ones are reported and passed over)."""
        for path in self.incomplete():
            log.warning("ignoring incomplete checkpoint %s (no '%s' marker)", path, MARKER)
        found = self.complete()
        return found[-1][1] if found else None

    # ---- writing: begin (one process), the training's files (every process), finish (one process)
    def begin(self, step: int) -> Path:
        """An empty directory for checkpoint `step` (a leftover of a run killed while writing this
        very step is removed). Call on one process, before the others write into it."""
        target = self.path(step)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        return target

    def finish(self, step: int) -> None:
        """Mark checkpoint `step` complete, then remove the older checkpoints beyond `keep` and any
        incomplete leftover. Call on one process, after every process has written its files."""
        atomic_write_text(self.path(step) / MARKER, json.dumps({"step": step, "time": time.time()}) + "\n")
        for _, old in self.complete()[: -self.keep]:
            shutil.rmtree(old)
        for leftover in self.incomplete():
            shutil.rmtree(leftover)

    def save_state(self, step: int, state: dict[str, Any]) -> Path:
        """One process's whole training state as checkpoint `step`."""
        target = self.begin(step)
        with atomic_path(target / STATE_FILE) as tmp:
            torch.save(state, tmp)
        self.finish(step)
        return target

    def load_latest_state(self, map_location: str | torch.device = "cpu", weights_only: bool = True) -> dict | None:
        """The state of the newest complete checkpoint that loads; one that does not (a damaged
        disk) is reported and an older one tried."""
        for path in self.incomplete():
            log.warning("ignoring incomplete checkpoint %s (no '%s' marker)", path, MARKER)
        for _, path in reversed(self.complete()):
            try:
                return torch.load(path / STATE_FILE, map_location=map_location, weights_only=weights_only)
            except Exception as err:  # noqa: BLE001 -- torch.load raises many types for a damaged file
                log.warning("cannot load checkpoint %s (%s); trying an older one", path, err)
        return None


# ---- random-number state ---------------------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """This process's generators: Python's, NumPy's, torch's CPU one and (when present) CUDA's."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    # NumPy's key as a list: checkpoints load with weights_only=True, which refuses arrays.
    return {"python": random.getstate(), "numpy": (name, key.tolist(), pos, has_gauss, gauss),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any] | torch.Tensor) -> None:
    """Restore `rng_state()`'s result (a bare tensor: torch's CPU state alone, as older vocoder
    checkpoints hold)."""
    if isinstance(state, torch.Tensor):
        torch.set_rng_state(state.cpu())
        return
    random.setstate(_as_python_state(state["python"]))
    name, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _as_python_state(state) -> tuple:
    """random.getstate() comes back from torch.load (or JSON) with lists for tuples."""
    version, internal, gauss = state
    return version, tuple(internal), gauss


def restore_rng_per_rank(states: list, rank: int, world_size: int, seed: int, step: int) -> bool:
    """Each process continues its own random stream when `states` (one per process, as saved)
    come from a run of the same world size, and returns True; otherwise every stream starts anew
    from (seed, rank, step) and it returns False."""
    if len(states) == world_size:
        set_rng_state(states[rank])
        return True
    reseed = seed * 1000003 + rank * 7919 + step
    random.seed(reseed)
    np.random.seed(reseed % 2**32)
    torch.manual_seed(reseed)
    return False


# ---- best-k snapshots ------------------------------------------------------------------------------

class BestSnapshots:
    """The weights of the `k` best validations (lowest score), as `<directory>/step<N>.pth`.
    `ranking` ((score, step), best first) is the training's to keep in its own checkpoints."""

    def __init__(self, directory: str | Path, k: int, ranking: list[tuple[float, int]] | None = None):
        if k < 1:
            raise ValueError(f"{directory}: keep_best must be at least 1, got {k}")
        self.directory, self.k = Path(directory), k
        self.ranking = [tuple(r) for r in ranking or []]

    def path(self, step: int) -> Path:
        return self.directory / f"step{step}.pth"

    def offer(self, score: float, step: int, weights: Callable[[], dict[str, torch.Tensor]], write: bool = True) -> bool:
        """Rank the validation at `step`; when it is among the k best, save `weights()` (fp32, CPU)
        and drop the snapshot it displaces. `write` False (every process but one) only ranks.
        Returns whether it was kept."""
        ranked = sorted(self.ranking + [(score, step)])
        self.ranking, dropped = ranked[: self.k], ranked[self.k :]
        kept = (score, step) in self.ranking
        if write:
            if kept:
                with atomic_path(self.path(step)) as tmp:
                    torch.save({k: v.detach().float().cpu() for k, v in weights().items()}, tmp)
            for _, old in dropped:
                self.path(old).unlink(missing_ok=True)
        return kept

    def average(self, n: int | None = None) -> dict[str, torch.Tensor]:
        """The mean of the n best snapshots' weights (all kept ones when n is None)."""
        chosen = self.ranking[:n]
        if not chosen:
            raise RuntimeError(f"{self.directory}: no validation was run, so there is no best model")
        avg: dict[str, torch.Tensor] = {}
        for _, step in chosen:
            state = torch.load(self.path(step), map_location="cpu", weights_only=True)
            for name, value in state.items():
                avg[name] = avg.get(name, 0) + value / len(chosen)
        return avg
