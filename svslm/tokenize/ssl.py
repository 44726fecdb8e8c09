"""SSL tokenizer: frame features at 50 fps, then the nearest of k-means centroids fitted on train.

Feature backends:
- `mini`: 13 MFCCs + deltas + delta-deltas (39-d), the features HuBERT's first iteration clusters,
  computed from the shared log-mel (so frames align one to one with the codec's) and
  mean/variance-normalised per utterance.
- `hubert`: a transformers `HubertModel` from a local directory, hidden states of `layer`.
- `xeus`: XEUS through the optional `espnet` extra (`espnet2.tasks.ssl.SSLTask`), layer 18 in the
  paper.
Layers count from 1 (the first transformer block's output), as ESPnet's `--ssl_nlayer`.
`load_ssl_tokenizer(dir)` rebuilds the tokenizer from `dump/tokenizers/ssl/`.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import librosa
import numpy as np
import torch

from svslm.tokenize.kmeans import fit_kmeans, nearest, sample_frames
from svslm.utils.config import load_config, save_config
from svslm.utils.fileio import atomic_save_npy
from svslm.utils.mel import MelConfig, mel_spectrogram

HOP_LENGTH = 320  # 50 fps at 16 kHz


@dataclass
class SSLConfig:
    backend: Literal["mini", "hubert", "xeus"] = "mini"  # feature extractor (see the module docstring)
    n_clusters: int = 5000  # k-means size = SSL vocabulary (5000 in the paper)
    layer: int = 18  # hubert/xeus: which transformer block's output, counted from 1
    model_path: str = ""  # hubert: a transformers model directory; xeus: the checkpoint .pth
    config_path: str = ""  # xeus: the model's config.yaml
    # A k-means fitted elsewhere (joblib, like ESPnet's km_5000.mdl) used instead of fitting one:
    # the paper's SSL ids must be those the pretrained LM was trained with.
    kmeans_path: str = ""
    n_mfcc: int = 13  # mini: cepstral coefficients before deltas
    max_fit_frames: int = 200000  # frames sampled from the training split to fit k-means (0 = all)
    kmeans_batch_size: int = 10000  # MiniBatchKMeans batch size
    kmeans_n_init: int = 3  # k-means restarts, the best kept
    seed: int = 0  # seed of the frame sample and of k-means
    device: str = "cpu"  # hubert/xeus: torch device


class FeatureExtractor(abc.ABC):
    @abc.abstractmethod
    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """float32 [N] at 16 kHz -> float32 [about N // 320, D]."""


class MfccFeatures(FeatureExtractor):
    def __init__(self, config: SSLConfig):
        self.mel = MelConfig()
        self.n_mfcc = config.n_mfcc

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        log_mel = mel_spectrogram(np.asarray(wav, dtype=np.float32), self.mel).numpy()  # [n_mels, T] dB
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=self.n_mfcc)  # [n_mfcc, T]
        feats = np.concatenate(
            [mfcc, librosa.feature.delta(mfcc, mode="nearest"), librosa.feature.delta(mfcc, order=2, mode="nearest")]
        ).T  # [T, 3 * n_mfcc]
        # per-utterance CMVN: clusters then follow phonetic content more than loudness or singer
        return ((feats - feats.mean(0)) / (feats.std(0) + 1e-5)).astype(np.float32)


class HubertFeatures(FeatureExtractor):
    def __init__(self, config: SSLConfig):
        from transformers import HubertModel

        if not config.model_path or not Path(config.model_path).is_dir():
            raise FileNotFoundError(
                f"the hubert SSL backend needs ssl.model_path = a local transformers HuBERT directory; "
                f"got {config.model_path!r}"
            )
        self.model = HubertModel.from_pretrained(config.model_path).to(config.device).eval()
        n_layers = self.model.config.num_hidden_layers
        if not 1 <= config.layer <= n_layers:
            raise ValueError(f"ssl.layer={config.layer} but {config.model_path} has layers 1..{n_layers}")
        self.layer = config.layer
        self.device = torch.device(config.device)
        # The conv front end (total stride 320, receptive field 400) gives floor((N - 400) / 320) + 1
        # frames; 40 samples of padding on each side centre the windows and give N // 320.
        self.pad = 40

    @torch.no_grad()
    def __call__(self, wav: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.pad(np.asarray(wav, dtype=np.float32), self.pad), device=self.device)[None]
        out = self.model(x, output_hidden_states=True)
        return out.hidden_states[self.layer][0].cpu().numpy()  # hidden_states[0] is before block 1


class XeusFeatures(FeatureExtractor):
    def __init__(self, config: SSLConfig):
        if not config.model_path or not Path(config.model_path).is_file():
            raise FileNotFoundError(
                f"the xeus SSL backend needs ssl.model_path = the XEUS checkpoint (.pth); got {config.model_path!r}"
            )
        try:
            from espnet2.tasks.ssl import SSLTask
        except ImportError as err:
            raise ImportError(
                "the xeus SSL backend needs the optional ESPnet extra (pip install -e '.[espnet]'); "
                f"importing espnet2.tasks.ssl failed: {err}"
            ) from err
        model, _ = SSLTask.build_model_from_file(config.config_path or None, config.model_path, config.device)
        self.model = model.eval()
        self.layer = config.layer
        self.device = torch.device(config.device)

    @torch.no_grad()
    def __call__(self, wav: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(wav, dtype=np.float32), device=self.device)[None]
        lengths = torch.tensor([x.shape[1]], device=self.device)
        layers = self.model.encode(x, lengths, use_mask=False, use_final_output=False)[0]  # one [B, T, D] per block
        if not 1 <= self.layer <= len(layers):
            raise ValueError(f"ssl.layer={self.layer} but XEUS returned {len(layers)} layers")
        return layers[self.layer - 1][0].cpu().numpy()


FEATURES = {"mini": MfccFeatures, "hubert": HubertFeatures, "xeus": XeusFeatures}


class SSLTokenizer:
    """Audio -> SSL token ids [T] in [0, n_clusters)."""

    def __init__(self, config: SSLConfig, centroids: np.ndarray, features: FeatureExtractor | None = None):
        if centroids.shape[0] != config.n_clusters:
            raise ValueError(f"k-means has {centroids.shape[0]} centroids, config says {config.n_clusters}")
        self.config = config
        self.centroids = centroids.astype(np.float32)  # [K, D]
        self._features = features

    @property
    def features(self) -> FeatureExtractor:
        """The feature extractor, built on first use (a HuBERT or XEUS model is large)."""
        if self._features is None:
            self._features = FEATURES[self.config.backend](self.config)
        return self._features

    @property
    def vocab_size(self) -> int:
        return self.config.n_clusters

    @classmethod
    def from_pretrained_kmeans(cls, config: SSLConfig) -> SSLTokenizer:
        import joblib  # scikit-learn's own persistence; ESPnet saves its k-means with it

        if not Path(config.kmeans_path).is_file():
            raise FileNotFoundError(f"ssl.kmeans_path: no k-means model at {config.kmeans_path!r}")
        centroids = np.asarray(joblib.load(config.kmeans_path).cluster_centers_, dtype=np.float32)
        return cls(config, centroids)

    @classmethod
    def fit(cls, features: list[np.ndarray], config: SSLConfig) -> SSLTokenizer:
        """Fit k-means on per-utterance features [T_i, D] of the training split."""
        x = sample_frames(features, config.max_fit_frames, config.seed)
        centroids = fit_kmeans(x, config.n_clusters, config.seed, config.kmeans_batch_size, config.kmeans_n_init)
        return cls(config, centroids)

    def encode(self, wav: np.ndarray) -> np.ndarray:
        """float32 [N] -> int64 [about N // 320]."""
        return nearest(self.features(wav), self.centroids)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_save_npy(directory / "kmeans_centroids.npy", self.centroids)
        save_config(self.config, directory / "config.yaml")


def load_ssl_tokenizer(directory: str | Path) -> SSLTokenizer:
    """The SSL tokenizer stage 2 fitted, from `directory` (e.g. dump/tokenizers/ssl)."""
    directory = Path(directory)
    for name in ("config.yaml", "kmeans_centroids.npy"):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory}: SSL tokenizer file {name} is missing (stage 2 writes it)")
    config = load_config(directory / "config.yaml", SSLConfig)
    return SSLTokenizer(config, np.load(directory / "kmeans_centroids.npy"))
