"""svslm against ESPnet's own outputs: the golden data in shared/fixtures/espnet_speechlm/.

Walks the fixture README's "How to test a loader": tensors as stored, the vocabulary extension,
the svs sequence and loss mask, logits, loss and greedy decoding. The fixture directory is
`<repo>/../shared/fixtures` (CI clones shared/ beside the repository) or /work/shared/fixtures;
a missing fixture is a failure, not a skip.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from svslm.lm.checkpoint import load_checkpoint, save_checkpoint
from svslm.lm.extend import extend_checkpoint, read_token_list
from svslm.lm.inference import greedy_frames
from svslm.lm.sequence import build_example, build_prefix, collate

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [REPO.parent / "shared" / "fixtures" / "espnet_speechlm", Path("/work/shared/fixtures/espnet_speechlm")]


def fixture_dir() -> Path:
    for cand in CANDIDATES:
        if (cand / "README.md").is_file():
            return cand
    pytest.fail(f"ESPnet-SpeechLM fixture not found at any of {[str(c) for c in CANDIDATES]}")


@pytest.fixture(scope="module")
def fx() -> Path:
    return fixture_dir()


@pytest.fixture(scope="module")
def example(fx):
    inputs = json.loads((fx / "example/inputs.json").read_text())
    expected = json.loads((fx / "example/expected.json").read_text())
    model = load_checkpoint(fx / "extended/model.pth", config=fx / "example/config.yaml").eval()
    return model, inputs, expected


def _build(model, inputs, target=None, prompt=None):
    return build_example(model.vocab, inputs["label"].split(), np.array(prompt or inputs["prompt_local"]),
                         np.array(target or inputs["target_local"]), inputs["uid"], model.sequence)


def test_pretrained_tensors_come_out_as_stored(fx):
    model = load_checkpoint(fx / "pretrained")
    stored = torch.load(fx / "pretrained/model.pth", weights_only=True)
    own = model.state_dict()
    assert set(own) == set(stored) - {"criterion.lm_head.weight"}
    for key, value in stored.items():
        if not key.startswith("criterion."):
            assert torch.equal(own[key], value), key
    config = model.corelm.decoders.model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads,
            config.intermediate_size) == (32, 2, 4, 2, 64)
    assert config.rope_parameters["rope_theta"] == 130000.0
    assert model.vocab.token_bias == {"text_bpe": [336, 368], "special_token": [0, 256], "ssl": [256, 272],
                                      "codec": [272, 336]}
    assert model.vocab.ssl_start == 256 and model.vocab.codec_start == 272


def test_extension_equals_espnet_script(fx, tmp_path):
    summary = extend_checkpoint(fx / "pretrained", read_token_list(fx / "extended/svs_lb_tokens.txt"), tmp_path / "ext")
    assert json.loads((tmp_path / "ext/token_list.json").read_text()) == json.loads((fx / "extended/token_list.json").read_text())
    assert json.loads((tmp_path / "ext/token_bias.json").read_text()) == json.loads((fx / "extended/token_bias.json").read_text())
    assert summary["renamed_slots"] == {}
    ours = torch.load(tmp_path / "ext/model.pth", weights_only=True)
    theirs = torch.load(fx / "extended/model.pth", weights_only=True)
    shapes = json.loads((fx / "extended/state_dict_shapes.json").read_text())
    for key, info in shapes.items():
        if not key.startswith("criterion."):
            assert list(ours[key].shape) == list(info["shape"] if isinstance(info, dict) else info), key
            assert torch.equal(ours[key], theirs[key]), key  # old rows untouched, new rows bit-exact
    new = np.load(fx / "extended/new_rows.npy")
    assert np.array_equal(ours["corelm.emb.weight"][368:].numpy(), new[0])
    assert np.array_equal(ours["corelm.lm_head.weight"][368:].numpy(), new[1])
    # What svslm writes ESPnet reads back: processed token_bias lists, a current criterion alias.
    config = yaml.safe_load((tmp_path / "ext/config.yaml").read_text())
    assert all(isinstance(v, list) for v in config["token_bias"].values())
    assert config["token_bias"]["svs_lb"] == [368, 387]
    assert torch.equal(ours["criterion.lm_head.weight"], ours["corelm.lm_head.weight"])


def test_sequence_and_loss_mask_equal_espnet(example, fx):
    model, inputs, _ = example
    seq, mask = _build(model, inputs)
    assert np.array_equal(seq, np.load(fx / "example/dec_seq.npy"))
    assert np.array_equal(mask.astype(np.int64), np.load(fx / "example/loss_mask.npy"))
    prefix = build_prefix(model.vocab, inputs["label"].split(), np.array(inputs["prompt_local"]), "example", model.sequence)
    assert np.array_equal(prefix, np.load(fx / "example/prefill.npy"))
    batch = collate([("example", seq, mask)], model.vocab.pad)
    assert np.array_equal(batch.inputs[0].numpy(), np.load(fx / "example/delayed_input.npy"))
    assert np.array_equal(batch.targets[0].numpy(), np.load(fx / "example/delayed_target.npy"))
    assert np.array_equal(batch.loss_mask[0].numpy().astype(np.int64), np.load(fx / "example/delayed_target_loss_mask.npy"))


def test_logits_and_loss_equal_espnet(example, fx):
    model, inputs, expected = example
    x = torch.from_numpy(np.load(fx / "example/delayed_input.npy"))[None]
    with torch.no_grad():
        logits = model.all_logits(x)[0].numpy()
    golden = np.load(fx / "example/logits.npy")
    assert logits.shape == golden.shape
    assert np.abs(logits - golden).max() <= 1e-4
    seq, mask = _build(model, inputs)
    batch = collate([("example", seq, mask)], model.vocab.pad)
    with torch.no_grad():
        loss, _ = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
    assert abs(loss.item() - expected["loss"]["value"]) <= 1e-4 * expected["loss"]["value"]


def test_ssl_id0_quirk_reproduced(example, fx):
    model, inputs, _ = example
    quirk = json.loads((fx / "example/ssl_code0_quirk/expected.json").read_text())
    seq, mask = _build(model, inputs, quirk["target_local"], quirk["prompt_local"])
    assert np.array_equal(seq, np.load(fx / "example/ssl_code0_quirk/dec_seq.npy"))
    assert np.array_equal(mask.astype(np.int64), np.load(fx / "example/ssl_code0_quirk/loss_mask.npy"))
    batch = collate([("quirk", seq, mask)], model.vocab.pad)
    with torch.no_grad():
        loss, _ = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
    assert abs(loss.item() - quirk["loss"]) <= 1e-4 * quirk["loss"]


def test_greedy_decode_equals_espnet(example, fx):
    model, _, expected = example
    greedy = expected["greedy"]
    prefix = np.load(fx / "example/prefill.npy")
    frames = greedy_frames(model, prefix, len(greedy["full_frames_global"]))
    assert frames.tolist() == greedy["full_frames_global"]
    assert frames[: greedy["espnet_returned_frames"]].tolist() == greedy["frames_global"]


def test_saved_checkpoint_reloads_identically(example, tmp_path):
    model = example[0]
    save_checkpoint(model, tmp_path / "again")
    again = load_checkpoint(tmp_path / "again").eval()
    assert again.sequence == model.sequence and again.vocab.token_bias == model.vocab.token_bias
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    config = yaml.safe_load((tmp_path / "again/config.yaml").read_text())
    for key in ("token_list", "token_bias", "transformer", "transformer_conf", "corelm", "corelm_conf",
                "codec_token_in_use", "modality_weights", "model", "model_conf", "collect_stats", "init"):
        assert key in config, key
    state = torch.load(tmp_path / "again/model.pth", weights_only=True)
    assert torch.equal(state["criterion.lm_head.weight"], state["corelm.lm_head.weight"])


def test_lm_probe_reproduces_the_fixture(fx, tmp_path, capsys):
    from svslm.cli import main as cli

    expected = json.loads((fx / "example/expected.json").read_text())
    assert cli(["lm-probe", str(fx / "extended/model.pth"), "--config", str(fx / "example/config.yaml"),
                "--out_dir", str(tmp_path), "--inputs", str(fx / "example/inputs.json"), "--greedy_frames", "12"]) == 0
    printed = capsys.readouterr().out
    assert "ssl            [256, 272)  <ssl_code1> .. <ssl_code16>" in printed
    assert "stale copy" in printed and "head_emb has 12 rows" in printed
    assert np.array_equal(np.load(tmp_path / "sequence.npy"), np.load(fx / "example/dec_seq.npy"))
    assert np.abs(np.load(tmp_path / "logits.npy") - np.load(fx / "example/logits.npy")).max() <= 1e-4
    probe = json.loads((tmp_path / "probe.json").read_text())
    assert abs(probe["loss"] - expected["loss"]["value"]) <= 1e-4 * expected["loss"]["value"]
    assert probe["greedy_frames_global"] == expected["greedy"]["full_frames_global"]
    assert cli(["lm-probe", str(fx / "extended/model.pth"), "--config", str(fx / "example/config.yaml"),
                "--out_dir", str(tmp_path / "d"), "--delayed_input", str(fx / "example/delayed_input.npy")]) == 0
    assert np.abs(np.load(tmp_path / "d/logits.npy") - np.load(fx / "example/logits.npy")).max() <= 1e-4
