"""Atomic writes and Kaldi-style text files.

Every file a stage writes goes to a temporary name in the same directory and is renamed into
place, so a killed stage never leaves a half-written output that a re-run would take as done.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj, indent: int | None = 1) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


def atomic_save_npy(path: str | Path, array) -> None:
    """np.save to `path` atomically (np.save on a bare name would append `.npy` to the temp file)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def append_jsonl(path: str | Path, obj) -> None:
    """Append `obj` to `path` as one JSON line (benchmarks' result files collect several runs' lines)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj) + "\n")


def read_kaldi_map(path: str | Path) -> dict[str, str]:
    """Read `<key> <value...>` lines (wav.scp, utt2spk, text, ...) in file order.

    A line without a value or a repeated key is an error naming the file and line.
    """
    path = Path(path)
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected '<key> <value>', got {line!r}")
            key, value = parts
            if key in out:
                raise ValueError(f"{path}:{lineno}: key '{key}' appears twice")
            out[key] = value
    return out


def write_kaldi_map(path: str | Path, mapping: dict[str, str], sort: bool = True) -> None:
    """Write `<key> <value>` lines atomically, sorted by key as Kaldi tools expect."""
    keys = sorted(mapping) if sort else list(mapping)
    atomic_write_text(path, "".join(f"{k} {mapping[k]}\n" for k in keys))
