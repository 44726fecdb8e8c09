"""Score checks and the fitting of a label to its audio's length."""
from svslm.data.utterance import AudioRef, Note, Phone, Utterance
from svslm.data.validate import Tolerances, check_score, fit_to_audio, normalize_times


def utterance() -> Utterance:
    """SP 0-0.2 | m_a 0.2-1.0 (m 0.2-0.3) | SP 1.0-1.3 | AP 1.3-1.5."""
    notes = [Note(0.0, 0.2, 0, "SP", ["SP"]), Note(0.2, 1.0, 64, "ma", ["m", "a"]),
             Note(1.0, 1.3, 0, "SP", ["SP"]), Note(1.3, 1.5, 0, "AP", ["AP"])]
    phones = [Phone("SP", 0.0, 0.2, 0), Phone("m", 0.2, 0.3, 1), Phone("a", 0.3, 1.0, 1),
              Phone("SP", 1.0, 1.3, 2), Phone("AP", 1.3, 1.5, 3)]
    return Utterance("s#1", "s", "2001", "train", notes, phones, AudioRef(path="x.wav"), "x:1")


def test_a_clean_score_has_no_problem():
    assert check_score(utterance(), Tolerances()) == []


def test_slur_must_continue_the_previous_final():
    utt = utterance()
    utt.notes[2] = Note(1.0, 1.3, 66, "-", ["o"], slur=True)
    utt.phones[3] = Phone("o", 1.0, 1.3, 2)
    assert check_score(utt, Tolerances()) == ["note 2 (o): slur does not continue the previous note's final"]


def test_rest_with_pitch_and_first_phone_late_are_reported():
    utt = utterance()
    utt.notes[0].midi = 60
    utt.phones[0].start = 0.05
    problems = check_score(utt, Tolerances())
    assert "note 0 (SP): a rest must have MIDI 0, has 60" in problems
    assert "first phone starts at 0.05 s, not 0" in problems


def test_short_audio_shortens_trailing_rests():
    fitted, problem = fit_to_audio(utterance(), 1.1, Tolerances(label_audio=0.05))
    assert problem is None
    assert [(p.phn, p.start, p.end) for p in fitted.phones][-1] == ("SP", 1.0, 1.1)
    assert len(fitted.notes) == 3 and fitted.notes[-1].end == 1.1


def test_short_audio_cutting_into_singing_beyond_tolerance_is_a_problem():
    fitted, problem = fit_to_audio(utterance(), 0.8, Tolerances(label_audio=0.1))
    assert fitted is None and "audio lasts 0.8 s but the label ends at 1.5 s (sung phones end at 1 s" in problem


def test_long_audio_within_tolerance_is_accepted_beyond_is_not():
    assert fit_to_audio(utterance(), 1.55, Tolerances(label_audio=0.1)) == (utterance(), None)
    fitted, problem = fit_to_audio(utterance(), 1.7, Tolerances(label_audio=0.1))
    assert fitted is None and "label ends at 1.5 s but the audio lasts 1.7 s" in problem


def test_normalize_times_makes_phones_contiguous_and_snaps_notes():
    utt = utterance()
    utt.phones[2].end = 1.00004
    utt.notes[1].end = 0.99
    out = normalize_times(utt)
    assert [p.start for p in out.phones[1:]] == [p.end for p in out.phones[:-1]]
    assert out.phones[2].end == 1.0 and out.notes[1].end == 1.0 and out.notes[1].start == 0.2
