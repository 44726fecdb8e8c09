"""The Opencpop phoneme inventory and pinyin syllable -> phones.

Opencpop (and ACE-Opencpop, which reuses its annotation) writes every sung syllable as an
initial + final pair, or a lone final for a zero-initial syllable (爱 `ai`, 二 `er`). `y` and `w`
count as initials, and `ü` is written `v` (居 `j v`, 远 `y van`, 略 `l ve`), so the finals are
the spelled pinyin finals, not the phonological ones. `SP` is silence and `AP` a breath.
The inventory below is the 58 phones of Opencpop's dictionary plus the two rests.

    >>> split_syllable("xue3")
    ('x', 've')
    >>> syllable_to_phones("ai")
    ['ai']
"""
from __future__ import annotations

INITIALS: tuple[str, ...] = (
    "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
    "j", "q", "x", "zh", "ch", "sh", "r", "z", "c", "s", "y", "w",
)
FINALS: tuple[str, ...] = (
    "a", "ai", "an", "ang", "ao", "e", "ei", "en", "eng", "er",
    "i", "ia", "ian", "iang", "iao", "ie", "in", "ing", "iong", "iu",
    "o", "ong", "ou", "u", "ua", "uai", "uan", "uang", "ui", "un", "uo",
    "v", "van", "ve", "vn",
)
REST = "SP"  # silence between phrases and words
BREATH = "AP"  # an audible breath
RESTS: tuple[str, ...] = (REST, BREATH)
# The whole inventory in a fixed order (token lists are built from it).
PHONEMES: tuple[str, ...] = RESTS + INITIALS + FINALS

_INITIAL_SET = frozenset(INITIALS)
_FINAL_SET = frozenset(FINALS)
_PHONEME_SET = frozenset(PHONEMES)
# After j, q, x and y a written `u` is ü; Opencpop spells it `v`.
_U_AS_V = {"u": "v", "uan": "van", "ue": "ve", "un": "vn"}


class PinyinError(ValueError):
    """A syllable that is not pinyin, or not in Opencpop's inventory."""


def is_phoneme(phn: str) -> bool:
    return phn in _PHONEME_SET


def is_initial(phn: str) -> bool:
    return phn in _INITIAL_SET


def is_final(phn: str) -> bool:
    return phn in _FINAL_SET


def is_rest(phn: str) -> bool:
    return phn in RESTS


def split_syllable(syllable: str) -> tuple[str | None, str]:
    """(initial or None, final) of a pinyin syllable in Opencpop's spelling.

    Accepts tone digits (`hao3`) and `ü` written `ü`, `u:` or `v`; case does not matter.
    Hand-written because pypinyin's initial/final split follows the phonological convention
    (`y`/`w` are not initials, `iou` instead of `iu`, `ü` kept), which is not Opencpop's.
    """
    s = syllable.strip().lower().rstrip("012345").replace("ü", "v").replace("u:", "v")
    if not s:
        raise PinyinError(f"empty syllable {syllable!r}")
    # Longest initial first: zh/ch/sh before z/c/s.
    initial = next((i for i in sorted(INITIALS, key=len, reverse=True) if s.startswith(i)), None)
    final = s[len(initial):] if initial else s
    if initial in ("j", "q", "x", "y"):
        final = _U_AS_V.get(final, final)
    elif initial in ("n", "l") and final == "ue":
        final = "ve"  # nüe / lüe are often typed nue / lue
    if final not in _FINAL_SET or not _allowed(initial, final):
        raise PinyinError(f"{syllable!r} is not a pinyin syllable in Opencpop's inventory")
    return initial, final


def _allowed(initial: str | None, final: str) -> bool:
    """Coarse Mandarin phonotactics, enough to refuse typos such as `bv` or `gi`."""
    if initial is None:
        return final[0] in "aoe"  # i-, u- and ü-syllables are spelt with y/w
    if initial == "y":
        return final in ("i", "in", "ing", "v", "van", "ve", "vn") or final[0] in "aoe"
    if initial == "w":
        return final in ("u",) or final[0] in "aoe"
    if final[0] == "v":
        return initial in ("j", "q", "x", "n", "l") and (initial in "jqx" or final in ("v", "ve"))
    if initial in ("j", "q", "x"):
        return final[0] == "i"
    if final[0] == "i":
        return final == "i" or initial in ("b", "p", "m", "d", "t", "n", "l")
    return True


def syllable_to_phones(syllable: str) -> list[str]:
    """Phones of one sung syllable: `[initial, final]`, or `[final]` without an initial."""
    initial, final = split_syllable(syllable)
    return [initial, final] if initial else [final]
