"""Score readers of `svslm sing`: MusicXML, MIDI and Opencpop line -> score.json entry -> svs_lb frames.

Every score is written by the test (music21 / mido / a text line); assertions look at the
frames `phones_to_frames` makes of the result (50 fps), at positions the score fixes.
"""
from __future__ import annotations

import mido
import pytest
from music21 import chord, meter, note, spanner, stream, tempo, tie

from svslm.sing.durations import read_consonant_table, training_consonant_table
from svslm.sing.reader import read_score
from svslm.sing.score import ScoreConfig, ScoreError, ScoreNote, build_score
from svslm.tokenize.svs_lb import phones_to_frames

CONSONANT_FRAMES = 4  # ScoreConfig's 0.08 s initial, on notes long enough that the share does not bind


# ---- MusicXML -----------------------------------------------------------------------------------
def write_musicxml(path, measures, tempos=None, slurs=(), part_before=None):
    """measures: lists of (pitch | 'rest' | [pitches] for a chord, quarter length, lyric | None, tie type | None);
    tempos: {measure number: quarter bpm}; slurs: ((measure, index), (measure, index)) pairs, 1-based."""
    score = stream.Score()
    if part_before is not None:
        score.insert(0, part_before)
    part = stream.Part()
    written = {}
    for m_number, items in enumerate(measures, 1):
        measure = stream.Measure(number=m_number)
        if m_number == 1:
            measure.insert(0, meter.TimeSignature("4/4"))
        if tempos and m_number in tempos:
            measure.insert(0, tempo.MetronomeMark(number=tempos[m_number]))
        for k, (pitch, ql, lyric, tie_type) in enumerate(items, 1):
            if pitch == "rest":
                element = note.Rest(quarterLength=ql)
            elif isinstance(pitch, list):
                element = chord.Chord(pitch, quarterLength=ql)
            else:
                element = note.Note(pitch, quarterLength=ql)
            if lyric:
                element.lyric = lyric
            if tie_type:
                element.tie = tie.Tie(tie_type)
            measure.append(element)
            written[(m_number, k)] = element
        part.append(measure)
    for first, last in slurs:
        part.insert(0, spanner.Slur([written[first], written[last]]))
    score.insert(0, part)
    score.write("musicxml", fp=str(path))
    return path


def frames(entry):
    return phones_to_frames(entry["phones"])


def test_musicxml_notes_rests_and_lyrics_become_frames(tmp_path):
    # 120 bpm: a quarter note is 0.5 s = 25 frames.
    path = write_musicxml(tmp_path / "s.musicxml", [[
        ("C4", 1, "我", None), ("D4", 1, "爱", None), ("rest", 1, None, None), ("E4", 1, "ni3", None),
    ]], tempos={1: 120})
    entry = read_score(path)
    assert [n["phns"] for n in entry["notes"]] == [["w", "o"], ["ai"], ["SP"], ["n", "i"]]
    phns, midi = frames(entry)
    assert len(phns) == 100
    assert phns[0] == "w" and midi[0] == 60 and phns[CONSONANT_FRAMES - 1] == "w"
    assert phns[CONSONANT_FRAMES] == "o" and phns[24] == "o" and midi[24] == 60
    assert phns[25] == "ai" and midi[25] == 62 and phns[49] == "ai"
    assert phns[50] == "SP" and midi[50] == 0 and phns[74] == "SP"
    assert phns[75] == "n" and midi[75] == 64 and phns[75 + CONSONANT_FRAMES] == "i"


def test_musicxml_ties_are_merged_into_one_note(tmp_path):
    path = write_musicxml(tmp_path / "s.musicxml", [
        [("C4", 2, "好", None), ("G4", 2, "的", "start")],
        [("G4", 1, None, "stop"), ("rest", 3, None, None)],
    ], tempos={1: 120})
    entry = read_score(path)
    notes = entry["notes"]
    assert [n["lyric"] for n in notes] == ["好", "的", "SP"]
    assert notes[1]["start"] == pytest.approx(1.0) and notes[1]["end"] == pytest.approx(2.5)
    phns, midi = frames(entry)
    assert phns[50:125] == ["d"] * CONSONANT_FRAMES + ["e"] * (75 - CONSONANT_FRAMES)
    assert set(midi[50:125]) == {67} and phns[125] == "SP"


def test_musicxml_slur_continues_the_syllable_on_a_new_pitch(tmp_path):
    path = write_musicxml(tmp_path / "s.musicxml", [[
        ("E4", 1, "你", None), ("F4", 1, None, None), ("G4", 1, None, None), ("A4", 1, "好", None),
    ]], tempos={1: 120}, slurs=[((1, 1), (1, 3))])
    entry = read_score(path)
    notes = entry["notes"]
    assert [(n["lyric"], n["phns"], n["slur"]) for n in notes] == [
        ("你", ["n", "i"], False), ("-", ["i"], True), ("-", ["i"], True), ("好", ["h", "ao"], False)]
    phns, midi = frames(entry)
    assert (phns[25], midi[25]) == ("i", 65) and (phns[50], midi[50]) == ("i", 67) and (phns[75], midi[75]) == ("h", 69)
    assert [p["phn"] for p in entry["phones"]] == ["n", "i", "i", "i", "h", "ao"]  # a phone entry per pitch


def test_musicxml_lyric_extender_continues_the_syllable(tmp_path):
    path = write_musicxml(tmp_path / "s.musicxml", [[
        ("E4", 1, "啊", None), ("F4", 1, None, None), ("G4", 2, "哦", None),
    ]], tempos={1: 120})
    plain = path.read_text(encoding="utf-8")
    with pytest.raises(ScoreError) as err:  # without extender or slur, a lyric-less note is an error
        read_score(path)
    assert "measure 1, note 2: a note without a lyric" in str(err.value)
    path.write_text(plain.replace("<text>啊</text>", "<text>啊</text><extend />"), encoding="utf-8")
    entry = read_score(path)
    assert [(n["phns"], n["slur"], n["midi"]) for n in entry["notes"]] == [
        (["a"], False, 64), (["a"], True, 65), (["o"], False, 67)]


def test_musicxml_tempo_changes_follow_the_tempo_map(tmp_path):
    # Measure 1 at 60 bpm (4 s), measure 2 at 120 bpm (2 s).
    path = write_musicxml(tmp_path / "s.musicxml", [
        [("C4", 4, "一", None)],
        [("D4", 1, "二", None), ("E4", 3, "三", None)],
    ], tempos={1: 60, 2: 120})
    entry = read_score(path)
    assert [(n["start"], n["end"]) for n in entry["notes"]] == [(0.0, 4.0), (4.0, 4.5), (4.5, 6.0)]
    phns, midi = frames(entry)
    assert len(phns) == 300 and phns[200] == "er" and midi[200] == 62 and phns[225] == "s" and midi[225] == 64


def test_key_shift_and_tempo_scale(tmp_path):
    path = write_musicxml(tmp_path / "s.musicxml", [[("C4", 2, "我", None), ("rest", 2, None, None)]], tempos={1: 120})
    entry = read_score(path, key_shift=-3, tempo_scale=2.0)
    assert [n["midi"] for n in entry["notes"]] == [57, 0]  # rests stay 0
    assert entry["notes"][0]["end"] == pytest.approx(0.5) and entry["notes"][1]["end"] == pytest.approx(1.0)
    phns, midi = frames(entry)
    assert len(phns) == 50 and midi[10] == 57 and phns[30] == "SP"


def test_consonant_share_binds_on_short_notes(tmp_path):
    # A 16th at 120 bpm lasts 0.125 s: the initial takes 40% (0.05 s), not 0.08 s.
    path = write_musicxml(tmp_path / "s.musicxml", [[("C4", 0.25, "发", None), ("rest", 3.75, None, None)]], tempos={1: 120})
    entry = read_score(path, ScoreConfig(consonant_seconds=0.08, consonant_max_share=0.4))
    f, a = entry["phones"][:2]
    assert (f["phn"], a["phn"]) == ("f", "a")
    assert f["end"] - f["start"] == pytest.approx(0.05) and a["end"] - a["start"] == pytest.approx(0.075)


def test_musicxml_reports_every_problem_with_its_place(tmp_path):
    path = write_musicxml(tmp_path / "s.musicxml", [
        [("C4", 1, "我", None), ("rest", 1, "啦", None), ("D4", 1, "xyz", None), (["E4", "G4"], 1, "的", None)],
        [("C7", 1, "高", None), ("C4", 1, "你好", None), ("D4", 1, None, None), ("rest", 1, None, None)],
    ], tempos={1: 120})
    with pytest.raises(ScoreError) as err:
        read_score(path, pitch_range=(48, 84))
    problems = err.value.problems
    expected = {
        "measure 1, note 2": "lyric '啦' on a rest",
        "measure 1, note 3": "unknown syllable 'xyz'",
        "measure 1, note 4": "a chord",
        "measure 2, note 1": "outside the model's range",
        "measure 2, note 2": "is not one syllable",
        "measure 2, note 3": "a note without a lyric",
    }
    for place, what in expected.items():
        assert any(p.startswith(place) and what in p for p in problems), (place, what, problems)
    assert len(problems) == len(expected)


def test_musicxml_reports_tie_problems_and_notes_shorter_than_a_frame(tmp_path):
    path = write_musicxml(tmp_path / "s.musicxml", [
        [("C4", 1, "我", "start"), ("D4", 1, None, "stop"), ("G4", 1, "的", "start"), ("G4", 1, "了", "stop")],
        [("C4", 0.03125, "啊", None), ("rest", 3.96875, None, None)],
    ], tempos={1: 120})
    with pytest.raises(ScoreError) as err:
        read_score(path)
    assert err.value.problems == [
        "measure 1, note 2: a tie that does not continue a note of the same pitch",
        "measure 1, note 4: lyric '了' on a tied note (a lyric without a note of its own)",
        "measure 2, note 1: lasts 0.016 s, shorter than one frame (0.02 s)",
    ]


def test_phones_the_model_has_no_token_for_are_reported(tmp_path):
    path = write_musicxml(tmp_path / "s.musicxml", [[("C4", 2, "亮", None), ("D4", 1, "的", None), ("E4", 1, None, None)]],
                          tempos={1: 120}, slurs=[((1, 1), (1, 3))])
    known = {"SP", "AP", "l", "d", "e", "a"}  # no `iang`: a corpus without the syllable has no token for it
    with pytest.raises(ScoreError) as err:
        read_score(path, model_phones=known)
    assert err.value.problems == [
        "measure 1, note 1: '亮': phone(s) iang never occur in the model's training data (it has no token for them)"]
    opencpop = tmp_path / "line.txt"
    opencpop.write_text(LINE + "\n", encoding="utf-8")
    with pytest.raises(ScoreError, match="note 2 \\(h_ao\\): phone\\(s\\) h, ao never occur"):
        read_score(opencpop, model_phones={"SP", "AP", "n", "i"})


def test_the_part_with_lyrics_is_sung(tmp_path):
    piano = stream.Part([stream.Measure([note.Note("C2", quarterLength=4)], number=1)])
    path = write_musicxml(tmp_path / "s.musicxml", [[("A4", 4, "啊", None)]], tempos={1: 120}, part_before=piano)
    assert [n["midi"] for n in read_score(path)["notes"]] == [69]


# ---- MIDI -----------------------------------------------------------------------------------------
TPB = 480


def write_midi(path, events, tempos=((0, 120),), stray_lyrics=()):
    """events: (start beat, length in beats, pitch, lyric | None); tempos: (beat, bpm) changes;
    stray_lyrics: (beat, text) lyric events placed where no note starts."""
    midi = mido.MidiFile(ticks_per_beat=TPB, charset="utf-8")
    track = mido.MidiTrack()
    midi.tracks.append(track)
    timed = [(int(b * TPB), 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for b, bpm in tempos]
    timed.append((0, 0, mido.MetaMessage("time_signature", numerator=4, denominator=4)))
    for start, length, pitch, lyric in events:
        on, off = int(start * TPB), int((start + length) * TPB)
        if lyric is not None:
            timed.append((on, 1, mido.MetaMessage("lyrics", text=lyric)))
        timed.append((on, 2, mido.Message("note_on", note=pitch, velocity=90)))
        timed.append((off, 0, mido.Message("note_off", note=pitch, velocity=0)))
    timed += [(int(b * TPB), 1, mido.MetaMessage("lyrics", text=text)) for b, text in stray_lyrics]
    now = 0
    for tick, _, msg in sorted(timed, key=lambda x: (x[0], x[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    midi.save(str(path))
    return path


def test_midi_embedded_lyrics_tempo_map_rests_and_melisma(tmp_path):
    path = write_midi(tmp_path / "s.mid", [
        (1, 1, 60, "我"),  # a beat of silence first: SP
        (2, 0.98, 62, "唱"),  # 0.02-beat gap (10 ms): joined to the note
        (3, 1, 64, "-"),  # melisma mark
        (4, 1, 65, None),  # no lyric: melisma too
        (6, 2, 67, "ge1"),  # after the tempo change to 60 bpm at beat 5
    ], tempos=((0, 120), (5, 60)))
    entry = read_score(path)
    assert [(n["lyric"], n["phns"], n["midi"]) for n in entry["notes"]] == [
        ("SP", ["SP"], 0), ("我", ["w", "o"], 60), ("唱", ["ch", "ang"], 62), ("-", ["ang"], 64),
        ("-", ["ang"], 65), ("SP", ["SP"], 0), ("ge1", ["g", "e"], 67)]
    phns, midi = frames(entry)
    # beats 0..5 at 0.5 s each = 2.5 s; beat 5..6 at 1 s (SP), then 2 beats = 2 s.
    assert len(phns) == 275
    assert phns[0] == "SP" and phns[24] == "SP" and phns[25] == "w" and (phns[50], midi[50]) == ("ch", 62)
    assert (phns[74], midi[74]) == ("ang", 62)  # the 10 ms gap is gone
    assert (phns[75], midi[75]) == ("ang", 64) and (phns[100], midi[100]) == ("ang", 65)
    assert phns[125] == "SP" and phns[174] == "SP" and (phns[175], midi[175]) == ("g", 67)


def test_midi_with_a_separate_lyric_text(tmp_path):
    path = write_midi(tmp_path / "s.mid", [(0, 1, 60, None), (1, 1, 62, None), (2, 1, 64, None)])
    (tmp_path / "ok.txt").write_text("我们 -\n", encoding="utf-8")
    entry = read_score(path, lyrics=tmp_path / "ok.txt")
    assert [n["phns"] for n in entry["notes"]] == [["w", "o"], ["m", "en"], ["en"]]
    (tmp_path / "long.txt").write_text("wo men de ge\n", encoding="utf-8")
    with pytest.raises(ScoreError) as err:
        read_score(path, lyrics=tmp_path / "long.txt")
    assert err.value.problems == [f"{tmp_path / 'long.txt'}:1: syllable 4 'ge' has no note (the MIDI file has 3 notes)"]
    (tmp_path / "short.txt").write_text("wo\n", encoding="utf-8")
    with pytest.raises(ScoreError) as err:
        read_score(path, lyrics=tmp_path / "short.txt")
    assert [p.split(":")[0] for p in err.value.problems] == ["measure 1, note 2", "measure 1, note 3"]


def test_midi_reports_lyrics_without_notes_and_overlapping_notes(tmp_path):
    path = write_midi(tmp_path / "s.mid", [
        (0, 2, 60, "我"), (1, 1, 64, "你"),  # the second starts while the first sounds
        (4, 1, 62, "好"),
    ], stray_lyrics=[(5, "啦")])
    with pytest.raises(ScoreError) as err:
        read_score(path)
    problems = err.value.problems
    assert any(p.startswith("measure 1, note 2: overlaps the note before it (measure 1, note 1)") for p in problems)
    assert any(p.startswith("measure 2 (at 2.500 s): lyric '啦' has no note") for p in problems)
    assert len(problems) == 2


def test_midi_melisma_without_a_syllable_and_a_note_that_never_ends(tmp_path):
    path = write_midi(tmp_path / "s.mid", [(0, 1, 60, "-"), (1, 1, 62, "好")])
    midi = mido.MidiFile(str(path))
    midi.tracks[0].append(mido.Message("note_on", note=64, velocity=90, time=960))  # struck, never released
    midi.save(str(path))
    with pytest.raises(ScoreError) as err:
        read_score(path)
    assert err.value.problems == [  # in score order, whichever check found them
        "measure 1, note 1: a melisma (slurred or extended) note with no syllable before it to continue",
        "measure 2: a note starting at 2.000 s never ends",
    ]


# ---- Opencpop transcription line ---------------------------------------------------------------
LINE = ("2001000001|你好啊|SP n i h ao ao AP|rest C4 C4 D4 D4 E4 rest|0.5 1.0 1.0 0.8 0.8 0.6 0.3|"
        "0.5 0.1 0.9 0.15 0.65 0.6 0.3|0 0 0 0 0 1 0")


def test_opencpop_line_keeps_its_phone_durations(tmp_path):
    path = tmp_path / "transcriptions.txt"
    path.write_text(LINE + "\n2001000002|" + LINE.split("|", 1)[1] + "\n", encoding="utf-8")
    with pytest.raises(ScoreError, match="2 lines; choose one with --utt"):
        read_score(path)
    entry = read_score(path, utt="2001000001", key_shift=2)
    assert [(n["phns"], n["midi"], n["slur"]) for n in entry["notes"]] == [
        (["SP"], 0, False), (["n", "i"], 62, False), (["h", "ao"], 64, False), (["ao"], 66, True), (["AP"], 0, False)]
    phns, midi = frames(entry)
    assert len(phns) == 160 and phns[25:30] == ["n"] * 5 and phns[30] == "i" and (phns[85], midi[85]) == ("ao", 64)
    assert (phns[115], midi[115]) == ("ao", 66) and phns[150] == "AP"
    with pytest.raises(ScoreError, match="note 3 \\(ao\\): pitch"):
        read_score(path, utt="2001000001", pitch_range=(60, 63))


# ---- initial durations ---------------------------------------------------------------------------
def test_initial_durations_from_a_table_or_the_training_scores(tmp_path):
    table_file = tmp_path / "durations.txt"
    table_file.write_text("# initial seconds\ns 0.15\nb 0.03\n", encoding="utf-8")
    table = read_consonant_table(table_file)
    assert table == {"s": 0.15, "b": 0.03}
    notes = [ScoreNote(0.0, 1.0, 60, "三", "n1"), ScoreNote(1.0, 2.0, 62, "八", "n2"),
             ScoreNote(2.0, 3.0, 64, "是", "n3"), ScoreNote(3.0, 3.25, 65, "四", "n4")]
    entry = build_score(notes, "t", consonant_table=table)
    initials = [(p["phn"], round(p["end"] - p["start"], 4)) for p in entry["phones"] if p["phn"] in ("s", "b", "sh")]
    # s and b from the table, sh (not in it) the fixed 0.08 s, the last s capped at 40% of 0.25 s.
    assert initials == [("s", 0.15), ("b", 0.03), ("sh", 0.08), ("s", 0.1)]

    table_file.write_text("s 0.1\nSP 0.2\nx fast\nb\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        read_consonant_table(table_file)
    assert [line.split(": ")[0].rsplit(":", 1)[1] for line in str(err.value).splitlines()[1:]] == ["2", "3", "4"]

    phones = [{"phn": "s", "start": 0, "end": d} for d in (0.1, 0.2, 0.3, 0.4, 0.5)] + \
             [{"phn": "b", "start": 0, "end": 0.05}] * 4 + [{"phn": "a", "start": 0, "end": 1.0}] * 9
    assert training_consonant_table([{"notes": [], "phones": phones}]) == {"s": pytest.approx(0.3)}  # b: too few to trust
