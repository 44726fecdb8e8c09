"""UTAU projects (.ust) -> score.json entry -> svs_lb frames.

Every project is written by the test as UTAU saves it (INI-like sections, CRLF line ends, in
the encoding the test names); assertions look at the frames `phones_to_frames` makes of the
result (50 fps), at positions the project fixes.
"""
from __future__ import annotations

import pytest

from svslm.sing.reader import read_score
from svslm.sing.score import ScoreError
from svslm.tokenize.svs_lb import phones_to_frames

CONSONANT_FRAMES = 4  # ScoreConfig's 0.08 s initial


def ust_text(notes, tempo=120, charset=None, version="1.2"):
    """notes: (Length in ticks, Lyric, NoteNum, extra key=value lines) in order."""
    lines = ["[#VERSION]", f"UST Version{version}"]
    if charset:
        lines.append(f"Charset={charset}")
    lines += ["[#SETTING]", f"Tempo={tempo:.2f}", "Tracks=1", "ProjectName=test", "VoiceDir=%VOICE%uta", "Mode2=True"]
    for k, (length, lyric, note_num, *extra) in enumerate(notes):
        lines += [f"[#{k:04d}]", f"Length={length}", f"Lyric={lyric}", f"NoteNum={note_num}", "PreUtterance=",
                  "Intensity=100", "Modulation=0", *(extra[0] if extra else [])]
    lines.append("[#TRACKEND]")
    return "\r\n".join(lines) + "\r\n"


def write_ust(path, notes, encoding="utf-8", **kwargs):
    path.write_bytes(ust_text(notes, **kwargs).encode(encoding))
    return path


def frames(entry):
    return phones_to_frames(entry["phones"])


def test_ust_notes_rests_tempo_changes_and_melisma(tmp_path):
    path = write_ust(tmp_path / "s.ust", [
        (480, "我", 60), (480, "+~", 62),  # 0.5 s each at 120 bpm; a melisma
        (480, "R", 60),  # a rest
        (960, "你", 64, ["Tempo=60.00"]),  # from here on 60 bpm: 2 s
        (480, "-", 65), (480, "R", 60), (480, "R", 60),  # rests merge
        (240, "hao3", 67),
    ], charset="UTF-8")
    entry = read_score(path)
    assert [(n["lyric"], n["phns"], n["midi"], n["slur"]) for n in entry["notes"]] == [
        ("我", ["w", "o"], 60, False), ("-", ["o"], 62, True), ("SP", ["SP"], 0, False), ("你", ["n", "i"], 64, False),
        ("-", ["i"], 65, True), ("SP", ["SP"], 0, False), ("hao3", ["h", "ao"], 67, False)]
    phns, midi = frames(entry)
    assert len(phns) == 75 + 100 + 50 + 100 + 25
    assert (phns[25], midi[25]) == ("o", 62) and set(phns[50:75]) == {"SP"}
    assert phns[75:75 + CONSONANT_FRAMES] == ["n"] * CONSONANT_FRAMES and (phns[174], midi[174]) == ("i", 64)
    assert (phns[175], midi[175]) == ("i", 65) and set(phns[225:325]) == {"SP"} and (phns[325], midi[325]) == ("h", 67)


def test_ust_a_tie_across_the_bar_line_is_one_note(tmp_path):
    # 4/4 at 120 bpm: bar lines every 1920 ticks. A note over the first bar line, and a note split at
    # the second one into a same-pitch `+`, both sung as one note each.
    path = write_ust(tmp_path / "s.ust", [(1440, "R", 60), (960, "la", 62), (1440, "li", 64), (480, "+", 64)])
    entry = read_score(path)
    assert [(n["lyric"], n["start"], n["end"]) for n in entry["notes"]] == [
        ("SP", 0.0, 1.5), ("la", 1.5, 2.5), ("li", 2.5, 4.5)]


def test_ust_version_2_places_notes_by_delta(tmp_path):
    # UST 2.0: each note starts Delta ticks after the one before and sounds Duration ticks; the rest is silence.
    path = write_ust(tmp_path / "s.ust", [(480, "a", 60, ["Delta=0", "Duration=240"]),
                                          (480, "o", 62, ["Delta=480", "Duration=480"])], version="2.0")
    entry = read_score(path)
    assert [(n["lyric"], n["start"], n["end"]) for n in entry["notes"]] == [
        ("a", 0.0, 0.25), ("SP", 0.25, 0.5), ("o", 0.5, 1.0)]


@pytest.mark.parametrize("encoding, charset", [("utf-8", "UTF-8"), ("gb18030", "GB18030"), ("gbk", None),
                                               ("utf-8-sig", None), ("shift_jis", "shift_jis")])
def test_ust_encodings(tmp_path, encoding, charset):
    lyrics = ["我", "爱", "你"] if encoding != "shift_jis" else ["愛", "ni", "de"]  # 愛: a character Shift-JIS has
    path = write_ust(tmp_path / "s.ust", [(480, lyric, 60 + k) for k, lyric in enumerate(lyrics)],
                     encoding=encoding, charset=charset)
    assert [n["lyric"] for n in read_score(path)["notes"]] == lyrics


def test_ust_a_wrong_encoding_is_reported_with_its_line(tmp_path):
    # Saved in GB18030 but the Charset line says UTF-8: the first Chinese lyric is on line 19.
    path = write_ust(tmp_path / "s.ust", [(480, "a", 60), (480, "我", 62)], encoding="gb18030", charset="UTF-8")
    with pytest.raises(ScoreError) as err:
        read_score(path)
    assert err.value.problems == [
        ("line 19: not UTF-8 text, as its Charset=UTF-8 line says (byte 0xce); "
        "re-save the file in that encoding or correct the Charset line")]
    write_ust(path, [(480, "a", 60)], charset="klingon")
    with pytest.raises(ScoreError, match="Charset=klingon: an encoding Python does not know"):
        read_score(path)


def test_ust_reports_every_problem_with_its_place(tmp_path):
    text = ust_text([
        (480, "我", 60), (480, "xyz", 62),  # not a syllable
        (480, "爱", 300),  # not a MIDI pitch
        ("abc", "你", 64),  # Length is not a number
        (480, "的", 64, ["Tempo=fast"]),
        (480, "的", 64, ["Vibrato"]),  # not key=value
    ]).replace("[#TRACKEND]", "[#0006]\r\nLength=480\r\nLyric=+~\r\nNoteNum=65\r\n[#BOGUS]\r\n[#TRACKEND]")
    path = tmp_path / "s.ust"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScoreError) as err:
        read_score(path, pitch_range=(48, 72))
    assert err.value.problems == [  # the reader's own first, in file order; then the score's, in time order
        "line 52 in [#0005]: expected key=value, got 'Vibrato'",
        "[#0002] (line 23, tick 960): NoteNum '300' is not a MIDI pitch 0..127",
        "[#0003] (line 30, tick 1440): no Length (ticks), or not a number: 'abc'",
        "[#0004] (line 37, tick 1440): Tempo=fast is not a tempo (bpm)",
        "line 57: unknown section [#BOGUS]",
        "[#0001] (line 16, tick 480): unknown syllable 'xyz' (read as 'xyz'; not in Opencpop's inventory)",
    ]
