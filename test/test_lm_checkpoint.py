"""ESPnet-SpeechLM checkpoint format: make, save, load round trip and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from svslm.bin import lm_make_pretrained
from svslm.lm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from svslm.lm.fixtures import codec_ssl_tokens

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


def test_make_pretrained_writes_espnet_format(pretrained: Path):
    config = yaml.safe_load((pretrained / "config.yaml").read_text())
    tokens = config["token_list"]
    for name in ["<pad>", "<unk>", "<sos/eos>", "<codec_ssl_start/end>", "<spk_start/end>", "<tts_task>", "<unused_token_200>"]:
        assert name in tokens
    assert tokens[0] == "<pad>" and len(tokens) == 256 + 10 + 32 + 4
    assert config["token_bias"] == {"ssl": 256, "codec": 266, "text_bpe": 298}
    assert config["corelm_conf"]["hidden_size"] == 32 and config["corelm_conf"]["nq"] == 9
    state = torch.load(pretrained / "model.pth")
    assert state["corelm.emb.weight"].shape == (len(tokens), 32)
    assert state["corelm.lm_head.weight"].shape == (len(tokens), 32)
    assert state["corelm.head_emb.weight"].shape == (9, 32)
    assert "corelm.decoders.model.layers.0.self_attn.q_proj.weight" in state
    assert "corelm.decoders.model.norm.weight" in state
    assert not any("embed_tokens" in k for k in state)
    assert state["corelm.emb.weight"][0].abs().sum() == 0  # <pad> row


def test_round_trip_keeps_weights_vocab_and_outputs(pretrained: Path, tmp_path: Path):
    model = load_checkpoint(pretrained)
    with torch.no_grad():
        model.corelm.head_emb.weight.add_(1.0)
    save_checkpoint(model, tmp_path / "again")
    again = load_checkpoint(tmp_path / "again")
    assert again.vocab.token_list == model.vocab.token_list
    assert again.token_bias["text_bpe"] == 298  # kept although svslm cannot derive it
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    x = torch.randint(0, len(model.vocab), (1, 5, 9))
    assert torch.allclose(model.hidden(x)[0], again.hidden(x)[0])


def _edit_state(path: Path, edit) -> None:
    state = torch.load(path / "model.pth")
    edit(state)
    torch.save(state, path / "model.pth")


def test_errors_name_missing_unexpected_and_mismatched_keys(pretrained: Path):
    def edit(state):
        del state["corelm.decoders.model.norm.weight"]
        state["corelm.extra.weight"] = torch.zeros(1)
        state["corelm.decoders.model.layers.0.mlp.up_proj.weight"] = torch.zeros(65, 32)

    _edit_state(pretrained, edit)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(pretrained)
    msg = str(err.value)
    assert "missing keys (1): ['corelm.decoders.model.norm.weight']" in msg
    assert "unexpected keys (1): ['corelm.extra.weight']" in msg
    assert "corelm.decoders.model.layers.0.mlp.up_proj.weight: checkpoint (65, 32) vs model (64, 32)" in msg


def test_vocabulary_size_must_match_token_list(pretrained: Path):
    config = yaml.safe_load((pretrained / "config.yaml").read_text())
    config["token_list"].append("<extra>")
    (pretrained / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(CheckpointError, match="corelm.emb.weight has 302 rows but token_list has 303"):
        load_checkpoint(pretrained)


def test_espnet_twelve_head_emb_rows_are_accepted(pretrained: Path):
    _edit_state(pretrained, lambda s: s.__setitem__("corelm.head_emb.weight", torch.randn(12, 32)))
    model = load_checkpoint(pretrained)
    assert model.corelm.head_emb.weight.shape == (9, 32)
