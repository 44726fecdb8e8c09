"""The LM vocabulary: an ESPnet-SpeechLM `token_list` and the id tables derived from it by name.

Every special token, modality and task marker is found by its name (ESPnet's convention), never
by a hard-coded index, so a checkpoint whose list was extended or reordered still works.
Local ids (what `dump/<split>/codec_ssl.scp` stores) map to vocabulary ids through the token names
`<ssl_code{k}>` (stream 0) and `<codec_layer{i}_code{j}>` (stream i + 1).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch

SSL_TOKEN = re.compile(r"<ssl_code(\d+)>$")
CODEC_TOKEN = re.compile(r"<codec_layer(\d+)_code(\d+)>$")


class VocabularyError(ValueError):
    """A token list that lacks a token the LM needs, or a token outside the list."""


@dataclass
class Vocabulary:
    token_list: list[str]
    source: str = "token_list"  # where the list came from, for error messages
    token2id: dict[str, int] = field(init=False)
    ssl_ids: np.ndarray = field(init=False)  # int64 [ssl_vocab]: vocab id of <ssl_code{k}>
    codec_ids: np.ndarray = field(init=False)  # int64 [n_codebooks, codebook_size]

    def __post_init__(self) -> None:
        self.token2id = {}
        for i, tok in enumerate(self.token_list):
            if tok in self.token2id:
                raise VocabularyError(f"{self.source}: token {tok!r} appears twice (ids {self.token2id[tok]} and {i})")
            self.token2id[tok] = i
        ssl: dict[int, int] = {}
        codec: dict[tuple[int, int], int] = {}
        for i, tok in enumerate(self.token_list):
            if m := SSL_TOKEN.match(tok):
                ssl[int(m.group(1))] = i
            elif m := CODEC_TOKEN.match(tok):
                codec[(int(m.group(1)), int(m.group(2)))] = i
        if not ssl or not codec:
            raise VocabularyError(f"{self.source}: no <ssl_code*> or no <codec_layer*_code*> tokens")
        if sorted(ssl) != list(range(len(ssl))):
            raise VocabularyError(f"{self.source}: <ssl_code{{k}}> tokens are not k = 0..{len(ssl) - 1}")
        self.ssl_ids = np.array([ssl[k] for k in range(len(ssl))], dtype=np.int64)
        n_layers = 1 + max(i for i, _ in codec)
        size = 1 + max(j for _, j in codec)
        if len(codec) != n_layers * size:
            raise VocabularyError(
                f"{self.source}: codec tokens do not form {n_layers} full codebooks of {size} "
                f"(found {len(codec)} tokens)"
            )
        self.codec_ids = np.array(
            [[codec[(i, j)] for j in range(size)] for i in range(n_layers)], dtype=np.int64
        )

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
        return 1 + self.codec_ids.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.codec_ids.shape[1]

    @property
    def ssl_vocab(self) -> int:
        return len(self.ssl_ids)

    @property
    def codec_vocab_ids(self) -> np.ndarray:
        """int64 [n_codebooks * codebook_size], sorted: the codec range of the output head."""
        return np.sort(self.codec_ids.reshape(-1))

    def stream_ids(self, stream: int) -> np.ndarray:
        """Vocabulary ids a stream may emit in the target: stream 0 SSL, stream i codebook i-1."""
        return self.ssl_ids if stream == 0 else self.codec_ids[stream - 1]

    def token_bias(self) -> dict[str, int]:
        """ESPnet's `token_bias`: modality -> id of its first token (docs/formats.md)."""
        bias = {"ssl": int(self.ssl_ids.min()), "codec": int(self.codec_ids.min())}
        svs = [i for i, t in enumerate(self.token_list) if t.startswith("svs_")]
        if svs:
            bias["svs_lb"] = min(svs)
        return bias

    def local_to_vocab(self, frames: np.ndarray, where: str) -> np.ndarray:
        """int [T, nq] local ids (dump's codec_ssl) -> int64 [T, nq] vocabulary ids."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[1] != self.nq:
            raise VocabularyError(f"{where}: expected an int array [T, {self.nq}], got shape {frames.shape}")
        limits = [self.ssl_vocab] + [self.codebook_size] * (self.nq - 1)
        out = np.empty(frames.shape, dtype=np.int64)
        for n, limit in enumerate(limits):
            col = frames[:, n]
            if col.size and (col.min() < 0 or col.max() >= limit):
                bad = int(np.argmax((col < 0) | (col >= limit)))
                raise VocabularyError(
                    f"{where}: stream {n} frame {bad} has id {int(col[bad])}, outside [0, {limit})"
                )
            out[:, n] = self.stream_ids(n)[col]
        return out

    def vocab_to_local_tables(self) -> torch.Tensor:
        """int64 [nq, V]: local id of each vocabulary id per stream, -1 where it does not belong."""
        table = torch.full((self.nq, len(self)), -1, dtype=torch.long)
        for n in range(self.nq):
            ids = torch.from_numpy(self.stream_ids(n))
            table[n, ids] = torch.arange(len(ids))
        return table

    def text_ids(self, tokens: list[str], where: str) -> np.ndarray:
        """Ids of a text-like modality's tokens (svs_lb); every unknown token is named."""
        unknown = sorted({t for t in tokens if t not in self.token2id})
        if unknown:
            raise VocabularyError(f"{where}: tokens not in {self.source}: {unknown[:20]}")
        return np.array([self.token2id[t] for t in tokens], dtype=np.int64)
