"""The mini model zoo (local/mini_zoo): its script runs end to end on a toy corpus (so it cannot rot;
CI never re-runs the real pretraining), and the committed artefacts fit what the mini recipe
fine-tunes them with."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from local.mini.make_corpus import MiniCorpusConfig
from svslm.utils.config import load_config, to_dict
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.train import latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "local/mini_zoo"
TOY_CORPUS = {
    "seed": 9, "first_song": 3001, "train_songs": 1, "test_songs": 1, "phrases_per_train_song": 2,
    "phrases_per_test_song": 1, "dev_utts": 1, "min_phrase_seconds": 2.0, "max_phrase_seconds": 3.0,
    "singers": [{"singer": 101, "low_midi": 48, "high_midi": 67, "tract_scale": 0.9}],
}


@pytest.mark.slow
def test_zoo_script_runs_and_exports_a_vocoder_the_recipe_can_fine_tune(tmp_path):
    corpus = tmp_path / "toy_corpus.yaml"
    corpus.write_text(yaml.safe_dump(TOY_CORPUS))
    models = tmp_path / "models"
    cmd = [str(ZOO / "run.sh"), "--work_dir", str(tmp_path / "work"), "--models_dir", str(models),
           "--corpus_config", str(corpus), "--voc_steps", "2",
           "--vocoder_args", "--override train.batch_size=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    utts = [line.split()[0] for line in (tmp_path / "work/data/train/wav.scp").read_text().splitlines()]
    assert utts and all(u.startswith("acesinger_101#3001") for u in utts), utts  # the zoo's songs and voice

    ckpt = latest_checkpoint(models / "vocoder/checkpoints")
    assert ckpt is not None and ckpt.name == "checkpoint_2.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert "optim_g" not in state  # weights only: the zoo ships no optimiser state
    assert all(v.dtype == torch.float16 for v in state["generator"].values() if v.is_floating_point())
    # The exported weights are the trained run's, rounded to fp16.
    full = torch.load(latest_checkpoint(tmp_path / "work/vocoder/checkpoints"), map_location="cpu", weights_only=True)
    for name, value in full["generator"].items():
        torch.testing.assert_close(state["generator"][name].float(), value.float(), rtol=1e-3, atol=1e-4)

    # The recipe's fine-tuning config starts from the exported zoo vocoder (what run.sh's
    # --pretrained_vocoder passes) and trains on.
    ft = subprocess.run(
        ["python", "-m", "svslm.bin.vocoder_train", "--config", str(ROOT / "conf/vocoder/tiny_finetune.yaml"),
         "--data_dir", str(tmp_path / "work/data"), "--exp_dir", str(tmp_path / "ft"),
         "--override", f"train.init_from={models / 'vocoder'}", "train.max_steps=1", "train.batch_size=1"],
        check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert ft.returncode == 0, ft.stderr[-4000:]
    assert "initialised generator and discriminators from" in ft.stderr + ft.stdout
    assert (tmp_path / "ft/generator.pth").is_file()


def _committed_vocoder() -> dict:
    ckpt = latest_checkpoint(ZOO / "models/vocoder/checkpoints")
    if ckpt is None:
        pytest.fail("local/mini_zoo/models/vocoder has no checkpoint: run local/mini_zoo/run.sh")
    return torch.load(ckpt, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("config", ["tiny.yaml", "tiny_finetune.yaml"])
def test_committed_zoo_vocoder_matches_the_mini_recipe_configs(config):
    """run.sh fine-tunes the zoo vocoder with the mini configs: mel and geometry must agree,
    else stage 5 fails (mel) or the weights do not load (geometry)."""
    state = _committed_vocoder()
    assert all(v.dtype == torch.float16 for v in state["generator"].values() if v.is_floating_point())
    recipe = to_dict(load_config(ROOT / "conf/vocoder" / config, VocoderConfig))
    for section in ("mel", "generator", "discriminator"):
        assert state["config"][section] == recipe[section], section


def test_zoo_corpus_shares_no_song_and_no_singer_with_the_mini_corpus():
    mini = load_config(ROOT / "conf/data/mini_corpus.yaml", MiniCorpusConfig)
    zoo = load_config(ZOO / "conf/zoo_corpus.yaml", MiniCorpusConfig)
    mini_songs = set(range(mini.first_song, mini.first_song + mini.train_songs + mini.test_songs))
    zoo_songs = set(range(zoo.first_song, zoo.first_song + zoo.train_songs + zoo.test_songs))
    assert not mini_songs & zoo_songs
    assert not {s.singer for s in mini.singers} & {s.singer for s in zoo.singers}
    assert len(zoo.singers) >= 16
