"""The embedded mini corpus: deterministic, read by the real ACE-Opencpop parser, and usable
audio (pitch follows the score, phonemes and singers sound different)."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from local.mini.make_corpus import (
    CoverageError,
    MiniCorpusConfig,
    is_complete,
    make_corpus,
    plan_corpus,
)
from local.mini.melody import BREATH_SECONDS, SYLLABLES, SyllableDeck, make_phrase
from local.mini.voice import SingerConfig, SungNote, sing
from svslm.data.ace_opencpop import read_ace_opencpop
from svslm.data.phonemes import PHONEMES, is_initial, syllable_to_phones
from svslm.testing.corpus import prepare_mini_corpus
from svslm.tokenize.svs_lb import build_token_list, score_to_tokens
from svslm.utils.config import load_config
from svslm.utils.fileio import read_kaldi_map

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # pyworld imports the deprecated pkg_resources
    import pyworld

ROOT = Path(__file__).resolve().parents[1]
SINGERS = [SingerConfig(1, 60, 79, 1.1, 0.15, 5.8, 0.3), SingerConfig(2, 43, 62, 0.8, 0.25, 4.9, 0.35)]


def small_config(seed: int = 7) -> MiniCorpusConfig:
    return MiniCorpusConfig(seed=seed, train_songs=2, test_songs=1, phrases_per_train_song=1,
                            phrases_per_test_song=1, dev_utts=1, min_phrase_seconds=3.0,
                            max_phrase_seconds=3.5, singers=SINGERS)


@pytest.mark.slow
def test_generation_is_deterministic_and_seeded(tmp_path):
    make_corpus(small_config(), tmp_path / "a")
    make_corpus(small_config(), tmp_path / "b", nj=2)  # rendered by two processes: the same bytes
    make_corpus(small_config(seed=8), tmp_path / "c")
    shards = sorted(p.name for p in (tmp_path / "a" / "data").iterdir())
    assert shards == ["test-00000-of-00001.parquet", "train-00000-of-00001.parquet",
                      "validation-00000-of-00001.parquet"]
    for name in shards:
        assert (tmp_path / "a" / "data" / name).read_bytes() == (tmp_path / "b" / "data" / name).read_bytes()
    assert (tmp_path / "a" / "data" / shards[1]).read_bytes() != (tmp_path / "c" / "data" / shards[1]).read_bytes()
    assert is_complete(tmp_path / "a", small_config()) and not is_complete(tmp_path / "a", small_config(seed=8))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The small corpus through local/mini/data.sh: generation, then the real stage-1 parser."""
    return prepare_mini_corpus(tmp_path_factory.mktemp("mini"), small_config(), "mini")


@pytest.mark.slow
def test_stage1_reads_the_mini_corpus(prepared):
    utts = {s: list(read_kaldi_map(prepared / s / "wav.scp")) for s in ("train", "dev", "test")}
    # All singers sing every song; the held-out song (2003) is the whole test set.
    assert utts["test"] == ["acesinger_1#2003000001", "acesinger_2#2003000001"]
    assert utts["dev"] == ["acesinger_2#2002000001"]
    assert utts["train"] == ["acesinger_1#2001000001", "acesinger_1#2002000001", "acesinger_2#2001000001"]
    for split in ("train", "test"):
        for utt, dur in read_kaldi_map(prepared / split / "utt2dur").items():
            assert 3.0 <= float(dur) <= 3.5, (utt, dur)
    score = json.loads((prepared / "train" / "score.json").read_text())["utts"]
    notes = [n for u in score.values() for n in u["notes"]]
    assert any(n["slur"] for n in notes) or any(n["lyric"] == "AP" for n in notes)


@pytest.mark.slow
def test_pitch_follows_the_score(prepared):
    errors, voiced = [], []
    for split in ("train", "test"):
        wav_scp = read_kaldi_map(prepared / split / "wav.scp")
        for utt, entry in json.loads((prepared / split / "score.json").read_text())["utts"].items():
            _collect_pitch_errors(prepared.parent / wav_scp[utt], entry, errors, voiced)
    assert len(errors) >= 15
    assert np.mean(voiced) > 0.9
    assert np.median(errors) < 0.25 and np.max(errors) < 1.0  # semitones


def _collect_pitch_errors(wav_path, entry, errors, voiced):
    """Per sung phone, the median |harvest F0 - score pitch| in semitones, and its voiced share."""
    wav, sr = sf.read(wav_path)
    f0, t = pyworld.harvest(wav.astype(np.float64), sr, f0_floor=70, f0_ceil=900, frame_period=10)
    for p in entry["phones"]:
        if p["midi"] == 0 or is_initial(p["phn"]):
            continue
        inner = (t >= p["start"] + 0.06) & (t < p["end"] - 0.06)  # away from the glides
        if inner.sum() < 3:
            continue
        voiced.append(np.mean(f0[inner] > 0))
        f = f0[inner][f0[inner] > 0]
        if f.size:
            errors.append(np.median(np.abs(12 * np.log2(f / 440) + 69 - p["midi"])))


def _band_db(wav: np.ndarray, sr: int, start: float, end: float, low: float, high: float) -> float:
    """Energy of [low, high) Hz relative to the whole spectrum of wav[start:end], dB."""
    seg = wav[int(start * sr):int(end * sr)]
    power = np.abs(np.fft.rfft(seg * np.hanning(seg.size))) ** 2
    freqs = np.fft.rfftfreq(seg.size, 1 / sr)
    return float(10 * np.log10(power[(freqs >= low) & (freqs < high)].sum() / power.sum()))


def test_phonemes_and_singers_differ_acoustically():
    # SP | s_a | SP | w_u | SP | y_i, each vowel 0.6 s on the same pitch.
    notes = [SungNote(0.0, 0.2, 0, ["SP"], [0.2]), SungNote(0.2, 0.9, 62, ["s", "a"], [0.32, 0.9]),
             SungNote(0.9, 1.1, 0, ["SP"], [1.1]), SungNote(1.1, 1.8, 62, ["w", "u"], [1.2, 1.8]),
             SungNote(1.8, 2.0, 0, ["SP"], [2.0]), SungNote(2.0, 2.7, 62, ["y", "i"], [2.1, 2.7])]
    sr = 16000
    wav = sing(notes, SINGERS[0], sr, np.random.default_rng(0))
    s, a, u, i = (0.22, 0.3), (0.45, 0.85), (1.35, 1.75), (2.25, 2.65)
    assert _band_db(wav, sr, *s, 3500, 8000) > -3  # s: a high noise band
    assert _band_db(wav, sr, *i, 2200, 3500) > _band_db(wav, sr, *u, 2200, 3500) + 15  # i: high F2
    assert _band_db(wav, sr, *a, 1000, 1500) > _band_db(wav, sr, *u, 1000, 1500) + 15  # a: high F1, F2
    assert _band_db(wav, sr, *u, 0, 500) > _band_db(wav, sr, *a, 0, 500) + 5  # u: low F1, F2
    assert np.abs(wav[int(0.95 * sr):int(1.05 * sr)]).max() < 0.01  # SP is silence
    darker = sing(notes, SINGERS[1], sr, np.random.default_rng(0))
    # A longer vocal tract lowers the formants: less energy at the top of i.
    assert _band_db(darker, sr, *i, 3500, 8000) < _band_db(wav, sr, *i, 3500, 8000) - 6


def _train_inventory(plan) -> tuple[set[str], set[int]]:
    train = [r for r in plan if r.split == "train"]
    return {p for r in train for n in r.phrase.notes for p in n.phns}, {m for r in train for m in r.midis if m}


def test_mini_corpus_train_covers_every_phone_and_note_so_any_lyric_tokenizes():
    """Issue 17 item 4: `liang` was refused because `iang` never occurred in mini's train split."""
    cfg = load_config(ROOT / "conf/data/mini_corpus.yaml", MiniCorpusConfig)
    assert cfg.full_coverage
    plan = plan_corpus(cfg, "mini_corpus.yaml")
    phones, midis = _train_inventory(plan)
    assert phones == set(PHONEMES)
    assert midis == set(range(min(s.low_midi for s in cfg.singers), max(s.high_midi for s in cfg.singers) + 1))
    # Every singer sings inside their own range.
    for row in plan:
        sung = [m for m in row.midis if m]
        assert row.singer.low_midi <= min(sung) and max(sung) <= row.singer.high_midi, row.segment_id
    # 600 short phrases (the mini SLM reads its score at these lengths), at most 15 minutes of audio.
    assert len(plan) == 600 and sum(r.phrase.duration for r in plan) < 15 * 60
    assert all(1.0 <= r.phrase.duration <= 1.8 + BREATH_SECONDS for r in plan)  # + a forced breath
    tokens = set(build_token_list(phones))
    score = [{"phn": "SP", "start": 0.0, "end": 0.2, "midi": 0}]
    for k, syllable in enumerate(["liang", "jiong", "nve", "er"]):
        for phn in syllable_to_phones(syllable):
            score.append({"phn": phn, "start": 0.2 + 0.2 * len(score[1:]), "end": 0.4 + 0.2 * len(score[1:]), "midi": 43 + k * 12})
    assert set(score_to_tokens(score, None)) <= tokens
    assert all(p in phones for s in SYLLABLES for p in syllable_to_phones(s))


def test_a_forced_breath_too_long_for_the_middle_of_a_phrase_comes_after_its_opening_rest():
    """full_coverage forces a breath (AP) into train; a 1 s phrase has no room for one between two
    notes, so the singer breathes before the first note, and every later note moves on by the breath."""
    def phrase(force):  # breath_probability 1: both draw the same notes, only `force` places the breath
        rng = np.random.default_rng(3)
        return make_phrase(rng, SyllableDeck(rng), 2001, 1, 90, 1.0, 0.0, 1.0, force_breath=force)
    plain, breathing = phrase(False), phrase(True)
    assert "AP" not in [n.lyric for n in plain.notes]
    assert [n.lyric for n in breathing.notes] == [plain.notes[0].lyric, "AP", *(n.lyric for n in plain.notes[1:])]
    ap = breathing.notes[1]
    assert (ap.start, ap.end) == (plain.notes[0].end, round(plain.notes[0].end + BREATH_SECONDS, 4))
    for before, after in zip(plain.notes[1:], breathing.notes[2:]):
        assert after.start == pytest.approx(before.start + BREATH_SECONDS)
        assert after.phone_ends == pytest.approx([e + BREATH_SECONDS for e in before.phone_ends])
    assert breathing.duration == pytest.approx(plain.duration + BREATH_SECONDS)


def test_note_value_scale_writes_the_phrase_as_at_a_faster_tempo():
    """note_value_scale 0.4 sings the phrase that tempo / 0.4 would: the same draws, more and shorter
    notes in the same seconds (the mini corpus's ~4 notes in 1-1.8 s)."""
    def phrase(tempo, scale):
        rng = np.random.default_rng(5)
        return make_phrase(rng, SyllableDeck(rng), 2001, 1, tempo, 1.6, 0.2, 0.0, note_value_scale=scale)
    written, dense, fast = phrase(80, 1.0), phrase(80, 0.4), phrase(200, 1.0)
    assert [(n.lyric, n.degree) for n in dense.notes] == [(n.lyric, n.degree) for n in fast.notes]
    for a, b in zip(dense.notes, fast.notes):
        assert a.phone_ends == pytest.approx(b.phone_ends, abs=2e-4)
    sung = [len([n for n in p.notes if n.degree is not None]) for p in (written, dense)]
    assert sung[1] >= 2 * sung[0] and dense.duration == pytest.approx(written.duration, abs=0.01)
    assert dense.tempo == 80  # the score keeps its tempo; only its note values are shorter


def test_mini_corpus_phrases_hold_a_melody():
    """The mini corpus's short phrases are not one held syllable: about 4 notes of 2-3 pitches."""
    plan = plan_corpus(load_config(ROOT / "conf/data/mini_corpus.yaml", MiniCorpusConfig))
    sung = [[n for n in r.phrase.notes if n.degree is not None] for r in plan]
    assert 3.3 <= np.mean([len(s) for s in sung]) <= 4.5
    assert np.mean([len({m for m in r.midis if m}) for r in plan]) >= 2.5


def test_a_note_value_scale_not_above_zero_is_refused():
    with pytest.raises(ValueError, match=r"x\.yaml: note_value_scale=0\.0, but it must be > 0"):
        plan_corpus(MiniCorpusConfig(**{**vars(small_config()), "note_value_scale": 0.0}), "x.yaml")


def test_zoo_singing_corpus_train_covers_every_phone_and_note():
    cfg = load_config(ROOT / "local/mini_zoo/conf/zoo_corpus.yaml", MiniCorpusConfig)
    phones, midis = _train_inventory(plan_corpus(cfg))
    assert phones == set(PHONEMES) and midis == set(range(40, 84))


def test_a_corpus_too_small_to_cover_the_inventory_is_refused_naming_what_is_missing():
    cfg = MiniCorpusConfig(**{**vars(small_config()), "full_coverage": True})
    with pytest.raises(CoverageError, match=r"tiny\.yaml: full_coverage, but its train split \(3 utterances\) lacks phones .*; MIDI notes"):
        plan_corpus(cfg, "tiny.yaml")
    plan_corpus(small_config(), "tiny.yaml")  # without full_coverage the same config is fine


def test_song_numbers_not_of_four_digits_are_refused():
    """Stage 1 reads a segment's song from its first 4 digits: song 10000 would be read as 1000 and
    song 999 as 9990, so that splits would seem to share songs they do not."""
    cfg = MiniCorpusConfig(**{**vars(small_config()), "first_song": 9998})  # songs 9998..10000
    with pytest.raises(ValueError, match=r"big\.yaml: songs 9998\.\.10000 .* do not all have 4 digits"):
        plan_corpus(cfg, "big.yaml")
    plan_corpus(MiniCorpusConfig(**{**vars(small_config()), "first_song": 9997}), "big.yaml")  # 9997..9999 fit
    with pytest.raises(ValueError, match=r"small\.yaml: songs 999\.\.1001 .* do not all have 4 digits"):
        plan_corpus(MiniCorpusConfig(**{**vars(small_config()), "first_song": 999}), "small.yaml")


@pytest.mark.slow
def test_generated_train_split_covers_every_phone_and_note(tmp_path):
    """A corpus just big enough for the inventory (1 singer over 12 semitones, 8 phrases), through
    the real ACE-Opencpop parser: its train split holds every phone and every note."""
    cfg = MiniCorpusConfig(seed=11, train_songs=4, test_songs=1, phrases_per_train_song=2, phrases_per_test_song=1,
                           dev_utts=0, min_phrase_seconds=4.0, max_phrase_seconds=5.0, full_coverage=True,
                           singers=[SingerConfig(1, 55, 66, 1.0)])
    make_corpus(cfg, tmp_path)
    train = [u for u in read_ace_opencpop(tmp_path) if u.corpus_split == "train"]
    assert len(train) == 8 and not [u.problems for u in train if u.problems]
    assert {p.phn for u in train for p in u.phones} == set(PHONEMES)
    assert {n.midi for u in train for n in u.notes if n.midi} == set(range(55, 67))
