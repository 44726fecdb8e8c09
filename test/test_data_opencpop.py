"""The Opencpop parser and stage 1 on a three-utterance corpus in Opencpop's layout; also the
checks of bad input, --skip_bad and atomic outputs (Opencpop's text lines are easy to corrupt)."""
import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from svslm.bin.prepare_data import main as prepare_main
from svslm.data.opencpop import parse_line, read_opencpop
from svslm.data.prepare import PrepareConfig, PrepareError, prepare
from svslm.utils.fileio import read_kaldi_map

LINES = [
    # utt|text|phones|note_pitches|note_durations|phone_durations|slurs
    "2001000001|你好|SP n i h ao AP|rest C4 C4 D4 D4 rest|0.2 0.4 0.4 0.5 0.5 0.2|0.2 0.1 0.3 0.1 0.4 0.2|0 0 0 0 0 0",
    "2001000002|爱|SP ai ai SP|rest E4 F#4/Gb4 rest|0.2 0.5 0.3 0.2|0.2 0.5 0.3 0.2|0 0 1 0",
    "2002000001|我|w o SP|G4 G4 rest|0.6 0.6 0.3|0.1 0.5 0.3|0 0 0",
]


def make_opencpop(root: Path, lines=LINES, sample_rate=24000, test_ids=("2002000001",)) -> Path:
    seg = root / "segments"
    (seg / "wavs").mkdir(parents=True)
    (seg / "transcriptions.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    ids = [line.split("|")[0] for line in lines]
    (seg / "train.txt").write_text("".join(f"{i}\n" for i in ids if i not in test_ids))
    (seg / "test.txt").write_text("".join(f"{line}\n" for line in lines if line.split("|")[0] in test_ids))
    for line in lines:
        fields = line.split("|")
        try:
            seconds = sum(float(d) for d in fields[5].split())
        except (IndexError, ValueError):
            seconds = 1.0
        t = np.arange(round(seconds * sample_rate)) / sample_rate
        sf.write(seg / "wavs" / f"{fields[0]}.wav", 0.3 * np.sin(2 * np.pi * 262 * t), sample_rate)
    return root


def test_parse_line_builds_syllable_slur_and_rest_notes():
    utt = parse_line(LINES[1], "t.txt:2", Path("/db"), "train")
    assert not utt.problems
    assert utt.utt_id == "opencpop#2001000002" and utt.speaker == "opencpop" and utt.song == "2001"
    assert [(n.lyric, n.phns, n.midi, n.slur) for n in utt.notes] == [
        ("SP", ["SP"], 0, False), ("爱", ["ai"], 64, False), ("-", ["ai"], 66, True), ("SP", ["SP"], 0, False)]
    assert [round(n.end, 6) for n in utt.notes] == [0.2, 0.7, 1.0, 1.2]
    first = parse_line(LINES[0], "t.txt:1", Path("/db"), "train")
    assert [n.phns for n in first.notes] == [["SP"], ["n", "i"], ["h", "ao"], ["AP"]]
    assert [n.lyric for n in first.notes] == ["SP", "你", "好", "AP"]
    assert [p.note for p in first.phones] == [0, 1, 1, 2, 2, 3]
    assert first.audio.path == "/db/segments/wavs/2001000001.wav"


def test_stage1_writes_the_documented_files(tmp_path):
    db = make_opencpop(tmp_path / "db")
    data = tmp_path / "data"
    summary = prepare("opencpop", db, data, 16000, 1, False, PrepareConfig(dev_size=1))
    assert {s: c["utts"] for s, c in summary["splits"].items()} == {"train": 1, "dev": 1, "test": 1}
    # dev = the last utterance of sorted train (ESPnet's rule); test = the held-out song.
    assert list(read_kaldi_map(data / "dev" / "wav.scp")) == ["opencpop#2001000002"]
    assert list(read_kaldi_map(data / "test" / "wav.scp")) == ["opencpop#2002000001"]
    split = data / "train"
    for name in ("wav.scp", "utt2spk", "spk2utt", "utt2dur", "text", "label", "score.json"):
        assert (split / name).is_file(), name
    utt = "opencpop#2001000001"
    wav_path = read_kaldi_map(split / "wav.scp")[utt]
    assert wav_path == str(data / "train" / "wav" / f"{utt}.wav")
    wav, sr = sf.read(wav_path)
    info = sf.info(wav_path)
    assert sr == 16000 and wav.ndim == 1 and info.subtype == "PCM_16" and len(wav) == 1.3 * 16000
    assert float(read_kaldi_map(split / "utt2dur")[utt]) == pytest.approx(1.3)
    assert read_kaldi_map(split / "spk2utt") == {"opencpop": utt}
    assert read_kaldi_map(split / "text")[utt] == "SP n i h ao AP"
    label = read_kaldi_map(split / "label")[utt].split()
    score = json.loads((split / "score.json").read_text())
    assert score["version"] == 1
    entry = score["utts"][utt]
    phones = entry["phones"]
    # score, label and text agree; phones tile [0, end] and carry their note's pitch.
    assert [p["phn"] for p in phones] == label[2::3] == ["SP", "n", "i", "h", "ao", "AP"]
    assert [p["start"] for p in phones] == [float(x) for x in label[0::3]]
    assert [p["end"] for p in phones] == [float(x) for x in label[1::3]]
    assert phones[0]["start"] == 0 and all(a["end"] == b["start"] for a, b in itertools.pairwise(phones))
    assert [p["midi"] for p in phones] == [0, 60, 60, 62, 62, 0]
    assert [p["note"] for p in phones] == [0, 1, 1, 2, 2, 3]
    notes = entry["notes"]
    assert notes[1] == {"start": 0.2, "end": 0.6, "midi": 60, "lyric": "你", "phns": ["n", "i"], "slur": False}
    for p in phones:
        note = notes[p["note"]]
        assert note["start"] - 1e-3 <= p["start"] < p["end"] <= note["end"] + 1e-3
    slur = json.loads((data / "dev" / "score.json").read_text())["utts"]["opencpop#2001000002"]
    assert slur["notes"][2] == {"start": 0.7, "end": 1.0, "midi": 66, "lyric": "-", "phns": ["ai"], "slur": True}
    assert [(p["phn"], p["midi"]) for p in slur["phones"]] == [("SP", 0), ("ai", 64), ("ai", 66), ("SP", 0)]
    assert not (data / "skipped.txt").exists()


def test_rerun_with_same_options_skips_and_new_options_redo(tmp_path, caplog):
    db = make_opencpop(tmp_path / "db")
    data = tmp_path / "data"
    prepare("opencpop", db, data, 16000, 1, False, PrepareConfig(dev_size=1))
    with caplog.at_level(logging.INFO, logger="svslm"):
        prepare("opencpop", db, data, 16000, 1, False, PrepareConfig(dev_size=1))
    assert "nothing to do" in caplog.text
    prepare("opencpop", db, data, 22050, 1, False, PrepareConfig(dev_size=1))
    assert sf.info(read_kaldi_map(data / "test" / "wav.scp")["opencpop#2002000001"]).samplerate == 22050


# Each bad utterance and the words its error must contain (besides its id and its place).
BAD_LINES = {
    "2001000003": ("2001000003|啊|SP a b SP|rest C4 C4 rest|0.2 0.5 0.3 0.2|0.2 0.5 0.3 0.2|0 0 0 0",
                   "not an initial + final"),
    "2001000004": ("2001000004|啊|SP a SP|rest C4 rest|0.2 0.5 0.2|0.2 0.0 0.2|0 0 0", "non-positive duration"),
    "2001000005": ("2001000005|啊|SP a SP|rest C4 rest|0.2 0.5 0.2|0.2 0.5 0.2 0.1|0 0 0", "different lengths"),
    "2001000006": ("2001000006|啊|SP qq SP|rest C4 rest|0.2 0.5 0.2|0.2 0.5 0.2|0 0 0", "unknown phoneme 'qq'"),
    "2001000007": ("2001000007|啊|SP a SP|rest C4 rest|0.2 0.5 0.2|0.2 0.5 0.2|0 0 0", "label ends at 0.9"),
    "2001000008": ("2001000008|啊|SP a SP|rest H9 rest|0.2 0.5 0.2|0.2 0.5 0.2|0 0 0", "unreadable note pitch"),
    "2001000009": ("2001000009|啊|SP a SP|rest C4 rest|0.2 0.3 0.2|0.2 0.5 0.2|0 0 0", "its phones span"),
}
BAD_AUDIO = {  # utt -> (what to write instead of its wav, expected words)
    "2001000010": ("text", "unreadable"),
    "2001000011": ("empty", "empty"),
    "2001000012": ("nan", "NaN or Inf"),
    "2001000013": ("stereo", "2 channels"),
    "2001000014": ("8k", "below the target 16000 Hz"),
}
GOOD = "2001000015|啊|SP a SP|rest C4 rest|0.2 0.5 0.2|0.2 0.5 0.2|0 0 0"


def make_bad_corpus(root: Path) -> Path:
    lines = LINES + [line for line, _ in BAD_LINES.values()]
    lines += [GOOD.replace("2001000015", utt) for utt in BAD_AUDIO] + [GOOD]
    make_opencpop(root, lines)
    wavs = root / "segments" / "wavs"
    sf.write(wavs / "2001000007.wav", np.zeros(int(2.0 * 24000)), 24000)  # 2 s audio, 0.9 s label
    for utt, (kind, _) in BAD_AUDIO.items():
        path = wavs / f"{utt}.wav"
        if kind == "text":
            path.write_text("not a wav")
        elif kind == "empty":
            sf.write(path, np.zeros(0), 24000)
        elif kind == "nan":
            sf.write(path, np.full(21600, np.nan, dtype=np.float32), 24000, subtype="FLOAT")
        elif kind == "stereo":
            sf.write(path, np.zeros((21600, 2)), 24000)
        else:
            sf.write(path, np.zeros(7200), 8000)
    return root


def test_every_bad_utterance_is_reported_with_place_and_reason_and_nothing_is_written(tmp_path, caplog):
    db = make_bad_corpus(tmp_path / "db")
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "train" / "wav.scp").write_text("old\n")  # a previous run's output must survive
    with caplog.at_level(logging.ERROR, logger="svslm"), pytest.raises(PrepareError, match="12 of 16"):
        prepare("opencpop", db, data, 16000, 2, False, PrepareConfig(dev_size=1))
    errors = [r.getMessage() for r in caplog.records if "bad utterance" in r.getMessage()]
    assert len(errors) == len(BAD_LINES) + len(BAD_AUDIO)
    transcriptions = str(db / "segments" / "transcriptions.txt")
    for k, (utt, (_, words)) in enumerate(BAD_LINES.items()):
        (line,) = [e for e in errors if f"opencpop#{utt} " in e]
        assert f"{transcriptions}:{len(LINES) + k + 1}" in line and words in line, line
    for utt, (_, words) in BAD_AUDIO.items():
        (line,) = [e for e in errors if f"opencpop#{utt} " in e]
        assert f"audio {db / 'segments' / 'wavs' / utt}.wav: " in line and words in line, line
    # Atomic: no split directory, no temporary left behind; the old output is untouched.
    assert sorted(p.name for p in data.iterdir()) == ["train"]
    assert (data / "train" / "wav.scp").read_text() == "old\n"


def test_skip_bad_keeps_the_good_and_lists_the_bad(tmp_path):
    db = make_bad_corpus(tmp_path / "db")
    data = tmp_path / "data"
    config = tmp_path / "prepare.yaml"
    config.write_text("dev_size: 1\n")
    rc = prepare_main(["--format", "opencpop", "--db_root", str(db), "--data_dir", str(data),
                       "--nj", "2", "--skip_bad", "true", "--config", str(config)])
    assert rc == 0
    skipped = read_kaldi_map(data / "skipped.txt")
    assert set(skipped) == {f"opencpop#{u}" for u in [*BAD_LINES, *BAD_AUDIO]}
    assert "unknown phoneme 'qq'" in skipped["opencpop#2001000006"]
    kept = {u for s in ("train", "dev", "test") for u in read_kaldi_map(data / s / "wav.scp")}
    assert kept == {"opencpop#2001000001", "opencpop#2001000002", "opencpop#2001000015", "opencpop#2002000001"}


def test_failing_stage_exits_nonzero(tmp_path):
    db = make_bad_corpus(tmp_path / "db")
    assert prepare_main(["--format", "opencpop", "--db_root", str(db), "--data_dir", str(tmp_path / "d")]) == 1
    assert prepare_main(["--format", "opencpop", "--db_root", str(tmp_path / "nowhere"),
                         "--data_dir", str(tmp_path / "d")]) == 1


def test_a_test_song_in_train_is_refused(tmp_path):
    leaking = LINES + ["2002000002|我|w o SP|G4 G4 rest|0.6 0.6 0.3|0.1 0.5 0.3|0 0 0"]
    db = make_opencpop(tmp_path / "db", leaking, test_ids=("2002000001",))
    with pytest.raises(PrepareError, match="test songs also in train/dev: 2002"):
        prepare("opencpop", db, tmp_path / "data", 16000, 1, False, PrepareConfig(dev_size=1))


def test_read_opencpop_uses_the_split_lists(tmp_path):
    utts = read_opencpop(make_opencpop(tmp_path / "db"))
    assert {u.utt_id: u.corpus_split for u in utts} == {
        "opencpop#2001000001": "train", "opencpop#2001000002": "train", "opencpop#2002000001": "test"}


def test_a_changed_corpus_is_prepared_again(tmp_path):
    db = make_opencpop(tmp_path / "db")
    data = tmp_path / "data"
    prepare("opencpop", db, data, 16000, 1, False, PrepareConfig(dev_size=1))
    make_opencpop(tmp_path / "db2", [LINES[0].replace("0.2|0.2 0.1 0.3 0.1 0.4 0.2|", "0.3|0.2 0.1 0.3 0.1 0.4 0.3|"), *LINES[1:]])
    (db / "segments" / "transcriptions.txt").write_text(
        (tmp_path / "db2" / "segments" / "transcriptions.txt").read_text(encoding="utf-8"), encoding="utf-8")
    for wav in (tmp_path / "db2" / "segments" / "wavs").iterdir():
        wav.replace(db / "segments" / "wavs" / wav.name)
    prepare("opencpop", db, data, 16000, 1, False, PrepareConfig(dev_size=1))
    assert float(read_kaldi_map(data / "train" / "utt2dur")["opencpop#2001000001"]) == pytest.approx(1.4)
