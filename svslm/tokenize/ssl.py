"""SSL tokenizer: frame features at 50 fps, then the nearest of k-means centroids fitted on train.

Feature backends:
- `mini`: 13 MFCCs + deltas + delta-deltas (39-d), the features HuBERT's first iteration clusters,
  computed from the shared log-mel (so frames align one to one with the codec's) and
  mean/variance-normalised per utterance.
- `hubert`: a transformers `HubertModel` from a local directory, hidden states of `layer`.
- `xeus`: XEUS through ESPnet 202511 (`espnet2.tasks.ssl.SSLTask`; `./install.sh --espnet`),
  layer 18 in the paper.
`layer` indexes each backend's own list of hidden states: for `hubert` transformers'
`hidden_states` (0 is before block 1, L the output of block L); for `xeus` ESPnet-SpeechLM's
`--ssl_nlayer` (0 is block 1's output; see XeusFeatures). Every backend gives N // 320 frames for
N samples, as the codec does.
`load_ssl_tokenizer(dir)` rebuilds the tokenizer from `dump/tokenizers/ssl/`.
"""
from __future__ import annotations

import abc
from pathlib import Path

import librosa
import numpy as np
import torch

from svslm.tokenize.config import SSLConfig
from svslm.tokenize.espnet_load import import_task, load_espnet_model
from svslm.tokenize.kmeans import fit_kmeans, nearest, sample_frames
from svslm.utils.audio import HOP_LENGTH
from svslm.utils.config import load_config, save_config
from svslm.utils.device import resolve_device
from svslm.utils.fileio import atomic_save_npy
from svslm.utils.mel import MelConfig, mel_spectrogram


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
        self.device = resolve_device(config.device)
        self.model = HubertModel.from_pretrained(config.model_path).to(self.device).eval()
        n_layers = self.model.config.num_hidden_layers
        if not 1 <= config.layer <= n_layers:
            raise ValueError(f"ssl.layer={config.layer} but {config.model_path} has layers 1..{n_layers}")
        self.layer = config.layer
        # The conv front end (total stride 320, receptive field 400) gives floor((N - 400) / 320) + 1
        # frames; 40 samples of padding on each side centre the windows and give N // 320.
        self.pad = 40

    @torch.no_grad()
    def __call__(self, wav: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.pad(np.asarray(wav, dtype=np.float32), self.pad), device=self.device)[None]
        out = self.model(x, output_hidden_states=True)
        return out.hidden_states[self.layer][0].cpu().numpy()  # hidden_states[0] is before block 1


class XeusFeatures(FeatureExtractor):
    """XEUS (or any ESPnet `SSLTask` model) features of one encoder layer.

    `layer` counts as ESPnet-SpeechLM's `--ssl_nlayer` does: from 0 over the encoder blocks'
    outputs, the last block's taken after the encoder's final LayerNorm (ESPnet's `encode` with
    `use_final_output`). XEUS has 19 blocks, so the paper's 18 is the final output.

    Frames: the wav2vec CNN front end (window 400, stride 320) gives floor((N - 400) / 320) + 1
    frames, one fewer than the codec's N // 320 when N mod 320 < 80. The input is padded on the
    right with 80 zeros, which gives N // 320 frames; frame i still reads samples
    [320 i, 320 i + 400), so wherever ESPnet gives a frame, the padded input gives it the same
    window, and the frame ESPnet would drop (with the codec's last frame) is kept.
    """

    right_pad = 80

    def __init__(self, config: SSLConfig):
        files = {"ssl.model_path": config.model_path, "ssl.config_path": config.config_path}
        missing = [f"{key}={path!r}" for key, path in files.items() if not path or not Path(path).is_file()]
        if missing:
            raise FileNotFoundError(
                "the xeus SSL backend needs the XEUS checkpoint (.pth) and its config.yaml "
                f"(espnet/xeus: model/xeus_checkpoint_new.pth, model/config.yaml); not found: {', '.join(missing)}"
            )
        task = import_task("ssl", "SSLTask", "the xeus SSL backend")
        self.device = resolve_device(config.device)
        self.model, _ = load_espnet_model(task, config.config_path, config.model_path, str(self.device))
        n_blocks = len(self.model.encoder.encoders)
        if not 0 <= config.layer < n_blocks:
            raise ValueError(f"ssl.layer={config.layer} but {config.model_path} has layers 0..{n_blocks - 1} "
                             "(counted from 0 as ESPnet-SpeechLM's --ssl_nlayer)")
        self.layer = config.layer
        self.n_blocks = n_blocks
        self.where = config.model_path

    @torch.no_grad()
    def __call__(self, wav: np.ndarray) -> np.ndarray:
        wav = np.asarray(wav, dtype=np.float32)
        x = torch.as_tensor(np.pad(wav, (0, self.right_pad)), device=self.device)[None]
        lengths = torch.tensor([x.shape[1]], device=self.device)
        # ESPnet's own SSL front end call: no masking, every block's output
        final, layers, _ = self.model.inference_encode(x, lengths, use_mask=False, use_final_output=False)
        feats = final if self.layer == self.n_blocks - 1 else layers[self.layer]
        if feats.shape[1] != len(wav) // HOP_LENGTH:
            raise ValueError(f"{self.where}: {feats.shape[1]} frames for {len(wav)} samples, expected "
                             f"{len(wav) // HOP_LENGTH} (is its front end XEUS's, window 400 and stride 320?)")
        return feats[0].cpu().numpy()


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
