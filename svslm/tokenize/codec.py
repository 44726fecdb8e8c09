"""Codec tokenizers: 16 kHz audio <-> 8 streams of codes at 50 fps, and the codes' continuous latent.

One interface (`CodecTokenizer`), two backends:
- `espnet`: ESPnet-Codec DAC (16 kHz, 8 x 1024), the paper's codec, loaded from a local checkpoint
  and config with ESPnet 202511 (`./install.sh --espnet`).
- `mini`: a codec fitted on the corpus's training audio inside the recipe, with the same shape:
  residual k-means over log-mel frames (8 codebooks), decoded by Griffin-Lim mel inversion. It is
  what a CPU machine without the ESPnet-Codec weights can run end to end; its reconstruction is
  measured in bench/results/tokenize.md.

`load_codec(dir)` rebuilds either from the directory stage 2 writes (`dump/tokenizers/codec/`).
"""
from __future__ import annotations

import abc
from pathlib import Path

import numpy as np
import torch

from svslm.tokenize.config import CodecConfig
from svslm.tokenize.espnet_load import import_task, load_espnet_model
from svslm.tokenize.kmeans import fit_kmeans, nearest, sample_frames
from svslm.utils.audio import FRAME_RATE, HOP_LENGTH, SAMPLE_RATE
from svslm.utils.config import load_config, save_config
from svslm.utils.device import resolve_device
from svslm.utils.fileio import atomic_save_npy
from svslm.utils.mel import MelConfig, griffin_lim, mel_spectrogram

N_CODEBOOKS = 8


class CodecTokenizer(abc.ABC):
    """16 kHz mono audio <-> int codes [frames, 8] at 50 fps; codes -> continuous latent."""

    sample_rate = SAMPLE_RATE
    frame_rate = FRAME_RATE
    n_codebooks = N_CODEBOOKS
    codebook_size: int
    embed_dim: int

    @abc.abstractmethod
    def encode(self, wav: np.ndarray) -> np.ndarray:
        """float32 [N] -> int64 [N // 320, 8]."""

    @abc.abstractmethod
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """LongTensor [B, T, 8] -> FloatTensor [B, T, embed_dim]: the sum of the codebooks' code vectors."""

    @abc.abstractmethod
    def decode_embedding(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        """Continuous latent [T, embed_dim] -> float32 [T * 320] audio."""

    def decode(self, tokens: np.ndarray | torch.Tensor) -> np.ndarray:
        """int [T, 8] -> float32 [T * 320] audio."""
        tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        self._check_tokens(tokens)
        return self.decode_embedding(self.embed(tokens[None])[0])

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.shape[-1] != self.n_codebooks:
            raise ValueError(f"codec tokens need {self.n_codebooks} columns, got shape {tuple(tokens.shape)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise ValueError(
                f"codec tokens outside [0, {self.codebook_size}): min {int(tokens.min())}, max {int(tokens.max())}"
            )


def log_mel_frames(wav: np.ndarray, mel: MelConfig) -> np.ndarray:
    """float32 [N] -> [N // 320, n_mels]: the frames the mini codec quantizes."""
    return mel_spectrogram(np.asarray(wav, dtype=np.float32), mel).numpy().T


class MiniCodec(CodecTokenizer):
    """Residual k-means on log-mel frames: codebook i quantizes what codebooks 0..i-1 left over.

    The latent is the quantized log-mel itself ([T, n_mels], dB), so `embed` is the sum of the
    chosen code vectors exactly as in a residual VQ codec, and decoding is mel inversion.
    """

    def __init__(self, codebooks: np.ndarray, mel: MelConfig, config: CodecConfig):
        if codebooks.ndim != 3 or codebooks.shape[0] != N_CODEBOOKS or codebooks.shape[2] != mel.n_mels:
            raise ValueError(f"mini codec codebooks must be [8, K, {mel.n_mels}], got {codebooks.shape}")
        self.codebooks = codebooks.astype(np.float32)  # [8, K, n_mels]
        self.mel = mel
        self.config = config
        self.codebook_size = codebooks.shape[1]
        self.embed_dim = mel.n_mels
        self._codebooks_t = torch.from_numpy(self.codebooks)

    @classmethod
    def fit(cls, mels: list[np.ndarray], config: CodecConfig, mel: MelConfig | None = None) -> MiniCodec:
        """Fit the 8 codebooks on log-mel frames `mels` (each [T_i, n_mels]) of the training audio."""
        mel = mel or MelConfig()
        residual = sample_frames(mels, config.max_fit_frames, config.seed)  # [N, n_mels]
        codebooks = []
        for i in range(N_CODEBOOKS):
            centroids = fit_kmeans(
                residual, config.codebook_size, seed=config.seed + i,
                batch_size=config.kmeans_batch_size, n_init=config.kmeans_n_init,
            )
            residual = residual - centroids[nearest(residual, centroids)]
            codebooks.append(centroids)
        return cls(np.stack(codebooks), mel, config)

    def encode(self, wav: np.ndarray) -> np.ndarray:
        residual = log_mel_frames(wav, self.mel)  # [T, n_mels]
        codes = np.empty((len(residual), N_CODEBOOKS), dtype=np.int64)
        for i, centroids in enumerate(self.codebooks):
            codes[:, i] = nearest(residual, centroids)
            residual = residual - centroids[codes[:, i]]
        return codes

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        self._check_tokens(tokens)
        # [B, T, 8] -> [B, T, 8, n_mels] (code vector of each codebook) -> sum over codebooks
        vectors = self._codebooks_t[torch.arange(N_CODEBOOKS), tokens]
        return vectors.sum(dim=-2)

    def decode_embedding(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        z = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.embed_dim:
            raise ValueError(f"mini codec latent must be [T, {self.embed_dim}], got {z.shape}")
        return griffin_lim(z.T.astype(np.float32), self.mel, n_iter=self.config.griffin_lim_iters)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_save_npy(directory / "codebooks.npy", self.codebooks)
        save_config(self.mel, directory / "mel.yaml")
        save_config(self.config, directory / "config.yaml")

    @classmethod
    def load(cls, directory: str | Path, config: CodecConfig) -> MiniCodec:
        directory = Path(directory)
        for name in ("codebooks.npy", "mel.yaml"):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory}: mini codec file {name} is missing (re-run stage 2)")
        mel = load_config(directory / "mel.yaml", MelConfig)
        return cls(np.load(directory / "codebooks.npy"), mel, config)


class EspnetCodec(CodecTokenizer):
    """ESPnet-Codec (DAC) through `espnet2.tasks.gan_codec.GANCodecTask`, as ESPnet-SpeechLM's
    codec tokenizer uses it: the generator's encoder + residual VQ give the codes (the first 8
    codebooks), the quantizer's `decode` the summed code vectors (the latent) and the generator's
    decoder (ESPnet's `decode_continuous`) the audio.

    The codes are asked for at the bandwidth of exactly 8 codebooks: a residual VQ's first 8 codes
    do not depend on how many follow, so they equal ESPnet-SpeechLM's (which encodes at the
    config's largest bandwidth and keeps the first 8), while a config whose largest bandwidth
    gives fewer than 8 still yields 8 or fails here. The checkpoint is loaded strictly and every
    codebook must be initialised (svslm.tokenize.espnet_load)."""

    def __init__(self, config: CodecConfig):
        files = {"codec.model_file": config.model_file, "codec.config_file": config.config_file}
        missing = [f"{key}={path!r}" for key, path in files.items() if not path or not Path(path).is_file()]
        if missing:
            raise FileNotFoundError(
                "the espnet codec backend needs a local ESPnet-Codec checkpoint and its config "
                f"(e.g. ftshijt/espnet_codec_dac_large_v1.4_360epoch); not found: {', '.join(missing)}"
            )
        task = import_task("gan_codec", "GANCodecTask", "the espnet codec backend")
        self.device = resolve_device(config.device)
        model, _ = load_espnet_model(task, config.config_file, config.model_file, str(self.device))
        self.config = config
        self._generator = model.codec.generator
        meta = model.codec.meta_info()
        if meta["fs"] != SAMPLE_RATE or meta["frame_shift"] != HOP_LENGTH or meta["num_streams"] < N_CODEBOOKS:
            raise ValueError(
                f"{config.model_file}: codec runs at {meta['fs']} Hz with hop {meta['frame_shift']} and "
                f"{meta['num_streams']} codebooks; svslm needs {SAMPLE_RATE} Hz, hop {HOP_LENGTH}, >= {N_CODEBOOKS}"
            )
        self.codebook_size = int(meta["code_size_per_stream"][0])
        if self.codebook_size != config.codebook_size:
            raise ValueError(
                f"{config.model_file}: codebooks have {self.codebook_size} codes, config says {config.codebook_size}"
            )
        quantizer = self._generator.quantizer
        layers = quantizer.vq.layers[:N_CODEBOOKS]
        uninitialised = [i for i, layer in enumerate(layers) if not bool(layer._codebook.inited.item())]
        if uninitialised:
            raise ValueError(
                f"{config.model_file}: codebooks {uninitialised} were never initialised (inited = 0: the "
                "checkpoint was saved before any training step, or is not this codec's)"
            )
        # the bandwidth of exactly 8 codebooks at this frame rate (ESPnet: floor(bw / per-codebook bw))
        self.target_bandwidth = N_CODEBOOKS * quantizer.get_bandwidth_per_quantizer(self._generator.frame_rate)
        with torch.no_grad():
            probe = quantizer.decode(torch.zeros(N_CODEBOOKS, 1, 1, dtype=torch.long, device=self.device))
        self.embed_dim = int(probe.shape[1])  # quantizer output [B, D, T]

    @torch.no_grad()
    def encode(self, wav: np.ndarray) -> np.ndarray:
        n_frames = len(wav) // HOP_LENGTH
        x = torch.as_tensor(np.asarray(wav, dtype=np.float32), device=self.device).view(1, 1, -1)
        codes = self._generator.encode(x, target_bw=self.target_bandwidth)  # [n_q, B, T']
        if codes.shape[0] != N_CODEBOOKS:
            raise ValueError(f"{self.config.model_file}: codec gave {codes.shape[0]} codebooks at "
                             f"{self.target_bandwidth} kbps, svslm needs {N_CODEBOOKS}")
        codes = codes[:, 0].T[:n_frames]  # [T, 8]; the encoder pads the last partial frame
        if len(codes) < n_frames:
            raise ValueError(f"codec gave {len(codes)} frames for {len(wav)} samples (expected {n_frames})")
        return codes.cpu().numpy().astype(np.int64)

    @torch.no_grad()
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = torch.as_tensor(tokens, dtype=torch.long, device=self.device)
        self._check_tokens(tokens)
        z = self._generator.quantizer.decode(tokens.permute(2, 0, 1))  # [8, B, T] -> [B, D, T]
        return z.transpose(1, 2)

    @torch.no_grad()
    def decode_embedding(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        z = torch.as_tensor(np.asarray(z) if not isinstance(z, torch.Tensor) else z, dtype=torch.float32)
        n = z.shape[0] * HOP_LENGTH
        wav = self._generator.decoder(z.T[None].to(self.device))[0, 0].cpu().numpy()  # [1, D, T] -> [1, 1, N]
        return np.pad(wav, (0, max(0, n - wav.size)))[:n].astype(np.float32)


def load_codec(directory: str | Path) -> CodecTokenizer:
    """The codec stage 2 fitted or configured, from `directory` (e.g. dump/tokenizers/codec)."""
    directory = Path(directory)
    if not (directory / "config.yaml").is_file():
        raise FileNotFoundError(f"{directory}: no codec here (config.yaml missing; stage 2 writes it)")
    config = load_config(directory / "config.yaml", CodecConfig)
    if config.backend == "mini":
        return MiniCodec.load(directory, config)
    return EspnetCodec(config)
