"""Splice augmentation for the phoneme CTC recogniser: new training utterances glued from notes.

A corpus in which every singer sings the same few songs (ACE-Opencpop, the mini corpora) holds few
phone orders: a recogniser learns the lyrics of its training songs and fails on new ones (the zoo
recogniser, 32 phrases sung by 16 voices: without splicing 80% PER on the mini corpus's test set,
with it 25%; local/mini_zoo/README.md). A splice cuts the training utterances of one singer at
the note boundaries of `score.json` and joins as many randomly drawn notes as the utterance it
replaces has; the targets are the notes' sung phones in the new order. An initial stays with its final (both are in one note), so
only the cuts between notes are new. Log-mels are joined, not waveforms: the recogniser's
features are normalised after the join, as for a real utterance.

Memory: the log-mel of every training utterance is kept once read (n_mels floats per frame; the
zoo corpus's 40 minutes take 40 MB).
"""
from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from svslm.evaluate.per import sung_phones
from svslm.utils.audio import load_wav
from svslm.utils.fileio import read_kaldi_map
from svslm.utils.mel import MelConfig, mel_spectrogram


@dataclass
class NoteChunk:
    utt: str
    start_frame: int
    end_frame: int
    phones: list[str]  # sung phones of the note (none for a rest)


class NoteSplicer:
    """Random splices of the notes of `<split_dir>/score.json`, singer by singer (`utt2spk`)."""

    def __init__(self, split_dir: Path, wav_paths: dict[str, str], mel_cfg: MelConfig):
        score_path, spk_path = split_dir / "score.json", split_dir / "utt2spk"
        for path in (score_path, spk_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: needed by train.splice_probability > 0 (note boundaries, singers)")
        with open(score_path, encoding="utf-8") as f:
            scores = json.load(f)["utts"]
        utt2spk = read_kaldi_map(spk_path)
        missing = sorted(u for u in wav_paths if u not in scores or u not in utt2spk)
        if missing:
            raise ValueError(f"{split_dir}: {len(missing)} utterance(s) without notes in score.json or a "
                             f"singer in utt2spk: {', '.join(missing[:10])}")
        self.wav_paths, self.mel_cfg = wav_paths, mel_cfg
        fps = mel_cfg.frame_rate
        self.notes_per_utt: dict[str, int] = {}
        self.chunks_of_singer: dict[str, list[NoteChunk]] = defaultdict(list)
        for utt in sorted(wav_paths):
            notes = scores[utt]["notes"]
            self.notes_per_utt[utt] = len(notes)
            for note in notes:
                start, end = round(note["start"] * fps), round(note["end"] * fps)
                if end > start:
                    self.chunks_of_singer[utt2spk[utt]].append(NoteChunk(utt, start, end, sung_phones(note["phns"])))
        self.singer = {u: utt2spk[u] for u in wav_paths}
        self._log_mels: dict[str, torch.Tensor] = {}

    def log_mel(self, utt: str) -> torch.Tensor:
        """[T, n_mels] of one training utterance, computed once."""
        if utt not in self._log_mels:
            wav = load_wav(self.wav_paths[utt], self.mel_cfg.sample_rate)
            self._log_mels[utt] = mel_spectrogram(np.asarray(wav, dtype=np.float32), self.mel_cfg).T
        return self._log_mels[utt]

    def splice(self, utt: str, rng: random.Random) -> tuple[torch.Tensor, list[str]]:
        """(log-mel [T, n_mels], sung phones) of as many random notes of `utt`'s singer as `utt` has."""
        chunks = self.chunks_of_singer[self.singer[utt]]
        while True:
            picked = [chunks[rng.randrange(len(chunks))] for _ in range(self.notes_per_utt[utt])]
            phones = [p for c in picked for p in c.phones]
            if phones:  # CTC needs a target; all-rest draws are redrawn
                break
        frames = [self.log_mel(c.utt)[c.start_frame:c.end_frame] for c in picked]
        return torch.cat(frames), phones
