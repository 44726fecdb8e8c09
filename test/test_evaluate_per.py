"""PER: known edit distances, the rest rule, pinyin -> phones, recogniser loading and CTC training."""
from __future__ import annotations

import json

import pytest
import torch

from svslm.evaluate.ctc_asr import TOKENS, AsrConfig, CtcModelConfig, CtcTrainConfig
from svslm.evaluate.ctc_train import read_split, train_ctc
from svslm.evaluate.na import MetricUnavailable
from svslm.evaluate.per import (
    AsrBackendConfig,
    load_recognizer,
    phone_errors,
    sung_phones,
    text_to_phones,
)
from svslm.testing.evaluate import make_phone_corpus
from svslm.utils.audio import load_wav


@pytest.mark.parametrize(
    "hyp, ref, edits",
    [
        ("n i h ao", "n i h ao", 0),
        ("n i h a", "n i h ao", 1),  # one substitution
        ("n i", "n i h ao", 2),  # two deletions
        ("n i h ao m a", "n i h ao", 2),  # two insertions
        ("", "n i h ao", 4),  # nothing recognised: every phone deleted
        ("h ao n i", "n i h ao", 4),  # swapped syllables: 4 substitutions (no transposition op)
    ],
)
def test_phone_errors_are_levenshtein_over_phones(hyp, ref, edits):
    err = phone_errors(hyp.split(), ref.split())
    assert err.edits == edits and err.ref_len == 4
    assert err.per == pytest.approx(100.0 * edits / 4)


def test_rests_are_removed_from_both_sides():
    assert sung_phones(["SP", "n", "i", "AP", "h", "ao", "SP"]) == ["n", "i", "h", "ao"]
    assert phone_errors(["SP", "n", "i"], ["n", "AP", "i", "SP"]).edits == 0
    with pytest.raises(ValueError, match="no sung phone"):
        phone_errors(["n"], ["SP", "AP"])


def test_chinese_text_becomes_opencpop_phones():
    # 我 wo, 爱 ai (no initial), 你 ni, 绿 lv (ü written v); punctuation and Latin are dropped.
    assert text_to_phones("我爱你，绿! ok") == ["w", "o", "ai", "n", "i", "l", "v"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ctc", "whisper", "owsm"])
def test_absent_recogniser_is_na_with_reason(tmp_path, kind):
    with pytest.raises(MetricUnavailable, match="no model directory configured"):
        load_recognizer(AsrBackendConfig(kind=kind, model_dir=""))
    with pytest.raises(MetricUnavailable, match="does not exist"):
        load_recognizer(AsrBackendConfig(kind=kind, model_dir=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricUnavailable, match="cannot be loaded"):
        load_recognizer(AsrBackendConfig(kind=kind, model_dir=str(tmp_path / "empty")))


def test_bad_training_split_lists_every_bad_utterance(tmp_path):
    make_phone_corpus(tmp_path / "train", 3)
    text = (tmp_path / "train" / "text").read_text().splitlines()
    text[0] = text[0].split()[0] + " SP xx n"  # unknown phone
    text[1] = text[1].split()[0] + " SP AP"  # rests only
    (tmp_path / "train" / "text").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError) as err:
        read_split(tmp_path / "train")
    assert "2 bad utterance(s)" in str(err.value) and "['xx']" in str(err.value) and "no sung phone" in str(err.value)


@pytest.mark.slow
def test_ctc_training_writes_a_loadable_recogniser_and_its_ceiling(tmp_path):
    for split, n, seed in (("train", 6, 0), ("dev", 2, 1), ("test", 2, 2)):
        make_phone_corpus(tmp_path / "data" / split, n, seed)
    cfg = AsrConfig(model=CtcModelConfig(conv_channels=16, rnn_hidden=16, rnn_layers=1),
                    train=CtcTrainConfig(epochs=2, batch_size=3, valid_every=1, num_threads=1))
    exp = tmp_path / "exp"
    results = train_ctc(cfg, tmp_path / "data", exp)
    assert 0 <= results["test_per"] and results["best_epoch"] in (1, 2) and len(results["history"]) == 2
    assert json.loads((exp / "results.json").read_text())["test_per"] == results["test_per"]
    assert (exp / "tokens.txt").read_text().split() == list(TOKENS)
    recognizer = load_recognizer(AsrBackendConfig(kind="ctc", model_dir=str(exp)))
    wav = make_phone_corpus(tmp_path / "one", 1, seed=5)
    phones = recognizer.recognize(load_wav(tmp_path / "one" / "wav" / f"{next(iter(wav))}.wav"))
    assert all(p in TOKENS[1:] for p in phones)
    # A finished directory is not trained again.
    mtime = (exp / "model.pth").stat().st_mtime_ns
    assert train_ctc(cfg, tmp_path / "data", exp) == results
    assert (exp / "model.pth").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_ctc_training_resumes_from_last_checkpoint(tmp_path, caplog):
    make_phone_corpus(tmp_path / "data" / "train", 4)
    cfg = AsrConfig(model=CtcModelConfig(conv_channels=8, rnn_hidden=8, rnn_layers=1),
                    train=CtcTrainConfig(epochs=1, batch_size=2, valid_every=1, num_threads=1))
    first = train_ctc(cfg, tmp_path / "data", tmp_path / "exp")
    (tmp_path / "exp" / "results.json").unlink()  # as if the run had stopped after epoch 1
    cfg.train.epochs = 2  # more epochs continue the same run
    with caplog.at_level("INFO"):
        results = train_ctc(cfg, tmp_path / "data", tmp_path / "exp")
    assert "resuming after epoch 1" in caplog.text
    assert results["history"][0] == first["history"][0] and [h["epoch"] for h in results["history"]] == [1, 2]
    # ... exactly as an uninterrupted run: shuffling, time masks and weights continue their draws.
    straight = train_ctc(cfg, tmp_path / "data", tmp_path / "straight")
    assert results["history"] == straight["history"]
    assert sorted(p.name for p in (tmp_path / "exp" / "checkpoints").iterdir()) == ["step2"]
    for name, value in torch.load(tmp_path / "straight" / "model.pth", weights_only=True).items():
        assert torch.equal(value, torch.load(tmp_path / "exp" / "model.pth", weights_only=True)[name]), name
