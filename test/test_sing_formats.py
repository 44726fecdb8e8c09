"""One phrase written as MusicXML, USTX, UST and DiffSinger .ds sings to the same notes and frames.

The phrase has what the formats write differently: a tempo change (a MetronomeMark; a `tempos`
entry; a note's `Tempo=`; nothing in a .ds, which counts seconds), a rest (a rest; a gap; an `R`
note; SP), a tie across the bar line (tied notes; a same-pitch `+` note; one vowel over the bar
line), a melisma (a slur; `+~`; a slur note under the same vowel) and a syllable without an initial.
"""
from __future__ import annotations

import re
from pathlib import Path

from test_sing_ds import ds_sentence, write_ds
from test_sing_score import write_musicxml
from test_sing_ust import write_ust
from test_sing_ustx import write_ustx

from svslm.sing.reader import read_score
from svslm.tokenize.svs_lb import phones_to_frames

# 4/4; measure 1 at 120 bpm: 我 C4, 爱 D4 (quarters), a quarter rest, 你 E4 tied over the bar line into
# measure 2 at 60 bpm; there 你 goes on under a slur to G4 (a quarter), then 啊 A4 (a half).
# In seconds: 我 0-0.5, 爱 0.5-1, rest 1-1.5, 你 1.5-3, its melisma 3-4, 啊 4-6.
PHRASE_SECONDS = 6.0


def phrase_musicxml(path):
    return write_musicxml(path, [
        [("C4", 1, "我", None), ("D4", 1, "爱", None), ("rest", 1, None, None), ("E4", 1, "你", "start")],
        [("E4", 1, None, "stop"), ("G4", 1, None, None), ("A4", 2, "啊", None)],
    ], tempos={1: 120, 2: 60}, slurs=[((1, 4), (2, 2))])


def phrase_ustx(path):
    return write_ustx(path, [("vocal", 0, 0, [
        (0, 480, 60, "我"), (480, 480, 62, "爱"), (1440, 480, 64, "你"), (1920, 480, 64, "+"), (2400, 480, 67, "+~"),
        (2880, 960, 69, "啊"),
    ])], tempos=((0, 120), (1920, 60)))


def phrase_ust(path):
    return write_ust(path, [(480, "我", 60), (480, "爱", 62), (480, "R", 60), (480, "你", 64),
                            (480, "+", 64, ["Tempo=60"]), (480, "+~", 67), (960, "啊", 69)], charset="UTF-8")


def phrase_ds(path):
    # As OpenUtau exports it: SP padding around each sentence (the first starts before 0 s), the
    # consonants before their notes; the initials last the 0.08 s the other formats' scores give them.
    return write_ds(path, [
        ds_sentence(-0.5, [("SP", 0.5), ("w", 0.08), ("o", 0.42), ("ai", 0.5), ("SP", 0.5)],
                    [("rest", 0.58), ("C4", 0.42), ("D4", 0.5), ("rest", 0.5)], text="SP 我 爱 SP", ph_num="2 1 1 1"),
        ds_sentence(1.0, [("SP", 0.5), ("n", 0.08), ("i", 2.42), ("a", 2.0)],
                    [("rest", 0.58), ("E4", 1.42), ("G4", 1.0, 1), ("A4", 2.0)], text="SP 你 啊", ph_num="2 1 1"),
    ])


def test_the_same_phrase_in_every_editor_format_sings_the_same(tmp_path):
    reference = read_score(phrase_musicxml(tmp_path / "phrase.musicxml"))
    assert [(n["lyric"], n["midi"], n["start"], n["end"], n["slur"]) for n in reference["notes"]] == [
        ("我", 60, 0.0, 0.5, False), ("爱", 62, 0.5, 1.0, False), ("SP", 0, 1.0, 1.5, False),
        ("你", 64, 1.5, 3.0, False), ("-", 67, 3.0, 4.0, True), ("啊", 69, 4.0, PHRASE_SECONDS, False)]
    phns, midi = phones_to_frames(reference["phones"])
    for path in (phrase_ustx(tmp_path / "phrase.ustx"), phrase_ust(tmp_path / "phrase.ust"),
                 phrase_ds(tmp_path / "phrase.ds")):
        entry = read_score(path)
        assert entry == reference, path.suffix  # notes, phones and their times
        other_phns, other_midi = phones_to_frames(entry["phones"])
        assert other_phns == phns and (other_midi == midi).all() and len(phns) == PHRASE_SECONDS * 50


def test_the_examples_in_docs_sing_the_same_phrase(tmp_path):
    """docs/sing.md shows the phrase in each editor format: its examples are read as they stand."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "sing.md").read_text(encoding="utf-8")
    blocks = dict(re.findall(r"```(yaml|ini|json)\n(.*?)```", docs, flags=re.DOTALL))
    assert set(blocks) == {"yaml", "ini", "json"}
    reference = read_score(phrase_musicxml(tmp_path / "phrase.musicxml"))
    for language, suffix in (("yaml", ".ustx"), ("ini", ".ust"), ("json", ".ds")):
        path = tmp_path / f"example{suffix}"
        path.write_text(blocks[language], encoding="utf-8")
        assert read_score(path) == reference, suffix
