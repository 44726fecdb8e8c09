"""DeepSpeed fine-tuning on CPU, in-process: loss falls, best/ is written, an interrupted run
resumes at the right step with the same state, and a non-finite loss stops with a clear message."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

from svslm.lm.checkpoint import load_checkpoint
from svslm.testing.lm import make_init_checkpoint, make_tiny_dump, tiny_lm_config

DEEPSPEED_JSON = Path(__file__).resolve().parents[1] / "conf" / "deepspeed" / "cpu.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Tiny data + init checkpoint, and a one-process torch.distributed environment."""
    pytest.importorskip("deepspeed")
    root = tmp_path_factory.mktemp("lm_train")
    paths = make_tiny_dump(root, n_train=8, n_dev=4)
    make_init_checkpoint(root / "init", tiny_lm_config(), 16, 8)
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    (root / "lm.yaml").write_text(
        f"sequence:\n  speaker_prompt_length: 10\n"
        f"train:\n  deepspeed_config: {DEEPSPEED_JSON}\n  lr: 3.0e-3\n  max_epochs: 3\n  batch_bins: 360\n"
        f"  grad_accum: 2\n  valid_interval: 2\n  log_interval: 1\n  keep_best: 2\n  keep_checkpoints: 2\n"
    )
    yield root, paths
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _train(root, paths, exp, overrides=()):
    from svslm.lm.train import train

    return train(root / "lm.yaml", root / "init", paths["train"], paths["dev"], exp, list(overrides))


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_training_resume_and_best(setup, monkeypatch):
    from svslm.lm import train as train_mod

    root, paths = setup
    # Reference: one uninterrupted run (4 batches/epoch, grad_accum 2 -> 6 optimizer steps).
    best = _train(root, paths, root / "full")
    ckpts = sorted(p.name for p in (root / "full" / "checkpoints").glob("step*"))
    assert ckpts == ["step4", "step6"]  # keep_checkpoints: 2
    history = torch.load(root / "full" / "checkpoints" / "step6" / "mp_rank_00_model_states.pt",
                         weights_only=False)["train_state"]["history"]
    assert [h["step"] for h in history] == [2, 4, 6]
    assert history[-1]["loss"] < history[0]["loss"]  # validation loss falls
    assert all(f"acc_stream{n}" in history[-1] for n in range(9))
    model = load_checkpoint(best)  # best/ is a loadable ESPnet-format checkpoint
    assert len(model.state_dict()) > 0
    full_final = torch.load(root / "full" / "snapshots" / "step6.pth")

    # Interrupted run: killed during step 5's forward, after the step-4 checkpoint was complete;
    # a half-written step-6 directory (no marker) must not be taken.
    calls = {"n": 0}
    real_batch = train_mod.Trainer._batch

    def killing_batch(self, dataset, utts):
        if dataset is self.train_set:
            calls["n"] += 1
            if calls["n"] == 9:  # micro-batch 9 = the first of step 5
                raise Interrupted()
        return real_batch(self, dataset, utts)

    monkeypatch.setattr(train_mod.Trainer, "_batch", killing_batch)
    with pytest.raises(Interrupted):
        _train(root, paths, root / "resumed")
    monkeypatch.setattr(train_mod.Trainer, "_batch", real_batch)
    ckpt = root / "resumed" / "checkpoints"
    assert sorted(p.name for p in ckpt.glob("step*")) == ["step2", "step4"]
    (ckpt / "step6").mkdir()
    (ckpt / "step6" / "mp_rank_00_model_states.pt").write_bytes(b"half written")

    resumed_steps = []
    real_resume = train_mod.Trainer.resume

    def recording_resume(self):
        ok = real_resume(self)
        resumed_steps.append((ok, self.state.step, self.state.epoch, self.state.batch_pos))
        return ok

    monkeypatch.setattr(train_mod.Trainer, "resume", recording_resume)
    _train(root, paths, root / "resumed")
    assert resumed_steps == [(True, 4, 1, 4)]  # step 4 closes the 2nd epoch (index 1) after its 4 batches
    resumed_final = torch.load(root / "resumed" / "snapshots" / "step6.pth")
    for k, v in full_final.items():
        assert torch.allclose(v, resumed_final[k], atol=1e-6), k

    # Re-running a finished stage only rewrites best/.
    _train(root, paths, root / "resumed")
    assert resumed_steps[-1][:2] == (True, 6)


@pytest.mark.slow
def test_non_finite_loss_stops_with_a_message(setup):
    from svslm.lm.train import NonFiniteLossError

    root, paths = setup
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 0, epoch 1, utterances \['spk"):
        _train(root, paths, root / "nan", ["loss.modality_weights.ssl=.nan"])


@pytest.mark.slow
def test_non_finite_loss_can_skip_the_batch(setup, monkeypatch):
    from svslm.lm.model import SpeechLM

    root, paths = setup
    real_forward = SpeechLM.forward
    calls = {"n": 0}

    def one_nan(self, *args):
        loss, stats = real_forward(self, *args)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 3:
                return loss * float("nan"), stats
        return loss, stats

    monkeypatch.setattr(SpeechLM, "forward", one_nan)
    best = _train(root, paths, root / "skip", ["train.nan_policy=skip"])
    state = torch.load(root / "skip" / "checkpoints" / "step6" / "mp_rank_00_model_states.pt", weights_only=False)
    assert state["train_state"]["skipped_batches"] == 1 and state["train_state"]["step"] == 6
    assert all(torch.isfinite(v).all() for v in load_checkpoint(best).state_dict().values())


@pytest.mark.slow
def test_patience_stops_when_validation_stops_improving(setup, monkeypatch):
    """train.patience: after that many validations without a new best loss the run stops early
    and best/ averages the best kept snapshots, as at the planned end."""
    from svslm.lm import train as train_mod

    root, paths = setup
    losses = iter([3.0, 2.0, 2.5, 2.6, 1.0])  # validations at steps 2, 4, 6 (two without a new best), ...
    real_validate = train_mod.Trainer.validate

    def scripted_validate(self):
        result = real_validate(self)
        result["loss"] = next(losses)
        return result

    monkeypatch.setattr(train_mod.Trainer, "validate", scripted_validate)
    _train(root, paths, root / "patience", ["train.patience=1", "train.max_epochs=5", "train.keep_best=1"])
    state = torch.load(root / "patience" / "checkpoints" / "step6" / "mp_rank_00_model_states.pt", weights_only=False)
    assert [h["step"] for h in state["train_state"]["history"]] == [2, 4, 6]  # stopped at 6 of 10 steps
    assert not (root / "patience" / "checkpoints" / "step8").exists()
    assert sorted(p.name for p in (root / "patience" / "snapshots").glob("*.pth")) == ["step4.pth"]
    assert (root / "patience" / "best" / "model.pth").is_file()


@pytest.mark.parametrize("name, stage, fp16", [("paper_zero2_fp16.json", 2, True), ("cpu.json", 1, False)])
def test_deepspeed_configs_parse_with_yaml_values(setup, name, stage, fp16):
    from deepspeed.runtime.config import DeepSpeedConfig

    from svslm.lm.config import LMRecipeConfig
    from svslm.lm.train import resolve_deepspeed_config
    from svslm.utils.config import load_config

    conf_dir = DEEPSPEED_JSON.parents[1]
    yaml_path = conf_dir / "lm" / ("paper.yaml" if fp16 else "tiny.yaml")
    conf = load_config(yaml_path, LMRecipeConfig)
    assert (yaml_path.parent / conf.train.deepspeed_config).resolve() == conf_dir / "deepspeed" / name
    ds = DeepSpeedConfig(resolve_deepspeed_config(conf, yaml_path, 1000, 1))
    assert ds.zero_optimization_stage == stage and ds.float16_config.enabled == fp16
    assert ds.gradient_accumulation_steps == conf.train.grad_accum and ds.gradient_clipping == 1.0
    assert ds.scheduler_name == "WarmupCosineLR" and ds.scheduler_params["total_num_steps"] == 1000
    assert ds.optimizer_params["lr"] == conf.train.lr  # one home for the learning rate: the YAML
    if fp16:
        assert ds.float16_config.loss_scale == 0  # dynamic loss scaling
        assert ds.zero_config.contiguous_gradients and ds.zero_config.overlap_comm
    else:
        assert ds.optimizer_params["torch_adam"]


def test_learning_rate_has_one_home_and_geometry_must_agree(setup, tmp_path):
    import json

    from svslm.lm.config import LMRecipeConfig
    from svslm.lm.train import check_geometry, resolve_deepspeed_config
    from svslm.utils.config import load_config

    root, _ = setup
    ds_json = json.loads(DEEPSPEED_JSON.read_text())
    ds_json["optimizer"]["params"]["lr"] = 1e-3
    (tmp_path / "ds.json").write_text(json.dumps(ds_json))
    (tmp_path / "lm.yaml").write_text("train: {deepspeed_config: ds.json, lr: 2.0e-3}\n")
    conf = load_config(tmp_path / "lm.yaml", LMRecipeConfig)
    with pytest.raises(ValueError, match="optimizer lr 0.001 differs from train.lr 0.002"):
        resolve_deepspeed_config(conf, tmp_path / "lm.yaml", 10, 1)
    conf = load_config(tmp_path / "lm.yaml", LMRecipeConfig, ["train.lr=null"])
    assert resolve_deepspeed_config(conf, tmp_path / "lm.yaml", 10, 1)["optimizer"]["params"]["lr"] == 1e-3
    conf = load_config(root / "lm.yaml", LMRecipeConfig, ["train.lr=null"])
    with pytest.raises(ValueError, match='optimizer lr is "auto" and .* sets no train.lr'):
        resolve_deepspeed_config(conf, root / "lm.yaml", 10, 1)
    model = load_checkpoint(root / "init")
    conf = load_config(root / "lm.yaml", LMRecipeConfig, ["model={hidden_size: 64}"])
    with pytest.raises(ValueError, match="hidden_size: .* says 64, checkpoint has 32"):
        check_geometry(conf, model, root / "init", root / "lm.yaml")
