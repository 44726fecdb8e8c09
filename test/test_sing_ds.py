"""DiffSinger .ds files -> score.json entry -> svs_lb frames, and the .ds `svslm sing --write_ds` writes.

Input files are written by the test in DiffSinger's layout (space-separated strings; a word's
vowel on its note's start, its leading consonant on the end of the note before; SP padding
around each sentence, as OpenUtau exports them); assertions look at the frames
`phones_to_frames` makes of the result (50 fps), at positions the file fixes.
"""
from __future__ import annotations

import json

import librosa
import numpy as np
import pytest

from svslm.data.phonemes import PHONEMES, is_initial
from svslm.sing.diffsinger_ds import save_ds
from svslm.sing.reader import read_score
from svslm.sing.score import ScoreError, ScoreNote, build_score
from svslm.tokenize.svs_lb import phones_to_frames


def ds_sentence(offset, phones, notes, text=None, ph_num=None, **extra):
    """phones: (phone, seconds); notes: (note name | 'rest', seconds[, slur])."""
    notes = [(*n, 0) if len(n) == 2 else n for n in notes]
    sentence = {"offset": offset, "ph_seq": " ".join(p for p, _ in phones), "ph_dur": " ".join(str(d) for _, d in phones),
                "note_seq": " ".join(n for n, _, _ in notes), "note_dur": " ".join(str(d) for _, d, _ in notes),
                "note_slur": " ".join(str(s) for _, _, s in notes)}
    if text is not None:
        sentence["text"] = text
    if ph_num is not None:
        sentence["ph_num"] = ph_num
    sentence.update(extra)
    return sentence


def write_ds(path, sentences):
    path.write_text(json.dumps(sentences, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def frames(entry):
    return phones_to_frames(entry["phones"])


def test_ds_sentences_at_their_offsets_consonants_before_the_notes_and_slurs(tmp_path):
    path = write_ds(tmp_path / "s.ds", [
        # Starts before the song (OpenUtau's head padding): only SP lies there. The consonant `w`
        # ends the head rest note; `o` starts with C4. `ao` spans D4 and a slur on E4.
        ds_sentence(-0.2, [("SP", 0.2), ("w", 0.1), ("o", 0.4), ("h", 0.06), ("ao", 1.44), ("SP", 0.6)],
                    [("rest", 0.3), ("C4", 0.46), ("D4", 0.5), ("E4", 0.94, 1), ("rest", 0.6)],
                    text="SP 我 好 SP", ph_num="2 2 1 1"),
        # Its head padding (2.3-2.6 s) overlaps the tail padding of the one before.
        ds_sentence(2.3, [("SP", 0.3), ("AP", 0.4)], [("rest", 0.7)]),
        # After a gap (3.0-3.5 s: silence).
        ds_sentence(3.5, [("a", 1.0)], [("A4", 1.0)], text="啊"),
    ])
    entry = read_score(path)
    assert [(n["lyric"], n["phns"], n["midi"], n["slur"]) for n in entry["notes"]] == [
        ("我", ["w", "o"], 60, False), ("好", ["h", "ao"], 62, False), ("-", ["ao"], 64, True),
        ("SP", ["SP"], 0, False), ("AP", ["AP"], 0, False), ("SP", ["SP"], 0, False), ("啊", ["a"], 69, False)]
    assert [(p["phn"], p["start"], p["end"]) for p in entry["phones"]] == [
        ("w", 0.0, 0.1), ("o", 0.1, 0.5), ("h", 0.5, 0.56), ("ao", 0.56, 1.06), ("ao", 1.06, 2.0),
        ("SP", 2.0, 2.6), ("AP", 2.6, 3.0), ("SP", 3.0, 3.5), ("a", 3.5, 4.5)]
    phns, midi = frames(entry)
    assert len(phns) == 225 and (phns[4], midi[4]) == ("w", 60) and (phns[25], midi[25]) == ("h", 62)
    assert (phns[52], midi[52]) == ("ao", 62) and (phns[53], midi[53]) == ("ao", 64) and phns[100] == "SP"


def test_ds_a_repeated_vowel_on_a_slur_note_and_the_options(tmp_path):
    # The older layout repeats the vowel for a slur note; key shift and tempo scale apply as for every format.
    path = write_ds(tmp_path / "s.ds", [ds_sentence(0.0, [("n", 0.1), ("i", 0.9), ("i", 1.0)],
                                                    [("G4", 1.0), ("A4", 1.0, 1)])])
    entry = read_score(path, key_shift=-2, tempo_scale=2.0)
    assert [(n["phns"], n["midi"], n["slur"], n["start"], n["end"]) for n in entry["notes"]] == [
        (["n", "i"], 65, False, 0.0, 0.5), (["i"], 67, True, 0.5, 1.0)]
    assert [n["lyric"] for n in entry["notes"]] == ["ni", "-"]  # no `text`: the lyric is spelled from the phones


def test_ds_phones_of_diffsinger_s_dictionary_are_read_as_opencpop_phones(tmp_path):
    # opencpop-extension's zhi, zi, yan, ye; a multilingual voicebank's `zh/` prefix.
    path = write_ds(tmp_path / "s.ds", [ds_sentence(0.0, [
        ("zh", 0.1), ("ir", 0.4), ("z", 0.1), ("i0", 0.4), ("zh/y", 0.1), ("zh/En", 0.4), ("y", 0.1), ("E", 0.4)],
        [("C4", 0.5), ("D4", 0.5), ("E4", 0.5), ("F4", 0.5)])])
    assert [n["phns"] for n in read_score(path)["notes"]] == [["zh", "i"], ["z", "i"], ["y", "an"], ["y", "e"]]


def test_ds_reports_every_problem_with_its_sentence(tmp_path):
    good = ds_sentence(0.0, [("SP", 0.5), ("m", 0.1), ("a", 0.4)], [("rest", 0.6), ("C4", 0.4)])
    path = write_ds(tmp_path / "s.ds", [
        good,
        ds_sentence(1.0, [("ka", 0.5), ("b", 0.5)], [("C4", 0.5), ("rest", 0.5)]),  # ka: no such phone; b: no final
        ds_sentence(2.0, [("a", 0.5)], [("C4", 0.25), ("H4", 0.25)]),  # H4 is no note name
        ds_sentence(3.0, [("a", 0.5), ("o", 0.5)], [("C4", 0.5)]),  # 1 s of phones, 0.5 s of notes
        ds_sentence(4.0, [("a", 0.5), ("o", 0.5)], [("C4", 0.5), ("rest", 0.5)], ph_num="3"),  # o over a rest
        {"offset": 5.0, "ph_seq": "a", "ph_dur": "0.5 0.5", "note_seq": "C4", "note_dur": "1.0"},
        {"offset": 6.0, "ph_seq": "a", "note_seq": "C4", "note_dur": 0.5},  # no ph_dur; note_dur not a string
        ds_sentence(6.2, [("a", 0.5)], [("C4", 0.5)]),
        ds_sentence(6.5, [("e", 0.5)], [("D4", 0.5)]),  # starts while sentence 7 still sings
        {"offset": 8.0, "ph_seq": "", "ph_dur": "", "note_seq": "", "note_dur": ""},
    ])
    with pytest.raises(ScoreError) as err:
        read_score(path)
    assert err.value.problems == [
        "sentence 1, phone 0 ('ka' at 1.000 s): not an Opencpop phone",
        "sentence 1, phone 1 ('b' at 1.500 s): an initial (consonant) not followed by a final (vowel)",
        "sentence 2: `note_seq` item 1 'H4' is not a note name",
        "sentence 3: the phones last 1.000 s (`ph_dur`) but the notes 0.500 s (`note_dur`)",
        "sentence 4: `ph_num` counts 3 phones, `ph_seq` has 2",
        "sentence 5: 1 phones in `ph_seq` but 2 durations in `ph_dur`",
        "sentence 6: no `ph_dur`",
        "sentence 6: `note_dur` is a float, not a space-separated string",
        "sentence 9: no phones",
        "sentence 8: starts at 6.500 s, 0.200 s before the sentence before it ends, over sung phones",
    ]
    path = write_ds(tmp_path / "rest.ds", [ds_sentence(0.0, [("a", 0.5), ("o", 0.5)], [("C4", 0.5), ("rest", 0.5)])])
    with pytest.raises(ScoreError, match="sentence 0, phone 1 \\('o' at 0.500 s\\): a vowel sung over a rest note"):
        read_score(path)
    path.write_text('[{"offset": 0.0,', encoding="utf-8")
    with pytest.raises(ScoreError, match="line 1: not readable JSON"):
        read_score(path)


# ---- the .ds `svslm sing --write_ds` writes --------------------------------------------------------
def sung_score():
    """A score with what --write_ds must keep: initials, a zero-initial syllable, a melisma, a breath, rests."""
    pieces = [(0.5, "好", 60), (0.5, "-", 62), (0.4, "SP", 0), (0.6, "爱", 64), (0.3, "AP", 0), (0.8, "ni3", 65),
              (1.0, "SP", 0), (0.7, "xue", 67)]
    notes, t = [], 0.0
    for k, (seconds, lyric, midi) in enumerate(pieces):
        notes.append(ScoreNote(t, t + seconds, midi, None if lyric == "-" else lyric, f"note {k}", melisma=lyric == "-"))
        t += seconds
    return build_score(notes, "test")


RANGES = [(0, 180), (180, 240)]  # two sentences, cut inside the rest at 3.6 s


def test_written_ds_reads_back_to_what_was_sung(tmp_path):
    score = sung_score()
    path = tmp_path / "sung.ds"
    save_ds(path, score, RANGES, np.full(1000, 220.0))
    again = read_score(path)
    phns, midi = frames(score)
    phns_again, midi_again = frames(again)
    assert phns_again == phns and (midi_again == midi).all()
    strip = [{k: n[k] for k in ("start", "end", "midi", "lyric", "phns", "slur")} for n in score["notes"]]
    assert [{k: n[k] for k in strip[0]} for n in again["notes"]] == strip
    assert json.loads(path.read_text(encoding="utf-8"))[1]["f0_seq"].split()[:2] == ["220.0", "220.0"]


def test_written_ds_has_diffsinger_s_layout(tmp_path):
    path = tmp_path / "sung.ds"
    rng = np.random.default_rng(0)
    f0 = rng.uniform(100, 400, size=1000)
    save_ds(path, sung_score(), RANGES, f0)
    sentences = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(sentences, list) and len(sentences) == 2
    end = 0.0
    for s in sentences:
        assert isinstance(s["offset"], float) and s["offset"] == pytest.approx(end)  # the sentences tile the song
        for key in ("text", "ph_seq", "ph_dur", "ph_num", "note_seq", "note_dur", "note_slur", "f0_seq", "f0_timestep"):
            assert isinstance(s[key], str), key  # DiffSinger splits each on spaces
        ph_seq, ph_dur = s["ph_seq"].split(), np.array(s["ph_dur"].split(), float)
        ph_num = np.array(s["ph_num"].split(), int)
        notes = [0 if n == "rest" else librosa.note_to_midi(n) for n in s["note_seq"].split()]
        note_dur, slur = np.array(s["note_dur"].split(), float), np.array(s["note_slur"].split(), int)
        assert set(ph_seq) <= set(PHONEMES) and len(ph_dur) == len(ph_seq) and ph_num.sum() == len(ph_seq)
        assert len(note_dur) == len(notes) == len(slur) and (ph_dur > 0).all() and (note_dur > 0).all()
        assert ph_dur.sum() == pytest.approx(note_dur.sum())
        # A word's duration, as DiffSinger computes it from the phones (ph_num) and from the notes
        # (a note that is not a slur starts a word): the same, so DiffSinger reads the words we sang.
        ph2word = np.repeat(np.arange(len(ph_num)), ph_num)
        note2word = np.cumsum(slur == 0) - 1
        word_dur_phones = np.bincount(ph2word, weights=ph_dur, minlength=len(ph_num))
        word_dur_notes = np.bincount(note2word, weights=note_dur, minlength=len(ph_num))
        assert len(s["text"].split()) == len(ph_num) == note2word[-1] + 1
        np.testing.assert_allclose(word_dur_phones, word_dur_notes, atol=1e-9)
        # Each word starts with a vowel or a rest (DiffSinger aligns vowels with notes), except a
        # consonant that opens the song before any note.
        starts = np.concatenate([[0], np.cumsum(ph_num)[:-1]])
        assert not any(is_initial(ph_seq[k]) for k in starts[1:])
        timestep = float(s["f0_timestep"])
        f0_seq = np.array(s["f0_seq"].split(), float)
        assert len(f0_seq) == round(ph_dur.sum() / timestep)
        first = round(s["offset"] / timestep)
        np.testing.assert_allclose(f0_seq, f0[first:first + len(f0_seq)], atol=0.05)  # one decimal
        end += ph_dur.sum()
    assert sentences[0]["ph_seq"] == "h ao SP ai AP n i SP"  # the melisma's `ao` is one phone over two notes
    assert sentences[0]["note_slur"] == "0 0 1 0 0 0 0 0"
    assert sentences[0]["note_seq"] == "rest C4 D4 rest E4 rest F4 rest"
