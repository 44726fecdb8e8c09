"""One way to pick a device in every stage: `auto` = CUDA when present (svslm.utils.device)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from svslm.utils.device import resolve_device

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_auto_is_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0")


def _devices(node, where=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "device":
                yield where + k, v
            else:
                yield from _devices(v, f"{where}{k}.")


@pytest.mark.parametrize("path", sorted(str(p.relative_to(CONF)) for sub in ("flow", "infer", "vocoder")
                                        for p in (CONF / sub).glob("*.yaml")))
def test_every_stage_config_says_auto(path):
    """The paper route once decoded and inferred on the CPU of a GPU node (device: cpu)."""
    found = dict(_devices(yaml.safe_load((CONF / path).read_text())))
    assert found and set(found.values()) == {"auto"}, found


def test_lm_decode_defaults_to_auto(monkeypatch, tmp_path):
    from svslm.bin import lm_decode
    from svslm.lm import inference

    seen = {}

    def fake_load_lm(model_dir, device):
        seen["device"] = device
        raise SystemExit(0)

    monkeypatch.setattr(inference, "load_lm", fake_load_lm)
    # One utterance left to decode, so the model is loaded (it is loaded only when a shard is left).
    monkeypatch.setattr(inference, "read_data_json", lambda *a, **k: type("Split", (), {"utt_ids": ["u1"]})())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(SystemExit):
        lm_decode.main(["--config", str(CONF / "decode/paper.yaml"), "--model_dir", "m", "--data_json", "d",
                        "--out_dir", str(tmp_path), "--override", "batch_size=2"])
    assert seen["device"] == "cuda"
