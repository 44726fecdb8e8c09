"""Resumable shards: a stage's per-utterance arrays written in shards of sorted keys, each shard a
kaldiio ark + scp (and optional side files: `<key> <value>` maps), so a killed stage redoes only
the shards it had not finished. Stage 2 (tokenizing) and stage 3 (LM decoding) write theirs so.

Files of shard k in `directory`: `<stem>.<k>.ark`, `<stem>.<k>.scp` and `<name>.<k>` for each side
file. The side files are renamed into place first and the scp last, so an scp means a whole
shard; a shard is finished when its files exist and its scp (with the keys its `failures` side
file lists as left out) covers exactly the shard's keys: shards cut from other keys or another
shard size are done again, not taken as finished.
"""
from __future__ import annotations

import os
from pathlib import Path

import kaldiio
import numpy as np

from svslm.utils.fileio import atomic_path, read_kaldi_map, write_kaldi_map


def write_ark_scp(ark: Path, scp: Path, arrays: dict[str, np.ndarray]) -> None:
    """kaldiio ark + scp, both renamed into place, the scp last (so an scp means a complete ark)."""
    ark.parent.mkdir(parents=True, exist_ok=True)
    tmp_ark = ark.with_name(f".{ark.name}.{os.getpid()}.tmp")
    try:
        with atomic_path(scp) as tmp_scp:
            kaldiio.save_ark(str(tmp_ark), {k: arrays[k] for k in sorted(arrays)}, scp=str(tmp_scp),
                             write_function="numpy")
            # kaldiio wrote the temporary ark's name into the scp: point it at the final name
            lines = tmp_scp.read_text(encoding="utf-8").splitlines()
            tmp_scp.write_text(
                "".join(f"{line.split(maxsplit=1)[0]} {ark}:{line.rsplit(':', 1)[1]}\n" for line in lines),
                encoding="utf-8",
            )
            os.replace(tmp_ark, ark)
    finally:
        tmp_ark.unlink(missing_ok=True)


class Shards:
    """`keys` (sorted here) cut into shards of `size`, written under `directory` as `stem`."""

    def __init__(self, directory: str | Path, stem: str, keys: list[str], size: int,
                 side_files: tuple[str, ...] = (), failures: str | None = None):
        if size < 1:
            raise ValueError(f"{directory}: shard size must be at least 1, got {size}")
        if failures is not None and failures not in side_files:
            raise ValueError(f"failures side file {failures!r} is not one of {side_files}")
        self.directory, self.stem = Path(directory), stem
        self.side_files, self.failures = side_files, failures
        keys = sorted(keys)
        self.units = [keys[i:i + size] for i in range(0, len(keys), size)]

    def __len__(self) -> int:
        return len(self.units)

    def ark(self, k: int) -> Path:
        return self.directory / f"{self.stem}.{k}.ark"

    def scp(self, k: int) -> Path:
        return self.directory / f"{self.stem}.{k}.scp"

    def side_file(self, name: str, k: int) -> Path:
        return self.directory / f"{name}.{k}"

    def done(self, k: int) -> bool:
        files = [self.ark(k), self.scp(k)] + [self.side_file(n, k) for n in self.side_files]
        if not all(p.is_file() for p in files):
            return False
        covered = set(read_kaldi_map(self.scp(k)))
        if self.failures is not None:
            covered |= set(read_kaldi_map(self.side_file(self.failures, k)))
        return covered == set(self.units[k])

    def write(self, k: int, arrays: dict[str, np.ndarray], side: dict[str, dict[str, str]] | None = None) -> None:
        """Shard k's arrays and side files (every one of `side_files`, possibly empty maps)."""
        side = side or {}
        if set(side) != set(self.side_files):
            raise ValueError(f"shard {k} of {self.directory}/{self.stem}: side files {sorted(side)}, "
                             f"expected {sorted(self.side_files)}")
        for name, mapping in side.items():
            write_kaldi_map(self.side_file(name, k), {u: v.replace("\n", " ") for u, v in mapping.items()})
        write_ark_scp(self.ark(k), self.scp(k), arrays)

    def merged(self, name: str | None = None) -> dict[str, str]:
        """Every shard's scp lines (`name` None) or side file `name`, in one map."""
        out: dict[str, str] = {}
        for k in range(len(self)):
            path = self.scp(k) if name is None else self.side_file(name, k)
            if not self.done(k):
                raise FileNotFoundError(f"{path}: shard {k} of {len(self)} is not finished; run the stage again")
            out.update(read_kaldi_map(path))
        return out
