"""The zoo's synthetic speech corpus (local/mini/speech.py, `style: speech`): read by the real
ACE-Opencpop parser, spoken pitch (gliding tones, not notes on a grid), and ids apart from the
singing corpora."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from local.mini.make_corpus import MiniCorpusConfig, plan_corpus
from local.mini.voice import SingerConfig
from svslm.data.phonemes import PHONEMES, is_final
from svslm.testing.corpus import prepare_mini_corpus
from svslm.utils.config import load_config
from svslm.utils.fileio import read_kaldi_map

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # pyworld imports the deprecated pkg_resources
    import pyworld

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"mini": ROOT / "conf/data/mini_corpus.yaml", "zoo singing": ROOT / "local/mini_zoo/conf/zoo_corpus.yaml",
           "zoo speech": ROOT / "local/mini_zoo/conf/zoo_speech.yaml"}


def tiny_speech_config() -> MiniCorpusConfig:
    voices = [SingerConfig(201, 40, 53, 0.8, 0.2), SingerConfig(202, 50, 64, 1.05, 0.1), SingerConfig(203, 45, 58, 0.9)]
    return MiniCorpusConfig(style="speech", seed=3, first_song=4001, train_songs=3, test_songs=1,
                            phrases_per_train_song=1, phrases_per_test_song=1, singers_per_song=2, dev_utts=1,
                            min_phrase_seconds=2.0, max_phrase_seconds=3.0, breath_probability=0.3, singers=voices)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The tiny speech corpus through local/mini/data.sh: generation, then the real stage-1 parser."""
    return prepare_mini_corpus(tmp_path_factory.mktemp("speech"), tiny_speech_config(), "speech")


@pytest.mark.slow
def test_speech_corpus_prepares_with_syllables_at_speaking_rate(prepared):
    utts = {s: list(read_kaldi_map(prepared / s / "wav.scp")) for s in ("train", "dev", "test")}
    # Each text is read by 2 of the 3 voices, in turn: text k by voices 2k, 2k+1 (mod 3).
    assert utts["train"] == ["acesinger_201#4001000001", "acesinger_201#4002000001", "acesinger_202#4001000001",
                             "acesinger_202#4003000001", "acesinger_203#4002000001"]
    assert utts["dev"] == ["acesinger_203#4003000001"]
    assert utts["test"] == ["acesinger_201#4004000001", "acesinger_202#4004000001"]
    score = json.loads((prepared / "train" / "score.json").read_text())["utts"]
    for utt, dur in read_kaldi_map(prepared / "train" / "utt2dur").items():
        assert 1.8 <= float(dur) <= 3.2, (utt, dur)
        notes = score[utt]["notes"]
        spoken = [n for n in notes if n["lyric"] not in ("SP", "AP")]
        assert all(0.15 - 1e-3 <= n["end"] - n["start"] <= 0.3 * 1.3 + 1e-3 for n in spoken), utt
        assert all(n["midi"] > 0 and not n["slur"] for n in spoken)
        # Pauses inside the utterance, short ones.
        inner = [n for n in notes[1:-1] if n["lyric"] in ("SP", "AP")]
        assert all(n["end"] - n["start"] <= 0.3 + 1e-3 for n in inner)


@pytest.mark.slow
def test_spoken_pitch_glides_within_syllables_and_the_note_is_its_median(prepared):
    """Tones move the pitch inside a syllable (a sung note holds it); each note's MIDI is the
    rounded median of the F0 it is spoken on, measured here with harvest on the audio."""
    ranges, errors = [], []
    wav_scp = read_kaldi_map(prepared / "train" / "wav.scp")
    for utt, entry in json.loads((prepared / "train" / "score.json").read_text())["utts"].items():
        wav, sr = sf.read(prepared.parent / wav_scp[utt])
        f0, t = pyworld.harvest(wav.astype(np.float64), sr, f0_floor=60, f0_ceil=800, frame_period=5)
        for p in entry["phones"]:
            inner = (t >= p["start"] + 0.02) & (t < p["end"] - 0.02) & (f0 > 0)
            if p["midi"] == 0 or not is_final(p["phn"]) or inner.sum() < 4:
                continue
            semitones = 12 * np.log2(f0[inner] / 440) + 69
            ranges.append(np.ptp(semitones))
            errors.append(abs(np.median(semitones) - p["midi"]))
    assert len(ranges) >= 30
    assert np.median(ranges) > 1.5  # singing's vibrato alone moves ~0.6 semitone
    assert np.percentile(ranges, 75) > 3.0  # rising, dipping and falling tones
    assert np.median(errors) < 0.6 and np.percentile(errors, 90) < 1.5


def test_speech_plan_covers_every_phone_and_ids_are_apart_from_the_singing_corpora():
    configs = {name: load_config(path, MiniCorpusConfig) for name, path in CONFIGS.items()}
    speech = configs["zoo speech"]
    assert speech.style == "speech" and speech.full_coverage
    plan = plan_corpus(speech, "zoo_speech.yaml")
    train = [r for r in plan if r.split == "train"]
    assert 500 <= len(train) <= 700 and 0 < sum(r.split == "test" for r in plan) <= 16
    assert all(2.0 - 0.15 <= r.phrase.duration <= 5.0 + 0.3 for r in plan)
    assert {p for r in train for s in r.phrase.syllables for p in s.phns} == set(PHONEMES)
    assert len({r.singer.singer for r in train}) == len(speech.singers) >= 24
    songs, singers = {}, {}
    for name, cfg in configs.items():
        songs[name] = set(range(cfg.first_song, cfg.first_song + cfg.train_songs + cfg.test_songs))
        singers[name] = {s.singer for s in cfg.singers}
    names = list(configs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not songs[a] & songs[b] and not singers[a] & singers[b], (a, b)
    # Song ids stay 4 digits: the segment id's first 4 digits after '#' name the song.
    assert max(songs["zoo speech"]) < 10000
