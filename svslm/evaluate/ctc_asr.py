"""A small phoneme CTC recogniser, trained on a corpus's training audio (stage 6 of run.sh, or the
mini zoo's, local/mini_zoo, on a synthetic corpus of other songs and singers).

It is the PER backend that works offline: no published singing ASR ships its weights in a pip
package. Log-mel (svslm.utils.mel, 50 fps) -> MFCC normalised per utterance -> 1-D convolutions ->
a bidirectional GRU (or none, on small corpora) -> linear -> CTC over the sung phones (rests removed, see `per.sung_phones`),
greedy decoding. Its PER on the ground-truth test audio is the ceiling every system's PER is read
against: a high ceiling means the recogniser, not the synthesis, limits the number.

A model directory holds `config.yaml` (AsrConfig), `tokens.txt` (index = output class, 0 = blank),
`model.pth` (the best state dict by dev PER; fp16 in the zoo's export, loaded into fp32) and
`results.json` (dev and test PER).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft
import torch
from torch import nn

from svslm.data.phonemes import PHONEMES, is_rest
from svslm.utils.config import load_config
from svslm.utils.mel import MelConfig, mel_spectrogram

BLANK = "<blank>"
# Output classes: the CTC blank, then every sung phone of the inventory in its fixed order.
TOKENS: tuple[str, ...] = (BLANK,) + tuple(p for p in PHONEMES if not is_rest(p))


@dataclass
class CtcModelConfig:
    n_cepstra: int = 20  # input: first DCT coefficients of the log-mel (MFCC); 0 = the log-mel itself
    conv_layers: int = 2  # stacked 1-D convolutions (at least 2): more see a wider context
    conv_channels: int = 128  # channels of every convolution over mel frames
    conv_kernel: int = 5  # frames seen by each convolution (odd)
    conv_stride: int = 1  # stride of the second convolution: 2 halves the GRU's frame rate (25 fps)
    rnn_hidden: int = 128  # GRU units per direction
    rnn_layers: int = 2  # stacked bidirectional GRU layers (0 = none: convolutions only)
    dropout: float = 0.1  # between layers, training only


@dataclass
class CtcTrainConfig:
    epochs: int = 40  # passes over the training split
    batch_size: int = 8  # utterances per step
    lr: float = 2e-3  # Adam learning rate (constant)
    grad_clip: float = 5.0  # max gradient norm
    time_mask_frames: int = 10  # SpecAugment-style: width of one random time mask per utterance (0 = off)
    # Share of training samples replaced by a splice (svslm.evaluate.ctc_splice): as many notes as the
    # utterance has, drawn at random from all training utterances of its singer, their log-mels joined.
    # New phone orders every epoch keep a model from memorising the lyrics of few songs. 0 = off.
    splice_probability: float = 0.0
    valid_every: int = 5  # epochs between dev evaluations (the best dev PER is kept)
    seed: int = 0  # shuffling, initialisation and masking
    num_threads: int = 2  # torch CPU threads
    num_workers: int = 0  # DataLoader processes reading audio (0 = in the training process)


@dataclass
class AsrConfig:
    mel: MelConfig = field(default_factory=MelConfig)  # features; the recipe's one mel definition
    model: CtcModelConfig = field(default_factory=CtcModelConfig)
    train: CtcTrainConfig = field(default_factory=CtcTrainConfig)


def asr_features(wav: np.ndarray, mel_cfg: MelConfig, n_cepstra: int) -> torch.Tensor:
    """Log-mel [T, n_mels] or its first `n_cepstra` DCT coefficients (MFCC) [T, n_cepstra],
    mean and variance normalised per utterance."""
    return normalised_features(mel_spectrogram(np.asarray(wav, dtype=np.float32), mel_cfg).T, n_cepstra)


def normalised_features(log_mel: torch.Tensor, n_cepstra: int) -> torch.Tensor:
    """`asr_features` of a log-mel [T, n_mels] already computed.

    The DCT truncation keeps the spectral envelope (the phone) and drops the harmonic ripple (the
    pitch): with few training songs every phone is sung on few notes, and a recogniser that sees
    the harmonics learns the melody instead of the phones. Per-utterance normalisation makes it
    indifferent to level and channel differences between recordings and syntheses.
    """
    feats = log_mel
    if n_cepstra > 0:
        feats = torch.from_numpy(scipy.fft.dct(feats.numpy(), type=2, norm="ortho", axis=1)[:, :n_cepstra])
    return (feats - feats.mean(0)) / (feats.std(0) + 1e-5)


class CtcPhoneModel(nn.Module):
    def __init__(self, n_mels: int, n_tokens: int, cfg: CtcModelConfig):
        super().__init__()
        n_in = cfg.n_cepstra or n_mels
        if cfg.conv_layers < 2:
            raise ValueError(f"model.conv_layers must be at least 2 (the second one strides), got {cfg.conv_layers}")
        layers: list[nn.Module] = []
        for i in range(cfg.conv_layers):  # conv, ReLU, dropout; only the second convolution strides
            layers += [
                nn.Conv1d(n_in if i == 0 else cfg.conv_channels, cfg.conv_channels, cfg.conv_kernel,
                          stride=cfg.conv_stride if i == 1 else 1, padding=cfg.conv_kernel // 2),
                nn.ReLU(),
                nn.Dropout(cfg.dropout),
            ]
        self.conv = nn.Sequential(*layers)
        self.stride = cfg.conv_stride
        # rnn_layers 0 = convolutions only: a phone is recognised from its local context alone, which
        # generalises to unseen phone sequences when the training songs are few (no memorised lyrics).
        self.rnn = nn.GRU(
            cfg.conv_channels, cfg.rnn_hidden, num_layers=cfg.rnn_layers, batch_first=True,
            bidirectional=True, dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0,
        ) if cfg.rnn_layers > 0 else None
        self.out = nn.Linear(2 * cfg.rnn_hidden if self.rnn else cfg.conv_channels, n_tokens)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths + self.stride - 1) // self.stride  # a padded strided conv keeps ceil(T / stride)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats [B, T, F] (F = n_cepstra or n_mels), lengths [B] -> (log-probs [B, T', V], lengths [B]), T' = ceil(T / stride)."""
        x = self.conv(feats.transpose(1, 2)).transpose(1, 2)  # [B, T', C]
        n_frames = x.shape[1]
        out_lengths = self.output_lengths(lengths)
        if self.rnn is not None:
            packed = nn.utils.rnn.pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
            x, _ = self.rnn(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=n_frames)
        return self.out(x).log_softmax(-1), out_lengths  # [B, T', V], [B]


def greedy_decode(log_probs: torch.Tensor, length: int) -> list[str]:
    """Best path of one utterance [T, V]: merge repeats, drop blanks."""
    best = log_probs[:length].argmax(-1).tolist()
    phones, prev = [], 0
    for idx in best:
        if idx != prev and idx != 0:
            phones.append(TOKENS[idx])
        prev = idx
    return phones


class CtcRecognizer:
    """A trained model ready to transcribe 16 kHz waveforms into phone lists."""

    name = "ctc"

    def __init__(self, model: CtcPhoneModel, cfg: AsrConfig, model_dir: Path):
        self.model = model.eval()
        self.cfg = cfg
        self.model_dir = model_dir

    @torch.inference_mode()
    def recognize(self, wav: np.ndarray) -> list[str]:
        feats = asr_features(wav, self.cfg.mel, self.cfg.model.n_cepstra)
        if feats.shape[0] == 0:
            return []
        log_probs, lengths = self.model(feats[None], torch.tensor([feats.shape[0]]))
        return greedy_decode(log_probs[0], int(lengths[0]))


def load_ctc_recognizer(model_dir: str | Path) -> CtcRecognizer:
    """Load `asr_train`'s output directory; refuse one whose token list differs from ours."""
    model_dir = Path(model_dir)
    for name in ("config.yaml", "tokens.txt", "model.pth"):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir}: no {name}; train it with `python -m svslm.bin.asr_train`")
    tokens = tuple((model_dir / "tokens.txt").read_text(encoding="utf-8").split())
    if tokens != TOKENS:
        raise ValueError(f"{model_dir}/tokens.txt differs from the phone inventory of svslm.data.phonemes")
    cfg = load_config(model_dir / "config.yaml", AsrConfig)
    model = CtcPhoneModel(cfg.mel.n_mels, len(TOKENS), cfg.model)
    model.load_state_dict(torch.load(model_dir / "model.pth", map_location="cpu", weights_only=True))
    return CtcRecognizer(model, cfg, model_dir)
