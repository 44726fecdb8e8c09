"""ESPnet-SpeechLM's vocabulary: token names, blocks and `token_bias` (docs/formats.md).

Every special token, modality and task marker is found by its name in the checkpoint's
`token_list` (ESPnet's convention), never by a hard-coded index. The blocks:

- special tokens 0..255 (espnet2/speechlm/definitions.py): general specials from 0, modality
  markers `<m_start/end>` from 32, task markers `<t_task>` from 64, the rest `<unused_token_N>`;
- codec_ssl: `<ssl_code1>`..`<ssl_codeN>` (1-based: k-means id k is `<ssl_code{k+1}>`), then
  `<codec_layer{i}_code{j}>` = codec start + i * codebook_size + j;
- text_bpe, svs_lb (`svs_<phone>`, `svs_<midi>`, `<svs_placeholder>`), ... as `token_bias` says.

`token_bias` comes in two forms: raw start offsets (`{"codec_ssl": 256, "text_bpe": 336}`, what
ESPnet's token-list and extension scripts write) and processed `[start, end]` ranges (what its
trainer writes into config.yaml). `process_token_bias` turns the first into the second as
ESPnet's `SpeechLMTask.process_token_bias` does; svslm always writes the processed form.
"""
from __future__ import annotations

import re
from typing import Literal

import numpy as np
import torch

SSL_TOKEN = re.compile(r"<ssl_code(\d+)>$")
CODEC_TOKEN = re.compile(r"<codec_layer(\d+)_code(\d+)>$")
N_SPECIAL = 256  # ESPnet reserves 256 special-token slots
MODALITY_SLOTS = (32, 64)  # <m_start/end> markers live here
TASK_SLOTS = (64, 128)  # <t_task> markers live here (128..255 reserved for the future)

# espnet2/speechlm/definitions.py (branch speechlm2): the names of the special block.
GENERAL_SPECIALS = ["<pad>", "<unk>", "<blank>", "<space>", "<continuous_placeholder>", "<sos/eos>",
                    "<local_sos/eos>", "<unkown_task_identifer>", "<system_prompt>", "<user_input>",
                    "<assistant_output>", "<eou>"]
MODALITIES = ["codec", "ssl", "codec_ssl", "text_bpe", "g2p", "spk", "class", "bool", "video_ssl", "svs_lb",
              "image", "wav", "text_emb", "ssl_feat", "dialogue"]
TASKS = ["textlm", "audiolm", "ssl_audiolm", "tts", "ssl_tts", "bpe_tts", "asr", "ssl_asr", "mt", "text2audio",
         "visual_tts", "vc", "ssl2codec", "svs", "st", "se", "codec_ssl_asr", "codec_ssl_tts",
         "codec_ssl_plain_tts", "codec_ssl_audiolm", "codec_ssl_se", "codec_ssl_tse", "aac_codecssl",
         "ag_codecssl", "text_dialogue", "audio_dialogue", "vision_dialogue", "image_to_text", "text_to_image"]
SVS_PLACEHOLDER = "<svs_placeholder>"  # the fork layout's separator between phones: not a frame


class VocabularyError(ValueError):
    """A token list that lacks a token the LM needs, or a token outside the list."""


def special_tokens() -> list[str]:
    """The 256-slot special block of ESPnet-SpeechLM (speechlm2's definitions.py)."""
    tokens = list(GENERAL_SPECIALS)

    def fill(until: int) -> None:
        tokens.extend(f"<unused_token_{i}>" for i in range(len(tokens), until))

    fill(MODALITY_SLOTS[0])
    tokens += [f"<{m}_start/end>" for m in MODALITIES]
    fill(TASK_SLOTS[0])
    tokens += [f"<{t}_task>" for t in TASKS]
    fill(N_SPECIAL)
    return tokens


def codec_ssl_tokens(ssl_vocab: int, n_codebooks: int, codebook_size: int) -> list[str]:
    """The codec_ssl block as ESPnet names it: 1-based SSL tokens, then the codebooks."""
    return [f"<ssl_code{k + 1}>" for k in range(ssl_vocab)] + [
        f"<codec_layer{i}_code{j}>" for i in range(n_codebooks) for j in range(codebook_size)
    ]


def process_token_bias(token_bias: dict, token_list: list[str], where: str = "token_bias") -> dict[str, list[int]]:
    """Raw start offsets -> processed `[start, end]` ranges, as ESPnet's `process_token_bias`.

    A dict whose values are all ranges is returned as it is; a mix of ints and ranges is what
    ESPnet cannot read either, and is an error here."""
    if not isinstance(token_bias, dict) or not token_bias:
        raise VocabularyError(f"{where}: expected a non-empty mapping, got {token_bias!r}")
    is_range = [isinstance(v, (list, tuple)) for v in token_bias.values()]
    if all(is_range):
        out = {}
        for k, v in token_bias.items():
            if len(v) != 2 or not all(isinstance(x, int) for x in v) or not 0 <= v[0] <= v[1] <= len(token_list):
                raise VocabularyError(f"{where}: {k}: {v!r} is not a [start, end] range within {len(token_list)} tokens")
            out[k] = [int(v[0]), int(v[1])]
        return out
    if any(is_range):
        raise VocabularyError(f"{where}: mixes start offsets and [start, end] ranges ({token_bias}); ESPnet's "
                              "process_token_bias rejects that: use one form")
    raw = dict(token_bias)
    raw["special_token"] = 0
    if "codec_ssl" in raw:
        for name in ("<ssl_code1>", "<codec_layer0_code0>"):
            if name not in token_list:
                raise VocabularyError(f"{where}: codec_ssl is given but {name} is not in the token list")
        raw["ssl"] = token_list.index("<ssl_code1>")
        raw["codec"] = token_list.index("<codec_layer0_code0>")
        del raw["codec_ssl"]
    bounds = list(raw.values()) + [len(token_list)]
    return {m: [int(s), int(min(b for b in bounds if b > s))] for m, s in raw.items()}


def raw_token_bias(token_bias: dict[str, list[int]]) -> dict[str, int]:
    """Processed ranges -> raw start offsets as ESPnet's token_bias.json holds them
    (`ssl` + `codec` -> `codec_ssl`; `special_token` left out)."""
    raw = {}
    for m, (start, _) in token_bias.items():
        if m == "special_token" or (m == "codec" and "ssl" in token_bias):
            continue
        raw["codec_ssl" if m == "ssl" and "codec" in token_bias else m] = start
    return raw


def derive_token_bias(token_list: list[str]) -> dict[str, list[int]]:
    """Processed token_bias of a list without one (a list svslm made): the codec_ssl block, a
    text_bpe block right after it when there is one, and the svs_lb block of `svs_*` tokens."""
    vocab_size = len(token_list)
    index = {t: i for i, t in enumerate(token_list)}
    if "<ssl_code1>" not in index:
        raise VocabularyError("token list without <ssl_code1>: cannot place the codec_ssl block")
    raw = {"codec_ssl": index["<ssl_code1>"]}
    codec_end = 1 + max(i for t, i in index.items() if CODEC_TOKEN.match(t))
    svs = [i for t, i in index.items() if t.startswith("svs_") or t == SVS_PLACEHOLDER]
    if svs:
        raw["svs_lb"] = min(svs)
    if codec_end < vocab_size and codec_end not in svs:
        raw["text_bpe"] = codec_end
    return process_token_bias(raw, token_list)


class Vocabulary:
    """Ids by name plus the blocks of `token_bias` (processed), checked against each other."""

    def __init__(self, token_list: list[str], token_bias: dict | None = None, source: str = "token_list"):
        self.token_list = list(token_list)
        self.source = source
        self.token2id: dict[str, int] = {}
        for i, tok in enumerate(self.token_list):
            if tok in self.token2id:
                raise VocabularyError(f"{source}: token {tok!r} appears twice (ids {self.token2id[tok]} and {i})")
            self.token2id[tok] = i
        self.token_bias = (derive_token_bias(self.token_list) if token_bias is None
                           else process_token_bias(dict(token_bias), self.token_list, f"{source} token_bias"))
        self._check_blocks()

    def _check_blocks(self) -> None:
        ssl = {int(m.group(1)): i for t, i in self.token2id.items() if (m := SSL_TOKEN.match(t))}
        codec = {(int(m.group(1)), int(m.group(2))): i for t, i in self.token2id.items() if (m := CODEC_TOKEN.match(t))}
        if not ssl or not codec:
            raise VocabularyError(f"{self.source}: no <ssl_code*> or no <codec_layer*_code*> tokens")
        if 0 in ssl:
            raise VocabularyError(f"{self.source}: has <ssl_code0>; ESPnet's SSL tokens are 1-based (k-means id k "
                                  "is <ssl_code{k+1}>): rename the list, e.g. with ssl_tokenization.sh's naming")
        start = ssl.get(1)
        if sorted(ssl) != list(range(1, len(ssl) + 1)) or any(ssl[k] != start + k - 1 for k in ssl):
            raise VocabularyError(f"{self.source}: <ssl_code1>..<ssl_code{len(ssl)}> are not one contiguous block")
        n_cb = 1 + max(i for i, _ in codec)
        size = 1 + max(j for _, j in codec)
        c0 = codec.get((0, 0))
        if len(codec) != n_cb * size or any(codec.get((i, j)) != c0 + i * size + j for i in range(n_cb) for j in range(size)):
            raise VocabularyError(f"{self.source}: codec tokens do not form {n_cb} contiguous codebooks of {size}")
        for name, want in (("ssl", [start, start + len(ssl)]), ("codec", [c0, c0 + n_cb * size])):
            if self.token_bias.get(name) != want:
                raise VocabularyError(f"{self.source}: token_bias {name} is {self.token_bias.get(name)} but the "
                                      f"token names put it at {want}")
        self.ssl_start, self.ssl_vocab = start, len(ssl)
        self.codec_start, self.n_codebooks, self.codebook_size = c0, n_cb, size

    def __len__(self) -> int:
        return len(self.token_list)

    def id(self, token: str) -> int:
        try:
            return self.token2id[token]
        except KeyError:
            raise VocabularyError(f"token {token!r} is not in {self.source}") from None

    @property
    def pad(self) -> int:
        return self.id("<pad>")

    @property
    def eos(self) -> int:
        return self.id("<sos/eos>")

    @property
    def nq(self) -> int:
        return 1 + self.n_codebooks

    @property
    def codec_range(self) -> tuple[int, int]:
        """[start, end) of all codebooks together: ESPnet's aux-loss interval of the codec streams."""
        return self.codec_start, self.codec_start + self.n_codebooks * self.codebook_size

    def stream_ids(self, stream: int) -> np.ndarray:
        """Vocabulary ids of a stream's own tokens: stream 0 SSL, stream i codebook i-1."""
        if stream == 0:
            return np.arange(self.ssl_start, self.ssl_start + self.ssl_vocab, dtype=np.int64)
        start = self.codec_start + (stream - 1) * self.codebook_size
        return np.arange(start, start + self.codebook_size, dtype=np.int64)

    def local_to_vocab(self, frames: np.ndarray, where: str, ssl_id0: Literal["pad", "token"] = "pad") -> np.ndarray:
        """int [T, nq] local ids (dump's codec_ssl) -> int64 [T, nq] vocabulary ids.

        `ssl_id0: pad` is ESPnet's preprocessor: it adds the offset with
        `where(value == <pad>, <pad>, value + bias)`, so SSL id 0 becomes <pad> (and leaves the loss);
        `token` maps it to <ssl_code1>, which ESPnet never does."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[1] != self.nq:
            raise VocabularyError(f"{where}: expected an int array [T, {self.nq}], got shape {frames.shape}")
        limits = [self.ssl_vocab] + [self.codebook_size] * (self.nq - 1)
        out = np.empty(frames.shape, dtype=np.int64)
        for n, limit in enumerate(limits):
            col = frames[:, n].astype(np.int64)
            if col.size and (col.min() < 0 or col.max() >= limit):
                bad = int(np.argmax((col < 0) | (col >= limit)))
                raise VocabularyError(f"{where}: stream {n} frame {bad} has id {int(col[bad])}, outside [0, {limit})")
            out[:, n] = self.stream_ids(n)[0] + col
        if ssl_id0 == "pad":
            out[frames[:, 0] == 0, 0] = self.pad
        return out

    def text_ids(self, tokens: list[str], where: str) -> np.ndarray:
        """Ids of a text-like modality's tokens (svs_lb); every unknown token is named."""
        unknown = sorted({t for t in tokens if t not in self.token2id})
        if unknown:
            raise VocabularyError(f"{where}: tokens not in {self.source}: {unknown[:20]}")
        return np.array([self.token2id[t] for t in tokens], dtype=np.int64)

    def class_weights(self, modality_weights: dict[str, float]) -> torch.Tensor:
        """float32 [V]: ESPnet's per-id loss weight (1, or the weight of the id's token_bias range)."""
        weight = torch.ones(len(self), dtype=torch.float32)
        for name, w in modality_weights.items():
            if name in self.token_bias:
                start, end = self.token_bias[name]
                weight[start:end] = float(w)
        return weight

    def blocks(self) -> list[tuple[str, int, int]]:
        """(modality, start, end) of every token_bias range, in id order (for `lm-probe`)."""
        return sorted(((m, s, e) for m, (s, e) in self.token_bias.items()), key=lambda b: (b[1], b[2]))
