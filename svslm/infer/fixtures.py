"""Stand-in components with the documented interfaces (docs/formats.md), for tests of the routing.

Each one records how it was called and returns a constant signal that names it (codec decoder
0.1, codec-latent decoder 0.2, vocoder 0.3), so a test can tell which part made a waveform.
"""
from __future__ import annotations

import numpy as np
import torch

from svslm.utils.mel import MelConfig

HOP = 320


class FakeCodec:
    sample_rate, frame_rate, n_codebooks = 16000, 50, 8

    def __init__(self, codebook_size: int = 16, embed_dim: int = 4):
        self.codebook_size, self.embed_dim = codebook_size, embed_dim
        self.calls: list[tuple[str, tuple]] = []

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T, 8] -> [B, T, D]
        self.calls.append(("embed", tuple(tokens.shape)))
        return tokens[..., : self.embed_dim].float()

    def decode(self, tokens: np.ndarray) -> np.ndarray:  # [T, 8] -> [T * 320]
        tokens = np.asarray(tokens)
        assert tokens.shape[1] == 8, tokens.shape
        self.calls.append(("decode", tokens.copy()))
        return np.full(len(tokens) * HOP, 0.1, dtype=np.float32)

    def decode_embedding(self, z) -> np.ndarray:  # [T, D] -> [T * 320]
        z = np.asarray(z)
        assert z.shape[1] == self.embed_dim, z.shape
        self.calls.append(("decode_embedding", z.shape))
        return np.full(len(z) * HOP, 0.2, dtype=np.float32)


class FakeFlow:
    def __init__(self, output: str = "mel", needs_pitch: bool = False, mel_config: MelConfig | None = None,
                 embed_dim: int = 4, needs_prompt: bool = False):
        self.output, self.needs_pitch, self.needs_prompt = output, needs_pitch, needs_prompt
        self.mel_config = mel_config or MelConfig()
        self.embed_dim = embed_dim
        self.calls: list[dict] = []

    def sample(self, codec_emb, pitch, mask, n_steps, guidance, seed, prompt_mel=None):
        self.calls.append(dict(codec_emb=codec_emb, pitch=pitch, mask=mask, n_steps=n_steps, guidance=guidance,
                               seed=seed, prompt_mel=prompt_mel))
        b, t, _ = codec_emb.shape
        if self.output == "mel":
            return torch.zeros(b, self.mel_config.n_mels, t)
        return torch.zeros(b, t, self.embed_dim)


class FakeVocoder:
    def __init__(self, mel_config: MelConfig | None = None):
        self.mel_config = mel_config or MelConfig()
        self.calls: list[torch.Tensor] = []

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:  # [B, n_mels, T] -> [B, T * 320]
        assert mel.shape[1] == self.mel_config.n_mels, mel.shape
        self.calls.append(mel.clone())
        return torch.full((mel.shape[0], mel.shape[2] * HOP), 0.3)


def fake_parts() -> dict:
    """A codec, the three flows of Table 2 by condition name, and a vocoder."""
    return {
        "codec": FakeCodec(),
        "flows": {
            "LM + Flow1 + CD": FakeFlow("codec_emb"),
            "LM + Flow1 + Voc": FakeFlow("mel"),
            "LM + Flow2 + Voc": FakeFlow("mel", needs_pitch=True),
        },
        "vocoder": FakeVocoder(),
    }
