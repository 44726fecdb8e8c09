"""Vocabulary extension of an ESPnet-SpeechLM checkpoint (a tiny one made here in that format)."""
from __future__ import annotations

import pytest
import torch
import yaml

from svslm.bin.extend_vocab import main as extend_main
from svslm.tokenize.extend_vocab import CheckpointError, extend_checkpoint

D = 8


def make_checkpoint(directory, token_list, rows=None):
    directory.mkdir(parents=True)
    g = torch.Generator().manual_seed(1)
    n = len(token_list) if rows is None else rows
    state = {
        "corelm.emb.weight": 3.0 + 0.5 * torch.randn(n, D, generator=g),
        "corelm.lm_head.weight": -1.0 + 2.0 * torch.randn(n, D, generator=g),
        "corelm.head_emb.weight": torch.randn(9, D, generator=g),
        "corelm.decoders.model.norm.weight": torch.ones(D),
    }
    torch.save(state, directory / "model.pth")
    config = {"token_list": token_list, "token_bias": {"ssl": 8, "codec": 10}, "corelm_conf": {"hidden_size": D, "nq": 9}}
    (directory / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return state


TOKENS = ["<pad>", "<unk>", "<sos/eos>", "<unused_token_3>", "<spk_start/end>", "<unused_token_5>",
          "<tts_task>", "<unused_token_7>", "<ssl_code0>", "<ssl_code1>"] + [f"<codec_layer{i}_code{j}>" for i in range(8) for j in range(2)]
SVS = ["svs_AP", "svs_SP", "svs_a"] + [f"svs_{m}" for m in range(128)]


def _load(directory):
    return yaml.safe_load((directory / "config.yaml").read_text()), torch.load(directory / "model.pth")


def test_markers_fill_reserved_slots_and_svs_tokens_are_appended(tmp_path):
    old = make_checkpoint(tmp_path / "pre", TOKENS)
    (tmp_path / "svs.txt").write_text("".join(t + "\n" for t in SVS))
    assert extend_main(["--pretrained_dir", str(tmp_path / "pre"), "--token_list", str(tmp_path / "svs.txt"),
                        "--out_dir", str(tmp_path / "out")]) == 0
    config, state = _load(tmp_path / "out")
    tokens = config["token_list"]
    # <spk_start/end> existed; the missing markers took the free slot after their kind's block
    assert tokens[5] == "<svs_lb_start/end>" and tokens[7] == "<svs_task>" and tokens[3] == "<unused_token_3>"
    unchanged = [i for i in range(len(TOKENS)) if i not in (5, 7)]
    assert [tokens[i] for i in unchanged] == [TOKENS[i] for i in unchanged]  # pretrained ids keep their tokens
    assert tokens[len(TOKENS):] == SVS
    assert config["token_bias"] == {"ssl": 8, "codec": 10, "svs_lb": len(TOKENS)}
    assert config["corelm_conf"] == {"hidden_size": D, "nq": 9}
    for key in ("corelm.emb.weight", "corelm.lm_head.weight"):
        assert state[key].shape == (len(tokens), D)
        torch.testing.assert_close(state[key][: len(TOKENS)], old[key])  # old rows untouched
        new = state[key][len(TOKENS):]
        # new rows follow the existing rows' distribution (emb ~ N(3, .5), head ~ N(-1, 2))
        assert abs(new.mean() - old[key].mean()) < 0.5 and 0.5 < new.std() / old[key].std() < 1.5
    torch.testing.assert_close(state["corelm.head_emb.weight"], old["corelm.head_emb.weight"])


def test_extension_is_seeded_and_idempotent(tmp_path):
    make_checkpoint(tmp_path / "pre", TOKENS)
    extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "a", seed=0)
    extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "b", seed=0)
    extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "c", seed=1)
    a, b, c = (_load(tmp_path / n)[1]["corelm.emb.weight"] for n in "abc")
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    summary = extend_checkpoint(tmp_path / "a", SVS, tmp_path / "again")  # everything already there
    assert summary["appended"] == 0 and _load(tmp_path / "again")[0] == _load(tmp_path / "a")[0]


def test_markers_are_appended_when_no_slot_is_free(tmp_path):
    make_checkpoint(tmp_path / "pre", [t for t in TOKENS if not t.startswith("<unused")])
    extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "out")
    tokens = _load(tmp_path / "out")[0]["token_list"]
    assert tokens[-len(SVS) - 2 : -len(SVS)] == ["<svs_lb_start/end>", "<svs_task>"]


def test_a_checkpoint_that_disagrees_with_its_token_list_is_refused(tmp_path):
    make_checkpoint(tmp_path / "pre", TOKENS, rows=len(TOKENS) + 2)
    with pytest.raises(CheckpointError, match=f"has {len(TOKENS) + 2} rows but config.yaml's token_list has {len(TOKENS)}"):
        extend_checkpoint(tmp_path / "pre", SVS, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(CheckpointError, match="nowhere: config.yaml is missing"):
        extend_checkpoint(tmp_path / "nowhere", SVS, tmp_path / "out")
