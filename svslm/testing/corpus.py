"""A synthetic corpus (local/mini/make_corpus.py) through stage 1 as the recipe runs it.

Needs the repository checkout: it runs `local/mini/data.sh` (generation, then the real ACE-Opencpop
parser) the way run.sh's stage 1 does.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from svslm.utils.config import to_dict

ROOT = Path(__file__).resolve().parents[2]


def prepare_mini_corpus(work: Path, config, name: str = "corpus") -> Path:
    """Generate the corpus of `config` (a MiniCorpusConfig) under `work`/db and prepare it into
    `work`/data with one job; returns the data directory."""
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(to_dict(config)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run([str(ROOT / "local" / "mini" / "data.sh"), "--db_root", "db", "--data_dir", "data",
                    "--nj", "1", "--corpus_config", str(path)], cwd=work, env=env, check=True)
    return work / "data"
