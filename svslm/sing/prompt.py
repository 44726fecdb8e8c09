"""The speaker prompt of a new song: `codec_ssl` frames [P, 9] of the chosen voice.

Either a training singer (the codec_ssl frames stage 2 wrote for one of their training
utterances) or any recording (encoded here with stage 2's codec and SSL tokenizers). Either way
the frames are tiled and cropped to the prompt length the LM was trained with, read from the
training prompts themselves (`dump/train/prompt.scp`), as stage 2 does for every utterance.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np

from svslm.tokenize.prompts import fit_length
from svslm.utils.audio import SAMPLE_RATE, load_wav
from svslm.utils.fileio import read_kaldi_map

log = logging.getLogger(__name__)



class UnknownSingerError(ValueError):
    """A singer id that is not in the training data; the message lists the known ones."""


@dataclass
class SpeakerPrompt:
    tokens: np.ndarray  # int32 [P, 9]: column 0 SSL ids, columns 1..8 codec ids (local ids)
    audio: np.ndarray | None  # float32 16 kHz recording the prompt comes from (for flows with a mel prompt)
    source: str  # which utterance or file, for the log


def prompt_length(dump_dir: Path) -> int:
    """Frames of the training prompts (every entry of prompt.scp has the same length)."""
    scp = dump_dir / "train" / "prompt.scp"
    if not scp.is_file():
        raise FileNotFoundError(f"{scp}: missing (stage 2 writes the training prompts; their length is the LM's)")
    first = next(iter(read_kaldi_map(scp).values()))
    return int(kaldiio.load_mat(first).shape[0])


def known_singers(data_dir: Path) -> dict[str, list[str]]:
    """singer -> training utterances, from stage 1's `data/train/spk2utt`."""
    spk2utt = data_dir / "train" / "spk2utt"
    if not spk2utt.is_file():
        raise FileNotFoundError(f"{spk2utt}: missing (stage 1 writes it; singers come from the training data)")
    return {spk: utts.split() for spk, utts in read_kaldi_map(spk2utt).items()}


def singer_prompt(singer: str, data_dir: Path, dump_dir: Path) -> SpeakerPrompt:
    """The prompt of training singer `singer`: their longest training utterance (most material
    before tiling; deterministic), tiled/cropped to the prompt length."""
    singers = known_singers(data_dir)
    if singer not in singers:
        raise UnknownSingerError(f"unknown singer {singer!r}; the training data has: {', '.join(sorted(singers))}")
    scp = read_kaldi_map(dump_dir / "train" / "codec_ssl.scp")
    candidates = [u for u in singers[singer] if u in scp]
    if not candidates:
        raise FileNotFoundError(f"no codec_ssl frames of singer {singer!r} in {dump_dir / 'train' / 'codec_ssl.scp'}")
    lengths_file = dump_dir / "train" / "utt2num_frames"
    if not lengths_file.is_file():
        raise FileNotFoundError(f"{lengths_file} is missing: re-run stage 2, which writes it")
    lengths = {u: int(n) for u, n in read_kaldi_map(lengths_file).items()}
    utt = max(candidates, key=lambda u: (lengths.get(u, 0), u))
    tokens = np.asarray(kaldiio.load_mat(scp[utt]), dtype=np.int32)
    wav_scp = data_dir / "train" / "wav.scp"
    wavs = read_kaldi_map(wav_scp) if wav_scp.is_file() else {}
    audio = load_wav(wavs[utt], SAMPLE_RATE) if utt in wavs and Path(wavs[utt]).is_file() else None
    return SpeakerPrompt(fit_length(tokens, prompt_length(dump_dir)), audio, utt)


def recording_prompt(wav_path: str | Path, codec, ssl_tokenizer, length: int) -> SpeakerPrompt:
    """The prompt of any recording: codec tokens and SSL ids of its 16 kHz mono audio, trimmed to
    the shorter (as stage 2 does), tiled/cropped to `length` frames."""
    audio = load_wav(wav_path, SAMPLE_RATE, mono=True)
    codes = np.asarray(codec.encode(audio))  # [T, 8]
    ssl_ids = np.asarray(ssl_tokenizer.encode(audio))  # [T']
    n = min(len(codes), len(ssl_ids))
    if n == 0:
        raise ValueError(f"{wav_path}: too short for a speaker prompt")
    tokens = np.concatenate([ssl_ids[:n, None], codes[:n]], axis=1).astype(np.int32)  # [T, 9]
    return SpeakerPrompt(fit_length(tokens, length), audio, str(wav_path))
