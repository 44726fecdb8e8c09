"""The one checkpoint manager (svslm.utils.checkpoint) every training uses."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from svslm.utils.checkpoint import (
    BestSnapshots,
    CheckpointDir,
    restore_rng_per_rank,
    rng_state,
    set_rng_state,
)


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rotation_keeps_the_newest_complete_checkpoints_and_clears_leftovers(tmp_path):
    ckpts = CheckpointDir(tmp_path, keep=2)
    (tmp_path / "step9").mkdir()  # killed while writing step 9: no marker
    for step in (1, 2, 3):
        ckpts.save_state(step, {"step": step})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step2", "step3"]
    assert sorted(p.name for p in (tmp_path / "step3").iterdir()) == ["complete", "state.pt"]
    ckpts.begin(4)  # killed again, after the engine wrote part of step 4
    (tmp_path / "step4" / "state.pt").write_bytes(b"half")
    assert ckpts.latest() == tmp_path / "step3"  # newest *complete*, not newest
    assert CheckpointDir(tmp_path).load_latest_state()["step"] == 3


def test_a_damaged_checkpoint_is_passed_over_for_an_older_one(tmp_path, caplog):
    ckpts = CheckpointDir(tmp_path, keep=3)
    for step in (1, 2):
        ckpts.save_state(step, {"step": step})
    (tmp_path / "step2" / "state.pt").write_bytes(b"not a torch file")
    with caplog.at_level("WARNING"):
        assert ckpts.load_latest_state()["step"] == 1
    assert "cannot load checkpoint" in caplog.text and "step2" in caplog.text
    assert CheckpointDir(tmp_path / "none").load_latest_state() is None


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    CheckpointDir(tmp_path).save_state(1, {"rng": rng_state()})
    expected = _draws()
    set_rng_state(CheckpointDir(tmp_path).load_latest_state()["rng"])  # weights_only=True
    assert _draws() == expected


def test_rng_continues_per_rank_and_starts_anew_for_another_world_size():
    torch.manual_seed(5)
    states = [rng_state(), None]
    expected = _draws()
    assert restore_rng_per_rank(states, rank=0, world_size=2, seed=3, step=10)
    assert _draws() == expected
    assert not restore_rng_per_rank(states, rank=0, world_size=1, seed=3, step=10)
    fresh = _draws()
    restore_rng_per_rank(states, rank=0, world_size=1, seed=3, step=10)
    assert _draws() == fresh != expected  # a function of (seed, rank, step)
    assert restore_rng_per_rank([torch.get_rng_state()], 0, 1, 3, 10)  # a bare tensor: older vocoders'


def test_best_snapshots_keep_the_k_lowest_and_average_them(tmp_path):
    best = BestSnapshots(tmp_path, k=2)
    for step, loss, w in ((1, 3.0, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (4, 5.0, 8.0)):
        best.offer(loss, step, lambda w=w: {"w": torch.tensor([w], dtype=torch.float16)})
    assert best.ranking == [(1.0, 2), (2.0, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step2.pth", "step3.pth"]
    assert best.average()["w"].item() == 3.0 and best.average()["w"].dtype == torch.float32
    assert best.average(1)["w"].item() == 2.0
    assert not BestSnapshots(tmp_path, 2, best.ranking).offer(9.0, 5, dict)  # ranks, writes nothing
    with pytest.raises(RuntimeError, match="no validation"):
        BestSnapshots(tmp_path / "x", 1).average()
