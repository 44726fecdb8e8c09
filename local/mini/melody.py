"""Random but musical songs for the mini corpus: phrases of pinyin syllables on a pentatonic melody.

A song is written once (tempo, melody as scale degrees, syllables, phone timings) and every
singer sings it, transposed into their range, with the same timings: the way ACE-Opencpop's
30 voices all sing Opencpop's songs to the same label. Syllables come from a `SyllableDeck`,
whose every cycle starts with a set of syllables that holds every initial and final, so a
corpus's first few dozen syllables cover the whole inventory.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from svslm.data.phonemes import FINALS, INITIALS, syllable_to_phones

# Real pinyin syllables in which every Opencpop initial and final occurs.
SYLLABLES = (
    "ai", "an", "ang", "ao", "er", "ou", "en", "e",
    "ba", "bei", "bian", "bu", "pa", "pao", "ping", "pu", "ma", "mei", "ming", "mo",
    "fa", "fei", "feng", "fu", "da", "dao", "de", "dian", "dong", "ta", "tian", "ting", "tou",
    "na", "ni", "nian", "nv", "la", "lai", "lan", "liang", "lv", "lve", "ga", "gei", "guang", "gui",
    "kai", "kan", "kuai", "kong", "hai", "hao", "hua", "huan", "hun", "ji", "jia", "jiang", "jin",
    "jiong", "ju", "juan", "jue", "qi", "qian", "qiu", "qing", "qu", "quan", "xi", "xia", "xiao",
    "xie", "xin", "xiong", "xue", "xun", "zhi", "zhao", "zhe", "zhong", "zhuang", "chi", "chang",
    "chu", "chuan", "shi", "shan", "shang", "shui", "shuo", "ri", "ran", "rou", "zi", "zai", "zou",
    "zui", "ci", "cai", "cong", "cun", "si", "san", "song", "suo", "ya", "yao", "ye", "yi", "yin",
    "ying", "you", "yong", "yu", "yuan", "yue", "yun", "wa", "wai", "wan", "wang", "wei", "wen",
    "wo", "wu", "gua", "kuo", "huai", "luo", "tuan", "dui", "sun", "deng", "sheng", "piao", "niao",
    "jie", "die", "liu", "jiu",
)
PENTATONIC = (0, 2, 4, 7, 9)  # major pentatonic steps in semitones
BREATH_SECONDS = 0.25  # a breath (AP) taken within a phrase
# Initial durations (s) by how the consonant is made; aspirated and fricative ones are longer.
INITIAL_SECONDS = {
    **dict.fromkeys(("b", "d", "g"), 0.04), **dict.fromkeys(("p", "t", "k"), 0.075),
    **dict.fromkeys(("z", "zh", "j"), 0.06), **dict.fromkeys(("c", "ch", "q"), 0.09),
    **dict.fromkeys(("f", "s", "sh", "x", "h"), 0.1), **dict.fromkeys(("m", "n", "l", "r"), 0.065),
    **dict.fromkeys(("y", "w"), 0.05),
}


@dataclass
class SongNote:
    start: float  # s from the phrase start
    end: float
    degree: int | None  # pentatonic scale degree from the tonic; None for a rest
    lyric: str  # pinyin syllable, "SP", "AP", or "—" for a slur
    phns: list[str]
    phone_ends: list[float]  # end of each phone of `phns`, s
    slur: bool = False


@dataclass
class Phrase:
    song: int  # Opencpop-style song id, e.g. 2001
    index: int  # phrase number within the song, from 1
    tempo: int  # beats per minute
    notes: list[SongNote]

    @property
    def duration(self) -> float:
        return self.notes[-1].end


class SyllableDeck:
    """Syllables drawn in cycles instead of independently: each cycle is a shuffled set of
    syllables that holds every initial and final (about 36 syllables), then the other
    `SYLLABLES` shuffled, so that any run of one cycle's first draws covers the inventory."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.cards: list[str] = []

    def draw(self) -> str:
        if not self.cards:
            cover = self._cover()
            rest = [SYLLABLES[i] for i in self.rng.permutation(len(SYLLABLES)) if SYLLABLES[i] not in cover]
            self.cards = [*reversed(rest), *reversed(cover)]  # popped from the end: cover first
        return self.cards.pop()

    def _cover(self) -> list[str]:
        """A small random set of SYLLABLES holding every initial and final: greedily the syllable
        with the most phones still missing, ties in a shuffled order."""
        missing = set(INITIALS) | set(FINALS)
        order = [SYLLABLES[i] for i in self.rng.permutation(len(SYLLABLES))]
        cover = []
        while missing:
            best = max(order, key=lambda s: len(missing.intersection(syllable_to_phones(s))))
            cover.append(best)
            missing -= set(syllable_to_phones(best))
        return cover


def degree_to_semitones(degree: int) -> int:
    octave, step = divmod(degree, len(PENTATONIC))
    return 12 * octave + PENTATONIC[step]


def _sung_note(start: float, end: float, degree: int, syllable: str) -> SongNote:
    phns = syllable_to_phones(syllable)
    ends = [end]
    if len(phns) == 2:  # the initial takes the start of the note, at most 40% of it
        ends = [start + min(INITIAL_SECONDS[phns[0]], 0.4 * (end - start)), end]
    return SongNote(start, end, degree, syllable, phns, ends)


def _rest(start: float, end: float, phn: str) -> SongNote:
    return SongNote(start, end, None, phn, [phn], [end])


def make_phrase(rng: np.random.Generator, deck: SyllableDeck, song: int, index: int, tempo: int, seconds: float,
                slur_probability: float, breath_probability: float, force_breath: bool = False,
                note_value_scale: float = 1.0) -> Phrase:
    """A phrase of about `seconds`: SP, syllables (with a breath between two halves), SP.
    `force_breath`: breathe whatever `breath_probability` says; between two notes where the phrase
    is long enough, else after the opening SP (the phrase then lasts BREATH_SECONDS longer).
    `note_value_scale`: note values are drawn as 0.5-2 units of this many beats, so below 1 the
    phrase holds more, shorter notes in the same seconds (as if sung at tempo / note_value_scale)."""
    beat = 60.0 / tempo * note_value_scale  # seconds of one unit of note value
    t = round(float(rng.uniform(0.15, 0.3)), 3)
    notes = [_rest(0.0, t, "SP")]
    tail = float(rng.uniform(0.2, 0.35))
    sung_until = round(seconds - tail, 4)
    degree = int(rng.integers(2, 5))
    breathes = rng.random() < breath_probability or force_breath
    breath_at = sung_until * float(rng.uniform(0.4, 0.6)) if breathes else None
    while True:
        beats = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.0, 1.5, 2.0]))
        end = t + beats * beat
        if end > sung_until - 0.5 * beat:  # the last note (at least half a beat) holds to the end
            end = sung_until
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, 5))
        syllable = deck.draw()
        slur = beats >= 1.0 and rng.random() < slur_probability
        split = t + 0.6 * (end - t) if slur else end
        note = _sung_note(t, round(split, 4), degree, syllable)
        notes.append(note)
        if slur:
            slur_degree = int(np.clip(degree + rng.choice([-1, 1]), 0, 5))
            notes.append(SongNote(note.end, round(end, 4), slur_degree, "—", [note.phns[-1]], [round(end, 4)], True))
            degree = slur_degree
        t = round(end, 4)
        if end >= sung_until:
            break
        if breath_at is not None and breath_at <= t < sung_until - BREATH_SECONDS - beat:
            notes.append(_rest(t, round(t + BREATH_SECONDS, 4), "AP"))
            t, breath_at = round(t + BREATH_SECONDS, 4), None
    notes.append(_rest(t, round(t + tail, 4), "SP"))
    if force_breath and breath_at is not None:  # too short to breathe between two notes: breathe first
        notes = [notes[0], _rest(notes[0].end, round(notes[0].end + BREATH_SECONDS, 4), "AP"),
                 *(_shifted(n, BREATH_SECONDS) for n in notes[1:])]
    return Phrase(song, index, tempo, notes)


def _shifted(note: SongNote, seconds: float) -> SongNote:
    return replace(note, start=round(note.start + seconds, 4), end=round(note.end + seconds, 4),
                   phone_ends=[round(e + seconds, 4) for e in note.phone_ends])


def make_song(rng: np.random.Generator, deck: SyllableDeck, song: int, n_phrases: int, min_seconds: float,
              max_seconds: float, slur_probability: float, breath_probability: float,
              force_breath: bool = False, note_value_scale: float = 1.0) -> list[Phrase]:
    """`force_breath`: the first phrase breathes; `note_value_scale`: see make_phrase."""
    tempo = int(rng.integers(72, 112))
    return [
        make_phrase(rng, deck, song, i + 1, tempo, float(rng.uniform(min_seconds, max_seconds)),
                    slur_probability, breath_probability, force_breath and i == 0, note_value_scale)
        for i in range(n_phrases)
    ]


def phrase_semitones(phrase: Phrase) -> list[int | None]:
    """Semitones above the tonic per note of `phrase` (None for rests), before transposition."""
    return [None if n.degree is None else degree_to_semitones(n.degree) for n in phrase.notes]
