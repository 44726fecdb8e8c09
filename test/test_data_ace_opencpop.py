"""The ACE-Opencpop (hub parquet) parser and stage 1 on a few hand-written rows."""
import io
import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from svslm.data.ace_opencpop import find_shards, read_ace_opencpop
from svslm.data.prepare import PrepareConfig, PrepareError, prepare
from svslm.utils.fileio import read_kaldi_map


def wav_bytes(seconds: float, sample_rate: int = 44100) -> bytes:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def row(singer: int, uid: str, **changes) -> dict:
    """A segment sung as SP | g_an (C4) | slur an (D4) | AP, 1.2 s, in the hub's columns."""
    r = {
        "audio": {"bytes": wav_bytes(1.2), "path": f"{uid}.wav"},
        "segment_id": f"acesinger_{singer}#{uid}", "transcription": "SP g an an AP", "singer": singer,
        "label": "", "tempo": 80,
        "note_midi": [0.0, 60.0, 62.0, 0.0], "note_phns": ["SP", "g_an", "an", "AP"],
        "note_lyrics": ["SP", "gan", "—", "AP"],
        "note_start_times": [0.0, 0.2, 0.7, 1.0], "note_end_times": [0.2, 0.7, 1.0, 1.2],
        "phn": ["SP", "g", "an", "an", "AP"], "phn_start_time": [0.0, 0.2, 0.26, 0.7, 1.0],
        "phn_end_time": [0.2, 0.26, 0.7, 1.0, 1.2],
    }
    r.update(changes)
    return r


def write_split(db, split: str, rows: list[dict]) -> None:
    (db / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), db / "data" / f"{split}-00000-of-00001.parquet", row_group_size=2)


def make_db(db, with_validation=True):
    write_split(db, "train", [row(s, f"2001{k:06d}") for s in (1, 2) for k in (1, 2)])
    if with_validation:
        write_split(db, "validation", [row(2, "2001000003")])
    write_split(db, "test", [row(s, "2002000001") for s in (1, 2)])
    return db


def test_reader_maps_rows_to_utterances(tmp_path):
    db = make_db(tmp_path / "db")
    assert {k: len(v) for k, v in find_shards(db).items()} == {"train": 1, "validation": 1, "test": 1}
    utts = {u.utt_id: u for u in read_ace_opencpop(db)}
    assert len(utts) == 7
    u = utts["acesinger_2#2001000002"]
    assert (u.speaker, u.song, u.corpus_split, u.problems) == ("acesinger_2", "2001", "train", [])
    assert [(n.lyric, n.phns, n.midi, n.slur) for n in u.notes] == [
        ("SP", ["SP"], 0, False), ("gan", ["g", "an"], 60, False), ("-", ["an"], 62, True), ("AP", ["AP"], 0, False)]
    assert [(p.phn, p.note) for p in u.phones] == [("SP", 0), ("g", 1), ("an", 1), ("an", 2), ("AP", 3)]
    assert u.audio.row == 3 and u.audio.shard.endswith("train-00000-of-00001.parquet")
    assert utts["acesinger_1#2002000001"].corpus_split == "test"


def test_segment_ids_without_singer_get_one(tmp_path):
    write_split(tmp_path, "train", [row(7, "x", segment_id="2001000001")])
    write_split(tmp_path, "test", [row(7, "y", segment_id="2002000001")])
    (u, _) = read_ace_opencpop(tmp_path)
    assert (u.utt_id, u.speaker, u.song) == ("acesinger_7#2001000001", "acesinger_7", "2001")


@pytest.mark.slow
def test_stage1_on_parquet_shards(tmp_path):
    db, data = make_db(tmp_path / "db"), tmp_path / "data"
    summary = prepare("ace_opencpop", db, data, 16000, 2, False, PrepareConfig())
    assert {s: c["utts"] for s, c in summary["splits"].items()} == {"train": 4, "dev": 1, "test": 2}
    assert list(read_kaldi_map(data / "dev" / "utt2spk").items()) == [("acesinger_2#2001000003", "acesinger_2")]
    assert read_kaldi_map(data / "train" / "spk2utt")["acesinger_1"] == "acesinger_1#2001000001 acesinger_1#2001000002"
    utt = "acesinger_1#2002000001"
    wav, sr = sf.read(read_kaldi_map(data / "test" / "wav.scp")[utt])
    assert sr == 16000 and len(wav) == int(1.2 * 16000)
    assert np.abs(wav).max() == pytest.approx(0.3, abs=0.02)  # resampled, not rescaled
    entry = json.loads((data / "test" / "score.json").read_text())["utts"][utt]
    assert entry["notes"][2] == {"start": 0.7, "end": 1.0, "midi": 62, "lyric": "-", "phns": ["an"], "slur": True}
    assert [(p["phn"], p["midi"], p["note"]) for p in entry["phones"]] == [
        ("SP", 0, 0), ("g", 60, 1), ("an", 60, 1), ("an", 62, 2), ("AP", 0, 3)]
    assert read_kaldi_map(data / "test" / "label")[utt] == (
        "0.0000 0.2000 SP 0.2000 0.2600 g 0.2600 0.7000 an 0.7000 1.0000 an 1.0000 1.2000 AP")
    assert read_kaldi_map(data / "test" / "text")[utt] == "SP g an an AP"


@pytest.mark.slow
def test_without_validation_split_dev_is_the_end_of_sorted_train(tmp_path):
    db, data = make_db(tmp_path / "db", with_validation=False), tmp_path / "data"
    prepare("ace_opencpop", db, data, 16000, 1, False, PrepareConfig(dev_size=2))
    assert list(read_kaldi_map(data / "dev" / "wav.scp")) == ["acesinger_2#2001000001", "acesinger_2#2001000002"]
    assert len(read_kaldi_map(data / "train" / "wav.scp")) == 2


@pytest.mark.slow
def test_dev_is_chosen_from_the_good_utterances_after_bad_ones_are_dropped(tmp_path):
    """With --skip_bad, the last train utterances being bad must not empty dev (it once did)."""
    db, data = tmp_path / "db", tmp_path / "data"
    good = [row(s, f"2001{k:06d}") for s in (1, 2) for k in (1, 2)]
    bad = [row(3, f"2001{k:06d}", note_midi=[0.0, 60.5, 62.0, 0.0]) for k in (1, 2)]  # sort last
    write_split(db, "train", good + bad)
    write_split(db, "test", [row(s, "2002000001") for s in (1, 2)])
    summary = prepare("ace_opencpop", db, data, 16000, 1, True, PrepareConfig(dev_size=2))
    assert list(read_kaldi_map(data / "dev" / "wav.scp")) == ["acesinger_2#2001000001", "acesinger_2#2001000002"]
    assert sorted(read_kaldi_map(data / "train" / "wav.scp")) == ["acesinger_1#2001000001", "acesinger_1#2001000002"]
    for wav in read_kaldi_map(data / "dev" / "wav.scp").values():
        assert wav.startswith(str(data / "dev" / "wav")) and sf.info(wav).duration == pytest.approx(1.2)
    assert summary["skipped"] == 2 and "last 2 of 4 good train" in summary["dev_rule"]


def test_a_corpus_smaller_than_dev_size_keeps_a_train_split_and_says_so(tmp_path, caplog):
    db, data = make_db(tmp_path / "db", with_validation=False), tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="svslm"):
        summary = prepare("ace_opencpop", db, data, 16000, 1, False, PrepareConfig(dev_size=50))
    assert {s: c["utts"] for s, c in summary["splits"].items()} == {"train": 3, "dev": 1, "test": 2}
    assert "train has only 4 good utterances, not more than dev_size=50" in caplog.text
    assert "dev = the last 1" in summary["dev_rule"]


def test_audio_stored_as_a_path_beside_the_shard(tmp_path):
    db = make_db(tmp_path / "db")
    (db / "data" / "2002000001.wav").write_bytes(wav_bytes(1.2, 22050))
    write_split(db, "test", [row(1, "2002000001", audio={"bytes": None, "path": "2002000001.wav"})])
    prepare("ace_opencpop", db, tmp_path / "data", 16000, 1, False, PrepareConfig())
    assert sf.info(read_kaldi_map(tmp_path / "data" / "test" / "wav.scp")["acesinger_1#2002000001"]).duration == 1.2


def test_bad_rows_are_named_by_shard_row_and_id(tmp_path, caplog):
    db = make_db(tmp_path / "db")
    write_split(db, "test", [
        row(1, "2002000001", phn=["SP", "g", "a", "an", "AP"]),  # label disagrees with the notes
        row(2, "2002000001", note_midi=[0.0, 60.5, 62.0, 0.0]),  # not a MIDI number
        row(3, "2002000001", phn_start_time=[0.0, 0.2, 0.22, 0.7, 1.0]),  # phone 2 overlaps phone 1
        row(4, "2002000001", audio={"bytes": wav_bytes(1.2)[:30], "path": "x.wav"}),  # truncated file
    ])
    with caplog.at_level(logging.ERROR, logger="svslm"), pytest.raises(PrepareError, match="4 of 9"):
        prepare("ace_opencpop", db, tmp_path / "data", 16000, 1, False, PrepareConfig())
    shard = db / "data" / "test-00000-of-00001.parquet"
    lines = [r.getMessage() for r in caplog.records if "bad utterance" in r.getMessage()]
    expected = ["differ from phone 2: ['an', 'an', 'AP'] vs ['a', 'an', 'AP']", "60.5 is not an integer",
                "phone 2 (an) overlaps phone 1 by 0.04 s", "unreadable"]
    for k, words in enumerate(expected):
        (line,) = [x for x in lines if f"acesinger_{k + 1}#2002000001 " in x]
        assert f"{shard} row {k}" in line and words in line, line
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_repeated_segment_ids_are_bad(tmp_path, caplog):
    db = make_db(tmp_path / "db")
    write_split(db, "test", [row(1, "2002000001"), row(1, "2002000001"), row(2, "2002000001")])
    with caplog.at_level(logging.ERROR, logger="svslm"), pytest.raises(PrepareError, match="1 of 7"):
        prepare("ace_opencpop", db, tmp_path / "data", 16000, 1, False, PrepareConfig())
    assert "acesinger_1#2002000001" in caplog.text and "utterance id repeated (also at" in caplog.text
