"""Read speech for the zoo's speech corpus: pinyin syllables at speaking rate on Mandarin-like tones.

A text is written once (syllables, their lexical tones, timings, pauses) and every voice reading
it keeps the timings, as the singing corpus's singers keep a song's label. Each voice speaks it
with its own pitch: a phrase baseline that declines over the utterance (declination) and, on
each syllable, a tone shape in Chao's tone letters (1 lowest .. 5 highest of the voice's
speaking range): level 55, rising 35, dipping 214 (21 before another syllable, 35 before a third
tone: tone sandhi), falling 51, a short neutral tone; shapes are joined by smooth glides, with
no vibrato. The score a voice's row carries has one note per syllable whose MIDI is the rounded
median of the pitch the syllable is spoken on, so the singing tokenizer reads the corpus as is.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from local.mini.melody import INITIAL_SECONDS, SyllableDeck
from local.mini.voice import FRAME_PERIOD_MS, INITIALS, SingerConfig, SungNote, n_frames
from svslm.data.phonemes import syllable_to_phones

SYLLABLE_SECONDS = (0.15, 0.3)  # a syllable's duration, uniform; the last before a pause is 30% longer
WORDS_BETWEEN_PAUSES = (3, 8)  # syllables of a prosodic phrase (between pauses), uniform [low, high)
PAUSE_SECONDS = (0.08, 0.2)  # a short silent pause (SP) between prosodic phrases
BREATH_SECONDS = (0.2, 0.3)  # a breath (AP) taken at a pause instead
TONE_LETTERS = {1: (5, 5), 2: (3, 5), 3: (2, 1, 4), 4: (5, 1), 5: (3, 3)}  # Chao letters; 5 = neutral
TONE_WEIGHTS = (0.2, 0.22, 0.18, 0.32, 0.08)  # tones 1-5, roughly their share in Mandarin text


@dataclass
class SpokenSyllable:
    start: float  # s from the utterance start
    end: float
    tone: int  # 1-4 lexical tone, 5 neutral, 0 for a rest
    lyric: str  # pinyin syllable without tone digit, or "SP"/"AP"
    phns: list[str]
    phone_ends: list[float]  # end of each phone of `phns`, s
    phrase_final: bool = False  # last syllable before a pause or the end


@dataclass
class SpokenText:
    song: int  # text id, numbered like a song (e.g. 4001)
    index: int  # utterance number within the text, from 1
    syllables: list[SpokenSyllable]

    @property
    def duration(self) -> float:
        return self.syllables[-1].end

    @property
    def rate(self) -> int:
        """Spoken syllables per minute (the row's `tempo`)."""
        spoken = [s for s in self.syllables if s.tone]
        return round(60 * len(spoken) / sum(s.end - s.start for s in spoken))


def _syllable(start: float, end: float, tone: int, syllable: str, phrase_final: bool) -> SpokenSyllable:
    phns = syllable_to_phones(syllable)
    ends = [end]
    if len(phns) == 2:  # the initial takes the start, at most 40% of the syllable
        ends = [round(start + min(INITIAL_SECONDS[phns[0]], 0.4 * (end - start)), 4), end]
    return SpokenSyllable(start, end, tone, syllable, phns, ends, phrase_final)


def _rest(start: float, end: float, phn: str) -> SpokenSyllable:
    return SpokenSyllable(start, end, 0, phn, [phn], [end])


def make_text(rng: np.random.Generator, deck: SyllableDeck, song: int, index: int, seconds: float,
              breath_probability: float, force_breath: bool = False) -> SpokenText:
    """An utterance of about `seconds`: SP, prosodic phrases of syllables with short pauses (SP, or
    a breath AP with `breath_probability`; the first pause is a breath when `force_breath`), SP."""
    t = round(float(rng.uniform(0.1, 0.25)), 4)
    out = [_rest(0.0, t, "SP")]
    tail = float(rng.uniform(0.15, 0.3))
    speak_until = seconds - tail
    left = int(rng.integers(*WORDS_BETWEEN_PAUSES))
    while True:
        left -= 1
        dur = float(rng.uniform(*SYLLABLE_SECONDS)) * (1.3 if left == 0 else 1.0)
        last = t + dur + SYLLABLE_SECONDS[0] > speak_until
        tone = int(rng.choice(5, p=TONE_WEIGHTS)) + 1
        end = round(t + dur, 4)
        out.append(_syllable(t, end, tone, deck.draw(), left == 0 or last))
        t = end
        if last:
            break
        if left == 0:
            breath = rng.random() < breath_probability or force_breath
            low, high = BREATH_SECONDS if breath else PAUSE_SECONDS
            pause = float(rng.uniform(low, high))
            if t + pause + 2 * SYLLABLE_SECONDS[1] < speak_until:
                out.append(_rest(t, round(t + pause, 4), "AP" if breath else "SP"))
                t, force_breath = round(t + pause, 4), False
            left = int(rng.integers(*WORDS_BETWEEN_PAUSES))
    out[-1].phrase_final = True
    out.append(_rest(t, round(t + tail, 4), "SP"))
    return SpokenText(song, index, _sandhi(out))


def _sandhi(syllables: list[SpokenSyllable]) -> list[SpokenSyllable]:
    """Third-tone sandhi: a third tone before another third tone (no pause between) is said as a
    second (rising) tone."""
    for a, b in itertools.pairwise(syllables):
        if a.tone == 3 and b.tone == 3:
            a.tone = 2
    return syllables


def _letters(s: SpokenSyllable) -> tuple[int, ...]:
    if s.tone == 3 and not s.phrase_final:
        return (2, 1, 1)  # the "half third": low, without the final rise
    return TONE_LETTERS[s.tone]


def _voiced_start(s: SpokenSyllable) -> float:
    """Where voicing starts in the syllable: at the initial when it is voiced (m n l r y w)."""
    if len(s.phns) == 2 and not INITIALS[s.phns[0]][4]:
        return s.phone_ends[0]
    return s.start


def spoken_pitch(text: SpokenText, voice: SingerConfig, rng: np.random.Generator) -> np.ndarray:
    """MIDI (semitone) curve per frame of `text` spoken by `voice` (its low..high_midi as the
    speaking range): declining baseline + tone shapes, glided, with a slow drift; no vibrato."""
    n = n_frames(text.duration)
    t = np.arange(n) * FRAME_PERIOD_MS / 1000
    span = voice.high_midi - voice.low_midi
    start_level = voice.low_midi + span * float(rng.uniform(0.15, 0.3))
    decline = span * float(rng.uniform(0.1, 0.2))  # over the whole utterance
    tone_span = span * float(rng.uniform(0.55, 0.7))  # letter 1 .. letter 5
    times, values = [], []
    for s in text.syllables:
        if not s.tone:
            continue
        letters = _letters(s)
        v0, v1 = _voiced_start(s), s.end
        offset = float(rng.normal(0.0, 0.3))  # per-syllable pitch scatter, semitones
        for k, letter in enumerate(letters):
            at = v0 + (v1 - v0) * (0.15 + 0.75 * k / (len(letters) - 1))
            base = start_level - decline * at / text.duration
            times.append(at)
            values.append(base + offset + tone_span * (letter - 1) / 4)
    midi = np.interp(t, times, values)
    kernel = np.hanning(9)  # ~40 ms: tone shapes joined smoothly (coarticulation)
    midi = np.convolve(np.pad(midi, 4, mode="edge"), kernel / kernel.sum(), mode="valid")
    drift = np.cumsum(rng.normal(0, 1, n))
    drift = np.convolve(drift - drift.mean(), np.ones(40) / 40, mode="same")
    return midi + 0.2 * drift / (np.abs(drift).max() + 1e-9)


def note_midis(text: SpokenText, semitones: np.ndarray) -> list[int]:
    """Per syllable the rounded median of its voiced pitch (the score's note), 0 for rests."""
    t = np.arange(semitones.size) * FRAME_PERIOD_MS / 1000
    midis = []
    for s in text.syllables:
        if not s.tone:
            midis.append(0)
            continue
        inside = (t >= _voiced_start(s)) & (t < s.end)
        midis.append(int(np.clip(round(float(np.median(semitones[inside]))), 1, 127)))
    return midis


def as_notes(text: SpokenText, midis: list[int]) -> list[SungNote]:
    """The syllables as the synthesiser's notes."""
    return [SungNote(s.start, s.end, m, s.phns, s.phone_ends) for s, m in zip(text.syllables, midis)]
