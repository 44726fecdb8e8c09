"""Singer-Sim: cosine similarity of speaker embeddings of the synthesis and its reference.

The default embedding is resemblyzer's d-vector (GE2E LSTM, 256-d, L2-normalised); its weights
ship inside the pip package, so it works offline. resemblyzer's own preprocessing (volume
normalisation, and webrtcvad trimming of long silences unless `trim_silence: false`) is kept, as
VERSA's speaker metric does. Optionally a second embedding from a local TorchScript file
(`extra_embedding`), reported as `Singer-Sim_extra`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from svslm.evaluate.na import MetricUnavailable


@dataclass
class SingerSimConfig:
    trim_silence: bool = True  # resemblyzer's webrtcvad trimming of long silences before embedding
    # A TorchScript module mapping a 16 kHz waveform [1, N] to an embedding [1, D]; "" = none.
    extra_embedding: str = ""


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


class ResemblyzerEmbedder:
    def __init__(self, trim_silence: bool):
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder("cpu", verbose=False)
        self.trim_silence = trim_silence

    def embed(self, wav: np.ndarray) -> np.ndarray:
        from resemblyzer import preprocess_wav
        from resemblyzer.audio import normalize_volume
        from resemblyzer.hparams import audio_norm_target_dBFS

        if not np.any(wav):
            raise MetricUnavailable("silent audio (all samples zero): no voice to embed")
        if self.trim_silence:
            wav = preprocess_wav(np.asarray(wav, dtype=np.float32), source_sr=16000)
        else:
            wav = normalize_volume(np.asarray(wav, dtype=np.float32), audio_norm_target_dBFS, increase_only=True)
        if wav.size == 0:
            raise MetricUnavailable("voice activity detection found no voice to embed")
        return self.encoder.embed_utterance(wav)


class TorchScriptEmbedder:
    def __init__(self, path: Path):
        if not path.is_file():
            raise MetricUnavailable(f"extra speaker embedding model not found: {path}")
        self.model = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.inference_mode()
    def embed(self, wav: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(np.asarray(wav, dtype=np.float32))[None])[0].numpy()


def singer_similarity(embedder, hyp: np.ndarray, ref: np.ndarray,
                      ref_embedding: np.ndarray | None = None) -> float | MetricUnavailable:
    """Cosine of the embeddings of `hyp` and `ref`; `ref_embedding`: `embedder.embed(ref)` made
    before (the scorer embeds each reference once for all conditions)."""
    try:
        return cosine(embedder.embed(hyp), embedder.embed(ref) if ref_embedding is None else ref_embedding)
    except MetricUnavailable as err:
        return err
