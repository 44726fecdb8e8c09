"""The multi-stream speech LM: ESPnet-SpeechLM's ARDelayLM with a HuggingFace decoder body.

Module names follow ESPnet, so the state dict reads `corelm.emb.weight`, `corelm.lm_head.weight`,
`corelm.head_emb.weight` and `corelm.decoders.model.*` (the HF body without its own token table):

    inputs [B, L, nq] --emb, summed over streams--> [B, L, D] --HF body--> h [B, L, D]
    stream n logits = lm_head(h + head_emb[n])   (one shared head, a learned offset per stream)

The body is built from the HF config that the checkpoint's `transformer_conf.hf_model_tag` names
(svslm.lm.checkpoint resolves it); `LMConfig` describes a made-up Llama for the mini recipe.
The loss is ESPnet's `SpeechLMCrossEntropyLoss` (see `SpeechLM.forward`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig

from svslm.lm.vocab import Vocabulary

HEAD_EMB_ROWS = 12  # speechlm2 allocates 12 per-stream offsets whatever nq is (master: nq)


@dataclass
class LMConfig:
    """Geometry of a made-up Llama backbone (mini recipe, tests); written as its HF config.json."""

    hidden_size: int = 2048  # model width D
    num_hidden_layers: int = 24  # decoder layers
    num_attention_heads: int = 32  # query heads
    num_key_value_heads: int = 32  # key/value heads (fewer = grouped-query attention)
    intermediate_size: int = 8192  # SwiGLU FFN width
    rope_theta: float = 130000.0  # rotary embedding base (SmolLM2-1.7B)
    max_position_embeddings: int = 8192  # longest sequence the rotary table is built for
    rms_norm_eps: float = 1e-5  # RMSNorm epsilon
    nq: int = 9  # streams per frame: 1 SSL + 8 codec

    def hf_config(self, n_text_tokens: int = 32) -> dict:
        """The HF `config.json` of this geometry (a Llama whose vocabulary is the text block)."""
        return {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers, "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads, "intermediate_size": self.intermediate_size,
            "head_dim": self.hidden_size // self.num_attention_heads, "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings, "rms_norm_eps": self.rms_norm_eps,
            "rope_parameters": {"rope_theta": self.rope_theta, "rope_type": "default"},
            "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": True,
            "vocab_size": n_text_tokens, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": None,
        }


@dataclass
class LossConfig:
    """ESPnet's criterion settings (config.yaml `modality_weights`, `loss_type`)."""

    modality_weights: dict[str, float] = field(default_factory=lambda: {
        "g2p": 1.0, "ssl": 0.5, "codec": 0.0625, "text_bpe": 1.0, "special_token": 10.0})  # per token_bias range; others 1
    loss_type: str = "mean"  # mean: sum of weighted CE / stream-0 loss tokens; sum: the sum


def hf_backbone_config(hf_config: dict, attn_implementation: str) -> PretrainedConfig:
    """A transformers config from a `config.json` dict (4.x and 5.x layouts)."""
    data = dict(hf_config)
    model_type = data.pop("model_type", None)
    if model_type is None:
        raise ValueError("HF config.json has no model_type")
    config = AutoConfig.for_model(model_type, **data)
    config._attn_implementation = attn_implementation
    return config


class HFBackbone(nn.Module):
    """Holds the HF body as `.model`, ESPnet's HFTransformerDecoder layout."""

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        # float32 whatever config.json's (torch_)dtype says (SmolLM2's is bfloat16): the stored
        # weights are used as they are, as ESPnet's training path does.
        self.model = AutoModel.from_config(config, attn_implementation=config._attn_implementation, dtype=torch.float32)
        self.model.embed_tokens = None  # inputs arrive as embeddings (ESPnet's init_embeddings removes it)


class CoreLM(nn.Module):
    def __init__(self, config: PretrainedConfig, vocab_size: int, head_rows: int):
        super().__init__()
        D = config.hidden_size
        self.decoders = HFBackbone(config)
        self.emb = nn.Embedding(vocab_size, D, padding_idx=0)  # ESPnet: <pad> (id 0) gets no gradient
        self.lm_head = nn.Linear(D, vocab_size, bias=False)
        self.head_emb = nn.Embedding(head_rows, D)


class SpeechLM(nn.Module):
    """Forward = ESPnet's training loss; `hidden`/`stream_logits` are the pieces decoding uses."""

    def __init__(
        self,
        conf: LMConfig | None,
        vocab: Vocabulary,
        loss: LossConfig | None = None,
        attn_implementation: str = "sdpa",
        hf_config: dict | None = None,
        head_rows: int = HEAD_EMB_ROWS,
    ):
        super().__init__()
        if hf_config is None:
            if conf is None:
                raise ValueError("SpeechLM needs an HF config or an LMConfig")
            hf_config = conf.hf_config()
        nq = vocab.nq if conf is None else conf.nq
        if vocab.nq != nq:
            raise ValueError(f"{vocab.source} has {vocab.nq} streams of tokens but the model has nq = {nq}")
        if head_rows < nq:
            raise ValueError(f"head_emb has {head_rows} rows, fewer than nq = {nq}")
        self.hf_config = dict(hf_config)
        config = hf_backbone_config(hf_config, attn_implementation)
        self.nq = nq
        self.vocab = vocab
        self.loss_conf = loss or LossConfig()
        self.corelm = CoreLM(config, len(vocab), head_rows)
        self.config_yaml: dict = {}  # the ESPnet config.yaml this model was read from (kept on save)

    @property
    def conf(self) -> LMConfig:
        """The backbone geometry in LMConfig terms (for logs and callers that size things)."""
        c = self.corelm.decoders.model.config
        return LMConfig(c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
                        getattr(c, "num_key_value_heads", c.num_attention_heads), c.intermediate_size,
                        float((getattr(c, "rope_parameters", None) or {}).get("rope_theta", getattr(c, "rope_theta", 0.0))),
                        c.max_position_embeddings, getattr(c, "rms_norm_eps", 0.0), self.nq)

    @property
    def token_bias(self) -> dict[str, list[int]]:
        return self.vocab.token_bias

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

    def all_logits(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """inputs [B, L, nq] -> logits [B, L, nq, V] of every stream (ESPnet's forward + lm_head)."""
        h, _ = self.hidden(inputs, attention_mask)
        h = h.unsqueeze(2) + self.corelm.head_emb.weight[: self.nq]
        return self.corelm.lm_head(h).float()

    def forward(
        self,
        inputs: torch.Tensor,
        attention_mask: torch.Tensor,
        targets: torch.Tensor,
        loss_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """ESPnet's SpeechLMCrossEntropyLoss on delayed inputs/targets [B, L, nq].

        Stream 0: CE over the whole vocabulary; streams 1..nq-1: CE over the codec interval (all
        codebooks together). Each term is weighted by its target's class weight (modality_weights
        over the token_bias ranges), targets outside the loss mask or equal to <pad> drop out, and
        the sum is divided by the number of stream-0 loss tokens (loss_type mean)."""
        h, _ = self.hidden(inputs, attention_mask)
        pad = self.vocab.pad
        weight = self.vocab.class_weights(self.loss_conf.modality_weights).to(h.device)
        targets = torch.where(loss_mask.bool(), targets, pad)
        head = self.corelm.lm_head.weight
        c0, c1 = self.vocab.codec_range
        total = h.new_zeros((), dtype=torch.float32)
        stats: dict[str, torch.Tensor] = {}
        for n in range(self.nq):
            t_n = targets[..., n]
            sel = t_n != pad if n == 0 else (t_n >= c0) & (t_n < c1)
            if not sel.any():
                continue
            h_n = h[sel] + self.corelm.head_emb.weight[n]
            if n == 0:
                logits, t, w = F.linear(h_n, head).float(), t_n[sel], weight
            else:
                logits, t, w = F.linear(h_n, head[c0:c1]).float(), t_n[sel] - c0, weight[c0:c1]
            ce = F.cross_entropy(logits, t, weight=w, reduction="none")
            total = total + ce.sum()
            stats[f"ce_stream{n}"] = (ce.sum() / w[t].sum()).detach()
            stats[f"acc_stream{n}"] = (logits.argmax(-1) == t).float().mean().detach()
        n_tokens = loss_mask[..., 0].sum().float()
        loss = total / n_tokens.clamp(min=1) if self.loss_conf.loss_type == "mean" else total
        stats["loss"] = loss.detach()
        return loss, stats
