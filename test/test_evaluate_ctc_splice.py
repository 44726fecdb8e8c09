"""Note splicing for the CTC recogniser (svslm.evaluate.ctc_splice): what a splice is made of, and
that training with it runs."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from svslm.evaluate.ctc_asr import (
    AsrConfig,
    CtcModelConfig,
    CtcPhoneModel,
    CtcTrainConfig,
)
from svslm.evaluate.ctc_splice import NoteSplicer
from svslm.evaluate.ctc_train import train_ctc
from svslm.utils.audio import SAMPLE_RATE, save_wav
from svslm.utils.fileio import write_kaldi_map
from svslm.utils.mel import MelConfig

# Two singers, notes 0.4 s long (20 frames); each note's phones name its singer, utterance and note.
NOTES = {
    "a#1": ["SP", "b a", "m i"], "a#2": ["d e", "AP", "l u", "SP"], "b#1": ["g o", "n v"],
}


def _notes(utt: str) -> list[dict]:
    return [{"start": 0.4 * k, "end": 0.4 * (k + 1), "phns": phns.split()} for k, phns in enumerate(NOTES[utt])]


@pytest.fixture
def split(tmp_path):
    rng = np.random.default_rng(0)
    wavs = {}
    for utt, notes in NOTES.items():
        wavs[utt] = str(tmp_path / f"{utt}.wav")
        save_wav(wavs[utt], 0.1 * rng.standard_normal(int(0.4 * len(notes) * SAMPLE_RATE)), SAMPLE_RATE)
    (tmp_path / "score.json").write_text(json.dumps({"version": 1, "utts": {u: {"notes": _notes(u)} for u in NOTES}}))
    write_kaldi_map(tmp_path / "utt2spk", {u: u.split("#")[0] for u in NOTES})
    write_kaldi_map(tmp_path / "wav.scp", wavs)
    return tmp_path, wavs


def test_a_splice_joins_random_notes_of_the_same_singer(split):
    split_dir, wavs = split
    splicer = NoteSplicer(split_dir, wavs, MelConfig())
    note_of = {}  # (utt, note) -> log-mel frames
    for utt, notes in NOTES.items():
        mel = splicer.log_mel(utt)
        for k in range(len(notes)):
            note_of[(utt, k)] = mel[20 * k:20 * (k + 1)]
    rng = random.Random(0)
    orders = set()
    for _ in range(20):
        mel, phones = splicer.splice("a#1", rng)
        assert mel.shape == (3 * 20, 80)  # as many notes as a#1 has
        # Every 20-frame block is one note of singer a (never b's), and the targets are its sung phones.
        blocks = []
        for j in range(3):
            match = [key for key, frames in note_of.items() if torch.equal(frames, mel[20 * j:20 * (j + 1)])]
            assert len(match) == 1 and match[0][0].startswith("a#"), match
            blocks.append(match[0])
        expected = [p for utt, k in blocks for p in NOTES[utt][k].split() if p not in ("SP", "AP")]
        assert phones == expected and phones  # never an all-rest splice
        orders.add(tuple(blocks))
    assert len(orders) > 5  # new phone orders, not the sung one


def test_splicing_needs_note_boundaries_and_names_what_is_missing(split):
    split_dir, wavs = split
    (split_dir / "score.json").write_text(json.dumps({"version": 1, "utts": {"a#1": {"notes": _notes("a#1")}}}))
    with pytest.raises(ValueError, match=r"2 utterance\(s\) without notes.*a#2, b#1"):
        NoteSplicer(split_dir, wavs, MelConfig())
    (split_dir / "utt2spk").unlink()
    with pytest.raises(FileNotFoundError, match="utt2spk"):
        NoteSplicer(split_dir, wavs, MelConfig())


@pytest.mark.slow
def test_training_with_splices_runs_and_selects_on_dev(split, tmp_path):
    split_dir, _ = split
    data = tmp_path / "data"
    data.mkdir()
    (data / "train").symlink_to(split_dir)
    write_kaldi_map(split_dir / "text", {u: " ".join(NOTES[u]) for u in NOTES})
    cfg = AsrConfig(model=CtcModelConfig(conv_layers=3, conv_channels=8, conv_stride=2, rnn_layers=0),
                    train=CtcTrainConfig(epochs=2, batch_size=2, splice_probability=1.0, valid_every=1, num_threads=1))
    results = train_ctc(cfg, data, tmp_path / "exp")
    assert [h["epoch"] for h in results["history"]] == [1, 2] and results["dev_is_train"]


def test_more_convolutions_keep_the_two_layer_parameter_names():
    """An `asr_train` dir written before `conv_layers` existed (two convolutions) still loads."""
    two = CtcPhoneModel(80, 10, CtcModelConfig(conv_layers=2, rnn_layers=0)).state_dict()
    assert [k for k in two if k.startswith("conv.")] == ["conv.0.weight", "conv.0.bias", "conv.3.weight", "conv.3.bias"]
    four = CtcPhoneModel(80, 10, CtcModelConfig(conv_layers=4, conv_stride=2, rnn_layers=0))
    assert len([m for m in four.conv if isinstance(m, torch.nn.Conv1d)]) == 4
    log_probs, lengths = four(torch.zeros(1, 101, 20), torch.tensor([101]))  # 20 MFCCs in
    assert log_probs.shape[1] == 51 and lengths.tolist() == [51]
    with pytest.raises(ValueError, match="conv_layers must be at least 2"):
        CtcPhoneModel(80, 10, CtcModelConfig(conv_layers=1))
