"""bench/lm_condition_use.py: an LM that reads its score loses more with a wrong score; one that
does not (random weights) loses the same."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from svslm.lm.checkpoint import save_checkpoint
from svslm.lm.data import read_data_json
from svslm.lm.inference import load_lm
from svslm.lm.sequence import build_example, collate
from svslm.testing.lm import make_init_checkpoint, make_tiny_dump, tiny_lm_config

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "lm_condition_use.py"


def _bench():
    spec = importlib.util.spec_from_file_location("lm_condition_use", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pitch_shift_keeps_phones_and_rests_and_fit_keeps_the_frame_count():
    bench = _bench()
    lb = ["svs_SP", "svs_0", "svs_a", "svs_60", "svs_a", "svs_125"]
    assert bench.shift_pitch(lb, 5) == ["svs_SP", "svs_0", "svs_a", "svs_65", "svs_a", "svs_127"]
    assert bench.shift_pitch(lb, -61) == ["svs_SP", "svs_0", "svs_a", "svs_1", "svs_a", "svs_64"]
    assert bench.fit_frames(lb, 5) == lb + lb[:4]
    assert bench.fit_frames(lb, 2) == lb[:4]


@pytest.mark.slow
def test_a_score_reading_lm_shows_the_gap_and_a_random_one_does_not(tmp_path):
    """make_tiny_dump's targets are a function of the score (SSL from the phone, codec from the
    pitch), so an LM trained on them must read it; the same LM untrained cannot."""
    torch.manual_seed(0)
    paths = make_tiny_dump(tmp_path, n_train=8, n_dev=8)
    make_init_checkpoint(tmp_path / "init", tiny_lm_config(), 16, 8)
    model, vocab = load_lm(tmp_path / "init", "cpu")
    split = read_data_json(paths["train"])
    examples = [(u, *build_example(vocab, list(split.svs_lb[u]), split.prompt(u), split.target(u), u, model.sequence))
                for u in sorted(split.utt_ids)]
    batch = collate(examples, vocab.pad)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        loss, _ = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    save_checkpoint(model, tmp_path / "trained")

    bench = _bench()
    trained = {r["score"]: r for r in bench.condition_use(tmp_path / "trained", paths["train"], n_utts=8, offset=3)}
    random = {r["score"]: r for r in bench.condition_use(tmp_path / "init", paths["train"], n_utts=8, offset=3)}
    assert set(trained) == {"own", "other", "pitch+5", "pitch-5"}
    assert trained["other"]["loss"] > 1.8 * trained["own"]["loss"], trained  # 0.75 against 0.35 when written
    assert min(trained["pitch+5"]["loss"], trained["pitch-5"]["loss"]) > trained["own"]["loss"] + 0.08, trained
    assert trained["own"]["acc"][1] > trained["pitch+5"]["acc"][1] + 0.03  # codebook 1 follows the pitch
    assert abs(random["other"]["loss"] - random["own"]["loss"]) < 0.05, random
    # Per utterance: one line per utterance and condition, whose mean is the condition's line.
    lines = bench.condition_use(tmp_path / "trained", paths["train"], n_utts=8, offset=3, per_utterance=True)
    assert len(lines) == 8 * 4 and {line["frames"] for line in lines} == {len(split.svs_lb[u]) // 2 for u in split.utt_ids}
    own = [line["loss"] for line in lines if line["score"] == "own"]
    assert np.mean(own) == pytest.approx(trained["own"]["loss"], abs=1e-3)
