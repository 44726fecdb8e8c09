"""Sung lyrics (Chinese characters or pinyin, one syllable per note) -> Opencpop phones.

Characters are read with pypinyin over the whole lyric at once, so that a polyphonic character
takes the reading its neighbours imply (音乐 `yin yue`, 快乐 `kuai le`); the pinyin is then
split into Opencpop's initial + final by `svslm.data.phonemes`, the same split stage 1 uses.
"""
from __future__ import annotations

import re
import unicodedata

from pypinyin import Style, lazy_pinyin
from pypinyin.contrib.tone_convert import to_normal

from svslm.data.phonemes import PinyinError, syllable_to_phones

HAN_CHARACTER = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")  # CJK unified ideographs


def clean_lyric(text: str) -> str:
    """A lyric without spaces and punctuation (scores often attach `，` or `"` to a syllable)."""
    return "".join(c for c in text if not c.isspace() and not unicodedata.category(c).startswith("P"))


def lyrics_to_phones(lyrics: list[str]) -> list[list[str] | str]:
    """For each lyric (one sung syllable), its phones `[initial, final]` / `[final]`, or a string
    saying why it cannot be sung. Lyrics are cleaned with `clean_lyric` first."""
    cleaned = [clean_lyric(x) for x in lyrics]
    out: list[list[str] | str] = [""] * len(lyrics)
    han_positions = []
    for i, (raw, text) in enumerate(zip(lyrics, cleaned)):
        n_han = len(HAN_CHARACTER.findall(text))
        if not text:
            out[i] = f"lyric {raw!r} has no syllable"
        elif n_han == 1 and len(text) == 1:
            han_positions.append(i)
        elif n_han:
            out[i] = f"lyric {raw!r} is not one syllable (one character or one pinyin syllable per note)"
        else:
            out[i] = _pinyin_phones(raw, to_normal(text))
    # One pypinyin call over all characters in order: readings of polyphonic characters use context.
    # `errors` keeps one reading per character even for a character pypinyin does not know.
    readings = lazy_pinyin(
        "".join(cleaned[i] for i in han_positions), style=Style.NORMAL, errors=lambda chars: ["?"] * len(chars)
    )
    for i, reading in zip(han_positions, readings):
        out[i] = _pinyin_phones(lyrics[i], reading)
    return out


def _pinyin_phones(raw: str, syllable: str) -> list[str] | str:
    try:
        return syllable_to_phones(syllable)
    except PinyinError:
        return f"unknown syllable {raw!r} (read as {syllable!r}; not in Opencpop's inventory)"
