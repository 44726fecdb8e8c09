import pytest

from svslm.data.phonemes import (
    FINALS,
    INITIALS,
    PHONEMES,
    PinyinError,
    is_phoneme,
    split_syllable,
    syllable_to_phones,
)


def test_inventory_is_opencpops_58_phones_plus_rests():
    assert len(INITIALS) == 23 and len(FINALS) == 35
    assert len(PHONEMES) == len(set(PHONEMES)) == 60
    assert PHONEMES[:2] == ("SP", "AP")


@pytest.mark.parametrize("syllable, expected", [
    ("hao3", ("h", "ao")), ("zhi", ("zh", "i")), ("shuang", ("sh", "uang")), ("ci", ("c", "i")),
    ("xue", ("x", "ve")), ("ju", ("j", "v")), ("quan", ("q", "van")), ("yun", ("y", "vn")),
    ("yu2", ("y", "v")), ("lüe", ("l", "ve")), ("nue", ("n", "ve")), ("lv", ("l", "v")), ("nu:", ("n", "v")),
    ("wo", ("w", "o")), ("YE", ("y", "e")), ("ai4", (None, "ai")), ("er", (None, "er")), ("e", (None, "e")),
    ("gui", ("g", "ui")), ("liu", ("l", "iu")), ("lun", ("l", "un")),
])
def test_split_syllable_follows_opencpop_spelling(syllable, expected):
    assert split_syllable(syllable) == expected
    initial, final = expected
    assert syllable_to_phones(syllable) == ([initial, final] if initial else [final])
    assert all(is_phoneme(p) for p in syllable_to_phones(syllable))


@pytest.mark.parametrize("bad", ["", "xyz", "ng", "m", "hong kong", "bv"])
def test_split_syllable_rejects_what_opencpop_cannot_sing(bad):
    with pytest.raises(PinyinError):
        split_syllable(bad)
