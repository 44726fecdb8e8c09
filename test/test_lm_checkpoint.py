"""ESPnet-SpeechLM checkpoints: what ESPnet writes loads (files, nestings, dtypes, aliases, HF
geometry), what svslm writes has ESPnet's conventions, and everything else is a clear error."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from svslm.bin import lm_make_pretrained
from svslm.lm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from svslm.lm.vocab import (
    Vocabulary,
    VocabularyError,
    codec_ssl_tokens,
    process_token_bias,
)

TINY_YAML = """
model: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2,
        intermediate_size: 64, rope_theta: 10000.0, max_position_embeddings: 512, nq: 9}
n_text_tokens: 4
"""


@pytest.fixture()
def pretrained(tmp_path: Path) -> Path:
    (tmp_path / "lm.yaml").write_text(TINY_YAML)
    (tmp_path / "codec_ssl.txt").write_text("\n".join(codec_ssl_tokens(10, 8, 4)) + "\n")
    out = tmp_path / "pretrained"
    rc = lm_make_pretrained.main(["--config", str(tmp_path / "lm.yaml"), "--token_list",
                                  str(tmp_path / "codec_ssl.txt"), "--out_dir", str(out)])
    assert rc == 0
    return out


def _edit(path: Path, edit) -> None:
    state = torch.load(path / "model.pth", weights_only=True)
    state = edit(state) or state
    torch.save(state, path / "model.pth")


def _edit_config(path: Path, edit) -> None:
    config = yaml.safe_load((path / "config.yaml").read_text())
    edit(config)
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_made_up_pretrained_has_espnets_conventions(pretrained: Path):
    config = yaml.safe_load((pretrained / "config.yaml").read_text())
    tokens = config["token_list"]
    assert tokens[0] == "<pad>" and tokens[5] == "<sos/eos>" and tokens[34] == "<codec_ssl_start/end>"
    assert tokens[41] == "<svs_lb_start/end>" and tokens[77] == "<svs_task>"  # speechlm2's special block
    assert tokens[256] == "<ssl_code1>" and tokens[265] == "<ssl_code10>"  # 1-based SSL names
    assert len(tokens) == 256 + 10 + 32 + 4
    assert config["token_bias"] == {"text_bpe": [298, 302], "special_token": [0, 256], "ssl": [256, 266],
                                    "codec": [266, 298]}  # processed lists, as ESPnet's trainer writes
    assert config["transformer"] == "huggingface" and config["transformer_conf"]["hf_model_tag"] == "hf_config"
    assert config["corelm"] == "ar_delay" and config["corelm_conf"] == {"share_emb": False}
    assert config["codec_token_in_use"] == 9
    hf = json.loads((pretrained / "hf_config/config.json").read_text())
    assert hf["model_type"] == "llama" and hf["hidden_size"] == 32 and hf["vocab_size"] == 4
    state = torch.load(pretrained / "model.pth", weights_only=True)
    assert state["corelm.emb.weight"].shape == (len(tokens), 32)
    assert state["corelm.head_emb.weight"].shape == (12, 32)  # speechlm2's 12 rows
    assert state["criterion.lm_head.weight"].data_ptr() == state["corelm.lm_head.weight"].data_ptr()
    assert "corelm.decoders.model.layers.0.self_attn.q_proj.weight" in state
    assert not any("embed_tokens" in k or "rotary" in k for k in state)
    assert state["corelm.emb.weight"][0].abs().sum() == 0  # <pad> row


def test_round_trip_keeps_weights_vocab_and_outputs(pretrained: Path, tmp_path: Path):
    model = load_checkpoint(pretrained)
    with torch.no_grad():
        model.corelm.head_emb.weight.add_(1.0)
    save_checkpoint(model, tmp_path / "again")
    again = load_checkpoint(tmp_path / "again")
    assert again.vocab.token_list == model.vocab.token_list
    assert again.token_bias["text_bpe"] == [298, 302]
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    x = torch.randint(0, len(model.vocab), (1, 5, 9))
    assert torch.allclose(model.hidden(x)[0], again.hidden(x)[0])


@pytest.mark.parametrize("name", ["valid.acc.ave.pth", "3epoch.pth"])
@pytest.mark.parametrize("nest", [None, "model", "module"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_espnet_file_names_nestings_and_dtypes_load(pretrained: Path, name, nest, dtype):
    reference = load_checkpoint(pretrained).state_dict()
    state = {k: v.to(dtype) for k, v in torch.load(pretrained / "model.pth", weights_only=True).items()}
    (pretrained / "model.pth").unlink()
    torch.save({nest: state} if nest else state, pretrained / name)
    for path in (pretrained, pretrained / name):  # a directory or the weights file itself
        model = load_checkpoint(path)
        for k, v in reference.items():
            assert torch.equal(model.state_dict()[k], v.to(dtype).float()), k
        notes = " ".join(model.load_notes)
        assert (f"nested under '{nest}'" in notes) == bool(nest)
        assert ("computed in float32" in notes) == (dtype != torch.float32)


def test_head_emb_with_nq_rows_and_stale_criterion_alias(pretrained: Path):
    def edit(state):
        state["corelm.head_emb.weight"] = state["corelm.head_emb.weight"][:9].clone()  # ESPnet master: nq rows
        state["criterion.lm_head.weight"] = state["corelm.lm_head.weight"][:-3].clone()  # stale, as after extension
    _edit(pretrained, edit)
    model = load_checkpoint(pretrained)
    assert model.corelm.head_emb.weight.shape == (9, 32)
    assert any("stale copy" in n for n in model.load_notes)


def test_a_differing_criterion_alias_is_an_error(pretrained: Path):
    _edit(pretrained, lambda s: s.__setitem__("criterion.lm_head.weight", s["corelm.lm_head.weight"] + 1))
    with pytest.raises(CheckpointError, match="criterion.lm_head.weight differs"):
        load_checkpoint(pretrained)


def test_errors_name_missing_unexpected_and_mismatched_keys(pretrained: Path):
    def edit(state):
        del state["corelm.decoders.model.norm.weight"]
        state["corelm.extra.weight"] = torch.zeros(1)
        state["corelm.decoders.model.layers.0.mlp.up_proj.weight"] = torch.zeros(65, 32)

    _edit(pretrained, edit)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(pretrained)
    msg = str(err.value)
    assert "missing keys (1): ['corelm.decoders.model.norm.weight']" in msg
    assert "unexpected keys (1): ['corelm.extra.weight']" in msg
    assert "corelm.decoders.model.layers.0.mlp.up_proj.weight: checkpoint (65, 32) vs model (64, 32)" in msg


def test_vocabulary_size_must_match_token_list(pretrained: Path):
    _edit_config(pretrained, lambda c: c["token_list"].append("<extra>"))
    with pytest.raises(CheckpointError, match="corelm.emb.weight has 302 rows but token_list has 303"):
        load_checkpoint(pretrained)


def test_geometry_comes_from_the_hf_config_never_from_defaults(pretrained: Path, tmp_path: Path, monkeypatch):
    # A transformers 4.x config.json (rope_theta at the top level) gives the same model.
    hf = json.loads((pretrained / "hf_config/config.json").read_text())
    v4 = {k: v for k, v in hf.items() if k != "rope_parameters"} | {"rope_theta": 10000.0, "torch_dtype": "bfloat16",
                                                                  "transformers_version": "4.46.0"}
    (pretrained / "hf_config/config.json").write_text(json.dumps(v4))
    model = load_checkpoint(pretrained)
    assert model.corelm.decoders.model.config.rope_parameters["rope_theta"] == 10000.0
    assert all(p.dtype == torch.float32 for p in model.parameters())  # not config.json's bfloat16
    stored = torch.load(pretrained / "model.pth", weights_only=True)
    key = "corelm.decoders.model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(model.state_dict()[key], stored[key])  # not rounded through bfloat16
    # A hub tag is read from the local HF cache; without it the error says what to download.
    tag = "HuggingFaceTB/SmolLM2-tiny"
    _edit_config(pretrained, lambda c: c["transformer_conf"].__setitem__("hf_model_tag", tag))
    shutil.rmtree(pretrained / "hf_config")
    monkeypatch.chdir(tmp_path)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(CheckpointError, match=r"huggingface-cli download HuggingFaceTB/SmolLM2-tiny config.json"):
        load_checkpoint(pretrained)
    snap = tmp_path / "hub/models--HuggingFaceTB--SmolLM2-tiny/snapshots/abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(hf))
    (tmp_path / "hub/models--HuggingFaceTB--SmolLM2-tiny/refs").mkdir()
    (tmp_path / "hub/models--HuggingFaceTB--SmolLM2-tiny/refs/main").write_text("abc123")
    model = load_checkpoint(pretrained)
    assert any("local HF cache" in n for n in model.load_notes)
    # A relative directory is also looked up from the working directory, as ESPnet does.
    (tmp_path / "backbone").mkdir()
    (tmp_path / "backbone/config.json").write_text(json.dumps(hf | {"hidden_size": 48}))
    _edit_config(pretrained, lambda c: c["transformer_conf"].__setitem__("hf_model_tag", "backbone"))
    with pytest.raises(CheckpointError, match="32 wide but the HF config's hidden_size is 48"):
        load_checkpoint(pretrained)
    _edit_config(pretrained, lambda c: c["transformer_conf"].pop("hf_model_tag"))
    with pytest.raises(CheckpointError, match="hf_model_tag is missing"):
        load_checkpoint(pretrained)


def test_token_bias_forms_and_token_names():
    tokens = ["<pad>", "<sos/eos>"] + codec_ssl_tokens(3, 2, 2) + ["a", "b"]
    raw = {"codec_ssl": 2, "text_bpe": 9}
    processed = process_token_bias(raw, tokens)
    assert processed == {"text_bpe": [9, 11], "special_token": [0, 2], "ssl": [2, 5], "codec": [5, 9]}
    assert process_token_bias(processed, tokens) == processed
    with pytest.raises(VocabularyError, match="mixes start offsets and"):
        process_token_bias({"codec_ssl": 2, "text_bpe": [9, 11]}, tokens)
    v = Vocabulary(tokens, raw)
    frames = np.array([[2, 1, 0], [0, 0, 1]])
    assert v.local_to_vocab(frames, "x").tolist() == [[4, 6, 7], [0, 5, 8]]  # SSL id 0 -> <pad>, as ESPnet
    assert v.local_to_vocab(frames, "x", "token").tolist() == [[4, 6, 7], [2, 5, 8]]
    zero_based = ["<pad>", "<sos/eos>", "<ssl_code0>", "<ssl_code1>", "<codec_layer0_code0>"]
    with pytest.raises(VocabularyError, match="1-based"):
        Vocabulary(zero_based)
    with pytest.raises(VocabularyError, match="token_bias ssl is"):
        Vocabulary(tokens, {**processed, "ssl": [3, 5]})
