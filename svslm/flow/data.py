"""Training examples for the flow: target, codec-token condition, score pitch, singer prompt.

Reads the files of docs/formats.md: `data/<split>/{wav.scp,score.json}`, the ground-truth tokens
`dump/<split>/codec_ssl.scp` (+ `utt2num_frames`, `utt2prompt`) and the LM's decodes
`<lm_decode_dir>/<split>/codec_ssl.scp`. Every utterance is checked when a split is loaded; a bad
one (missing from a file, lengths too far apart, a score that does not align) is reported by name
and left out, and the good ones are all kept.

Codec tokens leave this module as integers: the codec embeds them in the training loop (it is a
model, best kept out of the loader's worker processes).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from svslm.flow.model import FlowModelConfig
from svslm.tokenize.svs_lb import AlignmentError, phones_to_frames
from svslm.utils.audio import load_wav
from svslm.utils.fileio import read_kaldi_map
from svslm.utils.mel import MelConfig, mel_spectrogram

log = logging.getLogger("svslm")

N_CODEBOOKS = 8  # codec columns 1..8 of codec_ssl (column 0 is the SSL token)


@dataclass
class FlowDataConfig:
    train_split: str = "train"  # split the flow trains on
    valid_split: str = "dev"  # split for the validation loss
    batch_size: int = 64  # utterances per batch, over all processes together (the paper's code: 64)
    max_frames: int = 0  # random crop of training utterances to this many frames; 0 = whole utterances
    max_length_mismatch: int = 4  # frames the audio, the codec tokens and the score may differ by
    num_workers: int = 0  # DataLoader worker processes
    stats_utts: int = 500  # training utterances used for the normalisation statistics
    # Keep each wav's mel (target and prompt) in memory once computed, so later epochs read it back
    # (mini: the mels were a quarter of a flow's training time). Only in the process that loads
    # (with num_workers > 0 each worker's cache ends with its epoch); 100 h of 80-bin mels at 50
    # frames/s take ~6 GB per process, so off unless the corpus is small.
    cache_mels: bool = False


@dataclass
class FlowExample:
    utt: str
    wav: str  # audio path (the mel target, when the output is mel)
    n_frames: int  # frames of the target
    cond_tokens: str  # kaldiio address of the condition's codec_ssl array
    target_tokens: str | None  # kaldiio address of the ground-truth codec_ssl (output codec_emb)
    phones: list[dict] | None  # score.json phones (Flow2)
    prompt_wav: str | None  # audio of the prompt utterance (speaker prompt)


def _require(path: Path, why: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (needed for {why})")
    return path


def _audio_frames(path: str, mel: MelConfig) -> int:
    info = sf.info(path)
    n_samples = info.frames * mel.sample_rate // info.samplerate
    return n_samples // mel.hop_length


def load_flow_examples(
    split: str,
    model_cfg: FlowModelConfig,
    data_cfg: FlowDataConfig,
    data_dir: str | Path,
    dump_dir: str | Path,
    lm_decode_dir: str | Path | None,
) -> tuple[list[FlowExample], list[str]]:
    """Examples of `split` and one message per utterance that had to be left out."""
    data_split, dump_split = Path(data_dir) / split, Path(dump_dir) / split
    wavs = read_kaldi_map(_require(data_split / "wav.scp", "the audio"))
    needs_gt = model_cfg.output == "codec_emb" or model_cfg.condition_source == "ground_truth"
    gt_tokens = read_kaldi_map(_require(dump_split / "codec_ssl.scp", "ground-truth codec tokens")) if needs_gt else {}
    gt_frames = read_kaldi_map(_require(dump_split / "utt2num_frames", "codec frame counts")) if needs_gt else {}
    if model_cfg.condition_source == "lm_decode":
        if lm_decode_dir is None:
            raise ValueError("condition_source lm_decode needs the LM's decode directory (--lm_decode_dir)")
        decodes = read_kaldi_map(_require(Path(lm_decode_dir) / split / "codec_ssl.scp", f"the LM's decodes of {split}"))
    else:
        decodes = gt_tokens
    scores = {}
    if model_cfg.use_pitch:
        with open(_require(data_split / "score.json", "the pitch condition (Flow2)"), encoding="utf-8") as f:
            scores = json.load(f)["utts"]
    prompts = read_kaldi_map(_require(dump_split / "utt2prompt", "the speaker prompt")) if model_cfg.use_prompt else {}

    examples, bad = [], []
    tolerance = data_cfg.max_length_mismatch
    for utt, wav in wavs.items():
        try:
            for what, table in (("codec_ssl.scp", gt_tokens if needs_gt else None), ("LM decodes", decodes),
                                ("score.json", scores if model_cfg.use_pitch else None),
                                ("utt2prompt", prompts if model_cfg.use_prompt else None)):
                if table is not None and utt not in table:
                    raise ValueError(f"missing from {what}")
            if model_cfg.output == "mel":
                n_frames = _audio_frames(wav, model_cfg.mel)
            else:
                n_frames = int(gt_frames[utt])
            cond_frames = kaldiio.load_mat(decodes[utt]).shape[0]
            lengths = {"target": n_frames, "condition": cond_frames}
            if needs_gt:
                lengths["ground-truth tokens"] = int(gt_frames[utt])
            if max(lengths.values()) - min(lengths.values()) > tolerance:
                raise ValueError(f"frame counts differ by more than {tolerance}: {lengths}")
            phones = None
            if model_cfg.use_pitch:
                phones = scores[utt]["phones"]
                phones_to_frames(phones, n_frames=n_frames, max_mismatch=tolerance, where=f"{split}/{utt}")
            prompt_wav = None
            if model_cfg.use_prompt:
                prompt_utt = prompts[utt]
                if prompt_utt not in wavs:
                    raise ValueError(f"prompt utterance {prompt_utt} is not in {split}/wav.scp")
                prompt_wav = wavs[prompt_utt]
            examples.append(FlowExample(utt, wav, n_frames, decodes[utt], gt_tokens.get(utt), phones, prompt_wav))
        except (ValueError, KeyError, AlignmentError, OSError, RuntimeError) as err:
            bad.append(f"{split}/{utt}: {err}")
    for message in bad:
        log.warning("left out %s", message)
    if not examples:
        raise ValueError(f"no usable utterance in {split} ({len(bad)} left out; first: {bad[:3]})")
    return examples, bad


def resample_frames(x: np.ndarray, n_frames: int) -> np.ndarray:
    """Nearest-frame resampling of x [T', ...] to [n_frames, ...]: the length regulator for a
    condition a frame or two longer or shorter than its target (at equal rates, an identity)."""
    if x.shape[0] == n_frames:
        return x
    idx = np.minimum((np.arange(n_frames) + 0.5) * x.shape[0] / n_frames, x.shape[0] - 1).astype(np.int64)
    return x[idx]


def tile_to(x: np.ndarray, n_frames: int) -> np.ndarray:
    """x [C, T] repeated along time then cropped to [C, n_frames], as the dump's prompts are."""
    reps = -(-n_frames // x.shape[-1])
    return np.tile(x, (1, reps))[:, :n_frames]


def wav_mel(path: str, mel: MelConfig) -> np.ndarray:
    """The mel [n_mels, T] of the wav `path`, resampled to the mel's rate."""
    return mel_spectrogram(load_wav(path, mel.sample_rate), mel).numpy()


def prompt_mel(mel: np.ndarray, n_frames: int) -> torch.Tensor:
    """The speaker prompt of the flow: a mel [n_mels, T] tiled or cropped to [n_mels, n_frames]."""
    return torch.from_numpy(tile_to(mel, n_frames))


def prompt_mel_from_wav(path: str, mel: MelConfig, n_frames: int) -> torch.Tensor:
    """The speaker prompt of the flow from the wav `path` (see `prompt_mel`)."""
    return prompt_mel(wav_mel(path, mel), n_frames)


def _tokens(address: str) -> np.ndarray:
    """Codec columns 1..8 of a codec_ssl array: int64 [T, 8]."""
    return np.asarray(kaldiio.load_mat(address))[:, 1 : 1 + N_CODEBOOKS].astype(np.int64)


class FlowDataset(Dataset):
    """One item per example: dict of numpy/tensor arrays of one utterance (see `__getitem__`)."""

    def __init__(self, examples: list[FlowExample], model_cfg: FlowModelConfig, max_frames: int = 0, seed: int = 0,
                 cache_mels: bool = False):
        self.examples = examples
        self.cfg = model_cfg
        self.max_frames = max_frames
        self.seed = seed
        self.epoch = 0
        self._mels: dict[str, np.ndarray] | None = {} if cache_mels else None  # wav path -> mel [n_mels, T]

    def set_epoch(self, epoch: int) -> None:
        """Crops are drawn from (seed, epoch, index), the same in any worker and after a resume."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.examples)

    def _mel(self, path: str) -> np.ndarray:
        """The mel [n_mels, T] of the wav `path` (never modified by the caller: it may be cached)."""
        if self._mels is not None and path in self._mels:
            return self._mels[path]
        mel = wav_mel(path, self.cfg.mel)
        if self._mels is not None:
            self._mels[path] = mel
        return mel

    def lengths(self) -> list[int]:
        return [min(ex.n_frames, self.max_frames) if self.max_frames else ex.n_frames for ex in self.examples]

    def __getitem__(self, index: int) -> dict:
        ex = self.examples[index]
        t = ex.n_frames
        item = {"utt": ex.utt, "cond_tokens": resample_frames(_tokens(ex.cond_tokens), t)}  # [T, 8]
        if self.cfg.output == "mel":
            mel = self._mel(ex.wav)
            item["target_mel"] = np.pad(mel, ((0, 0), (0, max(0, t - mel.shape[1]))), mode="edge")[:, :t]
        else:
            item["target_tokens"] = resample_frames(_tokens(ex.target_tokens), t)
        if ex.phones is not None:
            item["midi"] = phones_to_frames(ex.phones, n_frames=t, max_mismatch=t)[1]
        if self.max_frames and t > self.max_frames:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            start = int(rng.integers(0, t - self.max_frames + 1))
            for key in ("cond_tokens", "target_tokens", "midi"):
                if key in item:
                    item[key] = item[key][start : start + self.max_frames]
            if "target_mel" in item:
                item["target_mel"] = item["target_mel"][:, start : start + self.max_frames]
        if ex.prompt_wav is not None:
            item["prompt_mel"] = prompt_mel(self._mel(ex.prompt_wav), self.cfg.prompt_frames)
        return item


def collate(items: list[dict]) -> dict:
    """Pad a list of items to the longest: mask [B, T] bool, cond_tokens [B, T, 8] long,
    target_mel [B, n_mels, T] or target_tokens [B, T, 8], midi [B, T], prompt_mel [B, n_mels, P]."""
    lengths = [len(it["cond_tokens"]) for it in items]
    b, t = len(items), max(lengths)
    batch = {"utts": [it["utt"] for it in items], "mask": torch.zeros(b, t, dtype=torch.bool)}
    batch["cond_tokens"] = torch.zeros(b, t, N_CODEBOOKS, dtype=torch.long)
    if "target_mel" in items[0]:
        batch["target_mel"] = torch.zeros(b, items[0]["target_mel"].shape[0], t)
    if "target_tokens" in items[0]:
        batch["target_tokens"] = torch.zeros(b, t, N_CODEBOOKS, dtype=torch.long)
    if "midi" in items[0]:
        batch["midi"] = torch.zeros(b, t, dtype=torch.long)
    for i, (it, n) in enumerate(zip(items, lengths)):
        batch["mask"][i, :n] = True
        batch["cond_tokens"][i, :n] = torch.from_numpy(it["cond_tokens"])
        if "target_mel" in it:
            batch["target_mel"][i, :, :n] = torch.from_numpy(it["target_mel"])
        if "target_tokens" in it:
            batch["target_tokens"][i, :n] = torch.from_numpy(it["target_tokens"])
        if "midi" in it:
            batch["midi"][i, :n] = torch.from_numpy(it["midi"])
    if "prompt_mel" in items[0]:
        batch["prompt_mel"] = torch.stack([it["prompt_mel"] for it in items])
    return batch


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, shuffle: bool = True) -> list[list[int]]:
    """Batches of similar length (little padding) in a shuffled order fixed by (seed, epoch), so
    a resumed run can skip exactly the batches it has done. Hand-written: torch has no
    length-bucketing sampler, and the order must be reproducible for resuming."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        perm = torch.randperm(len(batches), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        batches = [batches[i] for i in perm.tolist()]
    return batches
