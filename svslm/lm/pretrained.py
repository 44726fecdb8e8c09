"""A made-up "pretrained" LM in ESPnet-SpeechLM format, for the mini recipe and tests.

The real recipe starts from OpusLM_1.7B; the mini corpus cannot fetch it, so this builds a model
with the same conventions: ESPnet's 256-slot special block, the codec_ssl block with 1-based SSL
names, a text_bpe block, processed `token_bias`, 12 `head_emb` rows, and the backbone described by
an HF `config.json` (written to `hf_config/`). Stage 2's vocabulary extension and stage 3's
loading then run exactly the code a real checkpoint goes through.
"""
from __future__ import annotations

from svslm.lm.model import LMConfig, SpeechLM
from svslm.lm.sequence import SequenceConfig
from svslm.lm.vocab import N_SPECIAL, Vocabulary, special_tokens


def pretrained_token_list(codec_ssl_tokens: list[str], n_text_tokens: int) -> tuple[list[str], dict[str, int]]:
    """Specials + codec_ssl tokens + text tokens, and the raw token_bias of that list."""
    text = [f"<text_bpe_{i}>" for i in range(n_text_tokens)]
    token_list = special_tokens() + list(codec_ssl_tokens) + text
    raw = {"codec_ssl": N_SPECIAL}
    if n_text_tokens:
        raw["text_bpe"] = N_SPECIAL + len(codec_ssl_tokens)
    return token_list, raw


def make_pretrained(conf: LMConfig, codec_ssl_tokens: list[str], n_text_tokens: int, seed: int,
                    extra_tokens: dict[str, list[str]] | None = None) -> SpeechLM:
    """A randomly initialised model; `extra_tokens` appends modalities (e.g. svs_lb) as an extension would."""
    token_list, raw = pretrained_token_list(codec_ssl_tokens, n_text_tokens)
    for modality, tokens in (extra_tokens or {}).items():
        raw[modality] = len(token_list)
        token_list = token_list + list(tokens)
    vocab = Vocabulary(token_list, raw, source="made-up pretrained token list")
    model = SpeechLM(conf, vocab, hf_config=conf.hf_config(n_text_tokens))
    model.init_weights(seed)
    model.sequence = SequenceConfig(loss_region="whole")  # what a pretraining config.yaml holds
    return model
