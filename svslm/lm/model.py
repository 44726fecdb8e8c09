"""The multi-stream speech LM: a decoder-only Llama backbone over summed stream embeddings.

Module names follow ESPnet-SpeechLM's ARDelayLM with a HuggingFace body, so that a state dict
reads `corelm.emb.weight`, `corelm.lm_head.weight`, `corelm.head_emb.weight` and
`corelm.decoders.model.*` (the LlamaModel without its own token embedding):

    inputs [B, L, nq] --emb, sum over streams--> [B, L, D] --Llama--> h [B, L, D]
    stream n logits = lm_head(h + head_emb[n])   (one shared head, a learned offset per stream)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaConfig, LlamaModel

from svslm.lm.vocab import Vocabulary


@dataclass
class LMConfig:
    """Backbone geometry; stored as `corelm_conf` in the checkpoint's config.yaml."""

    hidden_size: int = 2048  # model width D
    num_hidden_layers: int = 24  # Llama decoder layers
    num_attention_heads: int = 32  # query heads
    num_key_value_heads: int = 32  # key/value heads (fewer = grouped-query attention)
    intermediate_size: int = 8192  # SwiGLU FFN width
    rope_theta: float = 130000.0  # rotary embedding base (SmolLM2-1.7B)
    max_position_embeddings: int = 8192  # longest sequence the rotary table is built for
    rms_norm_eps: float = 1e-5  # RMSNorm epsilon
    nq: int = 9  # streams per frame: 1 SSL + 8 codec


@dataclass
class LossConfig:
    ssl_weight: float = 0.5  # weight of stream 0's mean CE (over the whole vocabulary)
    codec_weight: float = 0.0625  # weight of each codec stream's mean CE (over the codec range)


class HFBackbone(nn.Module):
    """Holds the LlamaModel as `.model`, ESPnet's HFTransformerDecoder layout."""

    def __init__(self, conf: LMConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        config = LlamaConfig(
            vocab_size=1,  # unused: token embedding lives in corelm.emb
            bos_token_id=None,  # token ids are looked up in the svslm vocabulary, not here
            eos_token_id=None,
            pad_token_id=None,
            hidden_size=conf.hidden_size,
            num_hidden_layers=conf.num_hidden_layers,
            num_attention_heads=conf.num_attention_heads,
            num_key_value_heads=conf.num_key_value_heads,
            intermediate_size=conf.intermediate_size,
            rope_theta=conf.rope_theta,
            max_position_embeddings=conf.max_position_embeddings,
            rms_norm_eps=conf.rms_norm_eps,
            attn_implementation=attn_implementation,
        )
        self.model = LlamaModel(config)
        self.model.embed_tokens = None  # inputs arrive as embeddings; keeps the state dict ESPnet's


class CoreLM(nn.Module):
    def __init__(self, conf: LMConfig, vocab_size: int, pad: int, attn_implementation: str = "sdpa"):
        super().__init__()
        D = conf.hidden_size
        self.decoders = HFBackbone(conf, attn_implementation)
        self.emb = nn.Embedding(vocab_size, D, padding_idx=pad)  # <pad> streams add nothing
        self.lm_head = nn.Linear(D, vocab_size, bias=False)
        self.head_emb = nn.Embedding(conf.nq, D)


class SpeechLM(nn.Module):
    """Forward = training loss; `hidden`/`stream_logits` are the pieces decoding uses."""

    def __init__(
        self,
        conf: LMConfig,
        vocab: Vocabulary,
        loss: LossConfig | None = None,
        attn_implementation: str = "sdpa",
    ):
        super().__init__()
        if vocab.nq != conf.nq:
            raise ValueError(f"{vocab.source} has {vocab.nq} streams of tokens but corelm_conf.nq = {conf.nq}")
        self.conf = conf
        self.vocab = vocab
        self.loss_conf = loss or LossConfig()
        self.corelm = CoreLM(conf, len(vocab), vocab.pad, attn_implementation)
        self.token_bias: dict = vocab.token_bias()  # written to config.yaml on save
        # Codec streams are scored within the codec rows of the head only (ESPnet's aux interval):
        # cheaper than the full vocabulary, and a codec position can only hold a codec token.
        codec_rows = torch.from_numpy(vocab.codec_vocab_ids)
        vocab_to_codec = torch.full((len(vocab),), -1, dtype=torch.long)
        vocab_to_codec[codec_rows] = torch.arange(len(codec_rows))
        self.register_buffer("codec_rows", codec_rows, persistent=False)
        self.register_buffer("vocab_to_codec", vocab_to_codec, persistent=False)

    def init_weights(self, seed: int, std: float = 0.02) -> None:
        """Random initialisation (a stand-in pretrained model); <pad> embedding stays zero."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() >= 2:
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
            self.corelm.emb.weight[self.vocab.pad].zero_()

    def hidden(
        self,
        inputs: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache=None,
    ) -> tuple[torch.Tensor, object]:
        """inputs int64 [B, L, nq] -> backbone output [B, L, D] (and the updated KV cache)."""
        x = self.corelm.emb(inputs).sum(dim=2)  # [B, L, D]
        out = self.corelm.decoders.model(
            inputs_embeds=x,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=cache is not None,
        )
        return out.last_hidden_state, out.cache

    def stream_logits(self, h: torch.Tensor, stream: int, rows: torch.Tensor | None = None) -> torch.Tensor:
        """h [..., D] -> logits [..., V] (or [..., len(rows)]) of one stream, in float32."""
        h = h + self.corelm.head_emb.weight[stream]
        weight = self.corelm.lm_head.weight if rows is None else self.corelm.lm_head.weight[rows]
        return F.linear(h, weight).float()

    def forward(
        self,
        inputs: torch.Tensor,
        attention_mask: torch.Tensor,
        targets: torch.Tensor,
        loss_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted CE over the target region; stats hold per-stream CE and accuracy.

        Each stream's CE is a mean over its own target tokens, then weighted (ssl 0.5, codec
        0.0625 each), so the weights mean what they say whatever the target lengths.
        """
        h, _ = self.hidden(inputs, attention_mask)
        loss = h.new_zeros((), dtype=torch.float32)
        stats: dict[str, torch.Tensor] = {}
        for n in range(self.conf.nq):
            sel = loss_mask[..., n]  # [B, L]
            h_n, t_n = h[sel], targets[..., n][sel]  # [M, D], [M]
            if n == 0:
                logits = self.stream_logits(h_n, 0)
                weight = self.loss_conf.ssl_weight
            else:
                logits = self.stream_logits(h_n, n, self.codec_rows)
                t_n = self.vocab_to_codec[t_n]
                weight = self.loss_conf.codec_weight
            if len(t_n) == 0:
                continue
            ce = F.cross_entropy(logits, t_n)
            loss = loss + weight * ce
            stats[f"ce_stream{n}"] = ce.detach()
            stats[f"acc_stream{n}"] = (logits.argmax(-1) == t_n).float().mean().detach()
        stats["loss"] = loss.detach()
        return loss, stats
