"""OpenUtau projects (.ustx) -> score.json entry -> svs_lb frames.

Every project is written by the test in the layout OpenUtau saves (YAML, snake_case keys, notes
with pitch and vibrato that the reader ignores); assertions look at the frames
`phones_to_frames` makes of the result (50 fps), at positions the project fixes.
"""
from __future__ import annotations

import pytest
import yaml

from svslm.sing.reader import read_score
from svslm.sing.score import ScoreError
from svslm.tokenize.svs_lb import phones_to_frames

CONSONANT_FRAMES = 4  # ScoreConfig's 0.08 s initial


def ustx_note(position, duration, tone, lyric):
    """A note as OpenUtau saves it (position from the part's start, in ticks)."""
    return {"position": position, "duration": duration, "tone": tone, "lyric": lyric,
            "pitch": {"data": [{"x": -25, "y": 0, "shape": "io"}, {"x": 25, "y": 0, "shape": "io"}], "snap_first": True},
            "vibrato": {"length": 0, "period": 175, "depth": 25, "in": 10, "out": 10, "shift": 0, "drift": 0},
            "phoneme_expressions": [], "phoneme_overrides": []}


def write_ustx(path, parts, tempos=((0, 120),), signatures=((0, 4, 4),), legacy_bpm=None):
    """parts: (name, track, position in ticks, [(position, duration, tone, lyric)]); tempos: (tick, bpm);
    signatures: (bar, beats per bar, beat unit); legacy_bpm: write a USTX 0.5 project (one `bpm`)."""
    project = {"name": "test", "comment": "", "output_dir": "Vocal", "cache_dir": "UCache",
               "ustx_version": "0.9", "expressions": {"vel": {"name": "velocity", "abbr": "vel", "min": 0, "max": 200}},
               "key": 0,
               "time_signatures": [{"bar_position": b, "beat_per_bar": n, "beat_unit": d} for b, n, d in signatures],
               "tempos": [{"position": t, "bpm": bpm} for t, bpm in tempos],
               "tracks": [{"singer": None, "phonemizer": "OpenUtau.Core.DefaultPhonemizer", "mute": False, "solo": False}
                          for _ in range(1 + max(p[1] for p in parts))],
               "voice_parts": [{"name": name, "comment": "", "track_no": track, "position": position,
                                "duration": 7680, "notes": [ustx_note(*n) for n in notes], "curves": []}
                               for name, track, position, notes in parts],
               "wave_parts": []}
    if legacy_bpm is not None:
        del project["tempos"], project["time_signatures"]
        project.update(ustx_version="0.5", bpm=legacy_bpm, beat_per_bar=4, beat_unit=4)
    path.write_text(yaml.safe_dump(project, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def frames(entry):
    return phones_to_frames(entry["phones"])


def test_ustx_notes_gaps_tempo_change_and_continuations(tmp_path):
    # 120 bpm (a quarter = 480 ticks = 0.5 s = 25 frames), then 60 bpm from tick 1920.
    path = write_ustx(tmp_path / "s.ustx", [("v", 0, 0, [
        (0, 480, 60, "我"), (480, 480, 62, "+~"),  # a melisma on a new pitch
        (1440, 480, 64, "ni3"),  # after a gap: a rest
        (1920, 480, 65, "-"),  # `-` continues too
        (2400, 480, 67, "hǎo"),
    ])], tempos=((0, 120), (1920, 60)))
    entry = read_score(path)
    assert [(n["lyric"], n["phns"], n["midi"], n["slur"]) for n in entry["notes"]] == [
        ("我", ["w", "o"], 60, False), ("-", ["o"], 62, True), ("SP", ["SP"], 0, False),
        ("ni3", ["n", "i"], 64, False), ("-", ["i"], 65, True), ("hǎo", ["h", "ao"], 67, False)]
    phns, midi = frames(entry)
    assert len(phns) == 200  # 4 quarters at 0.5 s + 2 at 1 s
    assert phns[:CONSONANT_FRAMES] == ["w"] * CONSONANT_FRAMES and (phns[25], midi[25]) == ("o", 62)
    assert set(phns[50:75]) == {"SP"} and (phns[75], midi[75]) == ("n", 64)
    assert (phns[100], midi[100]) == ("i", 65) and (phns[149], midi[149]) == ("i", 65)  # 1 s at 60 bpm
    assert (phns[150], midi[150]) == ("h", 67) and phns[199] == "ao"


def test_ustx_a_tie_across_the_bar_line_is_one_note(tmp_path):
    # 3/4: the bar line is at tick 1440. A note across it, and a same-pitch `+` after a bar line.
    path = write_ustx(tmp_path / "s.ustx", [("v", 0, 0, [
        (0, 960, 60, "la"), (960, 960, 62, "li"),  # li crosses the bar line at 1440
        (1920, 960, 64, "lu"), (2880, 480, 64, "+"),  # a tie written as a continuation at the same pitch
    ])], signatures=((0, 3, 4),))
    entry = read_score(path)
    assert [(n["lyric"], n["midi"], n["start"], n["end"]) for n in entry["notes"]] == [
        ("la", 60, 0.0, 1.0), ("li", 62, 1.0, 2.0), ("lu", 64, 2.0, 3.5)]
    phns, midi = frames(entry)
    assert phns[100:175] == ["l"] * CONSONANT_FRAMES + ["u"] * (75 - CONSONANT_FRAMES) and set(midi[100:175]) == {64}


def test_ustx_voice_parts(tmp_path):
    # Part 1 has no lyrics (an accompaniment line); part 2, on another track, starts at tick 1920,
    # where the tempo turns to 60 bpm: it is sung from its own start, at 60 bpm.
    parts = [("piano", 0, 0, [(0, 1920, 48, "")]),
             ("vocal", 1, 1920, [(0, 480, 60, "啊"), (480, 480, 62, "哦")])]
    path = write_ustx(tmp_path / "s.ustx", parts, tempos=((0, 120), (1920, 60)))
    entry = read_score(path)
    assert [(n["lyric"], n["start"], n["end"]) for n in entry["notes"]] == [("啊", 0.0, 1.0), ("哦", 1.0, 2.0)]
    assert [n["midi"] for n in read_score(path, part=2)["notes"]] == [60, 62]
    with pytest.raises(ScoreError, match="part 1, note 1 \\(bar 1, tick 0\\): a note without a lyric"):
        read_score(path, part=1)
    with pytest.raises(ScoreError, match="no voice part 3; the project has 2: part 1 \\(piano, track 1\\); "
                                         "part 2 \\(vocal, track 2\\)"):
        read_score(path, part=3)
    with pytest.raises(ScoreError, match="a voice part is only chosen in an OpenUtau project"):
        read_score(write_ustx(tmp_path / "s.ust", parts), part=1)


def test_ustx_before_version_0_6_has_one_bpm(tmp_path):
    path = write_ustx(tmp_path / "s.ustx", [("v", 0, 0, [(0, 480, 60, "a"), (480, 960, 62, "o")])], legacy_bpm=60)
    assert [(n["start"], n["end"]) for n in read_score(path)["notes"]] == [(0.0, 1.0), (1.0, 3.0)]


def test_ustx_phonetic_hints_and_the_models_phones(tmp_path):
    # OpenUtau's phonetic hint in brackets is what is sung; `no` stays a lyric (YAML 1.2: not a boolean).
    path = write_ustx(tmp_path / "s.ustx", [("v", 0, 0, [(0, 480, 60, "行[xing]"), (480, 480, 62, "亮"),
                                                          (960, 480, 64, "no")])])
    path.write_text(path.read_text(encoding="utf-8").replace("lyric: 'no'", "lyric: no"), encoding="utf-8")
    entry = read_score(path)
    assert [n["phns"] for n in entry["notes"]] == [["x", "ing"], ["l", "iang"], ["n", "o"]]
    with pytest.raises(ScoreError) as err:
        read_score(path, model_phones={"SP", "AP", "x", "ing", "l", "n", "o"})
    assert err.value.problems == [
        ("part 1, note 2 (bar 1, tick 480): '亮': phone(s) iang never occur in the model's training data "
        "(it has no token for them)")]


def test_ustx_reports_every_problem_with_its_place(tmp_path):
    path = write_ustx(tmp_path / "s.ustx", [("v", 0, 0, [
        (0, 960, 60, "我"), (480, 480, 62, "你"),  # overlaps the note before
        (1920, 480, 64, "xyz"),  # not a syllable
        (2880, 480, 65, "+~"),  # a continuation after a rest
        (3840, 480, 200, "啊"),  # not a MIDI pitch
    ])])
    with pytest.raises(ScoreError) as err:
        read_score(path)
    problems = err.value.problems
    expected = [
        "part 1, note 2 (bar 1, tick 480): overlaps the note before it",
        "part 1, note 3 (bar 2, tick 1920): unknown syllable 'xyz'",
        "part 1, note 4 (bar 2, tick 2880): a melisma (slurred or extended) note with no syllable before it",
        "part 1, note 5 (bar 3, tick 3840): needs a `position` and `duration` in ticks and a `tone` (MIDI 0..127)",
    ]
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected):
        assert problem.startswith(start), (problem, start)


def test_ustx_unreadable_files(tmp_path):
    path = tmp_path / "s.ustx"
    path.write_bytes("name: 歌\n".encode("gb18030"))
    with pytest.raises(ScoreError, match="not UTF-8 text at byte 6"):
        read_score(path)
    path.write_text("name: x\ntempos: [\n", encoding="utf-8")
    with pytest.raises(ScoreError, match="line 3: not readable YAML"):
        read_score(path)
    path.write_text("name: x\ntempos: [{position: 0, bpm: 0}]\nvoice_parts: []\n", encoding="utf-8")
    with pytest.raises(ScoreError) as err:
        read_score(path)
    assert err.value.problems == ["tempo 1: needs a tick `position` >= 0 and a `bpm` > 0, got {'position': 0, 'bpm': 0}",
                                  "no voice parts (no notes to sing)"]


def test_ustx_bar_numbers_follow_time_signature_changes(tmp_path):
    # 4/4 for bars 1-2 (ticks 0-3839), 3/4 from bar 3 (OpenUtau's bar_position 2): 1440 ticks a bar.
    path = write_ustx(tmp_path / "s.ustx", [("v", 0, 0, [(1920, 480, 60, "xa"), (3840, 480, 60, "xb"),
                                                         (5280, 480, 60, "xc")])],
                      signatures=((0, 4, 4), (2, 3, 4)))
    with pytest.raises(ScoreError) as err:
        read_score(path)
    assert [p.split(":")[0] for p in err.value.problems] == [
        "part 1, note 1 (bar 2, tick 1920)", "part 1, note 2 (bar 3, tick 3840)", "part 1, note 3 (bar 4, tick 5280)"]
