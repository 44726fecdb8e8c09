"""Vocabulary extension of an ESPnet-SpeechLM checkpoint, ESPnet's rules (the fixture test in
test_lm_espnet_fixture.py checks bit-exactness against ESPnet's own script)."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from svslm.bin.extend_vocab import main as extend_main
from svslm.lm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from svslm.lm.extend import ExtendConfig, extend_checkpoint
from svslm.lm.pretrained import make_pretrained
from svslm.lm.vocab import codec_ssl_tokens
from svslm.testing.lm import tiny_lm_config

SVS = ["svs_AP", "svs_SP", "svs_a", "<svs_placeholder>"] + [f"svs_{m}" for m in range(128)]


def make_checkpoint(directory, drop=()):
    model = make_pretrained(tiny_lm_config(), codec_ssl_tokens(4, 8, 2), 4, seed=1)
    with torch.no_grad():
        model.corelm.emb.weight.mul_(20.0).add_(3.0)  # tables far from N(0, 1): the inits differ visibly
    if drop:  # a token list whose special block lacks some markers (they become <unused_token_N>)
        tokens = [f"<unused_token_{i}>" if t in drop else t for i, t in enumerate(model.vocab.token_list)]
        model.vocab.token_list[:] = tokens
    save_checkpoint(model, directory)
    if drop:
        config = yaml.safe_load((directory / "config.yaml").read_text())
        config["token_list"] = tokens
        (directory / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return torch.load(directory / "model.pth", weights_only=True)


def _load(directory):
    return yaml.safe_load((directory / "config.yaml").read_text()), torch.load(directory / "model.pth", weights_only=True)


def test_svs_tokens_are_appended_and_old_rows_kept(tmp_path):
    old = make_checkpoint(tmp_path / "pre")
    (tmp_path / "svs.txt").write_text("".join(t + "\n" for t in SVS))
    assert extend_main(["--pretrained_dir", str(tmp_path / "pre"), "--token_list", str(tmp_path / "svs.txt"),
                        "--out_dir", str(tmp_path / "out")]) == 0
    config, state = _load(tmp_path / "out")
    n_old = old["corelm.emb.weight"].shape[0]
    tokens = config["token_list"]
    assert tokens[n_old:] == SVS and len(tokens) == n_old + len(SVS)
    assert config["token_bias"]["svs_lb"] == [n_old, n_old + len(SVS)]
    assert json.loads((tmp_path / "out/token_bias.json").read_text()) == {"codec_ssl": 256, "text_bpe": 256 + 20,
                                                                          "svs_lb": n_old}
    for key in ("corelm.emb.weight", "corelm.lm_head.weight"):
        assert torch.equal(state[key][:n_old], old[key])
    assert torch.equal(state["criterion.lm_head.weight"], state["corelm.lm_head.weight"])
    assert torch.equal(state["corelm.head_emb.weight"], old["corelm.head_emb.weight"])
    model = load_checkpoint(tmp_path / "out")  # the extended checkpoint loads with no stale alias
    assert not any("stale" in n for n in model.load_notes)


def test_missing_markers_take_espnets_reserved_slots(tmp_path):
    make_checkpoint(tmp_path / "pre", drop=("<svs_lb_start/end>", "<svs_task>"))
    summary = extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "out")
    tokens = _load(tmp_path / "out")[0]["token_list"]
    # the first free slot of 32..63 and of 64..127
    first_modality = next(i for i in range(32, 64) if tokens[i] == "<svs_lb_start/end>")
    first_task = next(i for i in range(64, 128) if tokens[i] == "<svs_task>")
    assert summary["renamed_slots"] == {"<svs_lb_start/end>": first_modality, "<svs_task>": first_task}
    assert first_modality == 41 and first_task == 77


def test_init_is_chosen_in_yaml_and_seeded(tmp_path):
    old = make_checkpoint(tmp_path / "pre")
    n_old = old["corelm.emb.weight"].shape[0]
    (tmp_path / "lm.yaml").write_text("extend: {init: row_stats, seed: 3}\n")
    (tmp_path / "svs.txt").write_text("".join(t + "\n" for t in SVS))
    args = ["--pretrained_dir", str(tmp_path / "pre"), "--token_list", str(tmp_path / "svs.txt")]
    assert extend_main(args + ["--out_dir", str(tmp_path / "stats"), "--config", str(tmp_path / "lm.yaml")]) == 0
    extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "espnet", ExtendConfig(init="espnet"))
    stats = _load(tmp_path / "stats")[1]["corelm.emb.weight"][n_old:]
    espnet = _load(tmp_path / "espnet")[1]["corelm.emb.weight"][n_old:]
    ref = old["corelm.emb.weight"][1:]
    assert abs(stats.mean() - ref.mean()) < 0.3 * ref.std()  # row_stats: at the old rows' scale
    assert abs(espnet.std() - torch.var(old["corelm.emb.weight"])) < 0.2 * torch.var(old["corelm.emb.weight"])
    extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "again", ExtendConfig(init="row_stats", seed=3))
    assert torch.equal(_load(tmp_path / "again")[1]["corelm.emb.weight"], _load(tmp_path / "stats")[1]["corelm.emb.weight"])


def test_bad_checkpoints_are_refused_with_a_reason(tmp_path):
    make_checkpoint(tmp_path / "pre")
    extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "a")
    # An already extended checkpoint (e.g. one the fork fine-tuned) passes through unchanged ...
    assert extend_checkpoint(tmp_path / "a", SVS, tmp_path / "b")["appended"] == 0
    assert _load(tmp_path / "b")[0]["token_list"] == _load(tmp_path / "a")[0]["token_list"]
    assert torch.equal(_load(tmp_path / "b")[1]["corelm.emb.weight"], _load(tmp_path / "a")[1]["corelm.emb.weight"])
    # ... unless it lacks some of the tokens: its block cannot grow.
    with pytest.raises(CheckpointError, match="svs_lb is already in the vocabulary .* lacks 1 of the tokens: .'svs_new'"):
        extend_checkpoint(tmp_path / "a", SVS + ["svs_new"], tmp_path / "c")
    state = torch.load(tmp_path / "pre/model.pth", weights_only=True)
    state["corelm.emb.weight"] = torch.cat([state["corelm.emb.weight"], state["corelm.emb.weight"][:2]])
    torch.save(state, tmp_path / "pre/model.pth")
    with pytest.raises(CheckpointError, match="corelm.emb.weight has 282 rows but .*token_list has 280 tokens"):
        extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(CheckpointError, match="nowhere: no such checkpoint"):
        extend_checkpoint(tmp_path / "nowhere", SVS, tmp_path / "out")
