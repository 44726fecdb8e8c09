"""A WORLD (pyworld) singing synthesiser for the mini corpus: a source-filter voice driven by a score.

Pitch: each note's MIDI pitch, glided between notes (portamento), with delayed vibrato and a
slow drift; unvoiced consonants and rests carry no F0. Timbre: per 5 ms frame a spectral
envelope from a formant table (vowels glide through their targets, e.g. `iao` = i -> a -> u,
nasal codas end in a murmur), or a noise band for fricatives and bursts, with closures before
stops; aperiodicity sets breathiness, and a breath `AP` is shaped noise. Singers differ in
vocal-tract length (all formants scaled), range, breathiness and vibrato.

Hand-written because no installed package synthesises singing from a phone-level score; WORLD
(pyworld) does the waveform generation.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # pyworld imports the deprecated pkg_resources
    import pyworld

FRAME_PERIOD_MS = 5.0

# Formants F1..F5 (Hz) of a reference (adult female) vocal tract; shorthand targets of finals.
FORMANTS = {
    "a": (900, 1400, 2800, 3800, 4600), "A": (800, 1150, 2700, 3800, 4600),
    "o": (600, 950, 2700, 3700, 4500), "e": (560, 1300, 2800, 3800, 4600),
    "E": (520, 2100, 2900, 3900, 4700), "@": (520, 1500, 2800, 3800, 4600),
    "i": (330, 2800, 3400, 4200, 4900), "u": (380, 800, 2600, 3600, 4500),
    "v": (330, 2150, 2700, 3800, 4600), "er": (560, 1500, 1900, 3600, 4500),
    "i_apical": (400, 1500, 2900, 3900, 4700), "i_retroflex": (420, 1750, 2300, 3800, 4600),
    "n": (260, 1600, 2600, 3700, 4500), "ng": (300, 1100, 2600, 3700, 4500),
    "m": (250, 1000, 2300, 3500, 4500), "l": (350, 1150, 2800, 3800, 4600),
    "r": (420, 1300, 1700, 3600, 4500), "w": (350, 650, 2500, 3600, 4500),
}
BANDWIDTHS = np.array([90.0, 110.0, 160.0, 250.0, 300.0])
NASALS = ("n", "ng", "m")
# Each final as a sequence of (formant target, share of the final's duration).
FINAL_TARGETS = {
    "a": [("a", 1)], "ai": [("a", .55), ("i", .45)], "an": [("a", .65), ("n", .35)],
    "ang": [("A", .65), ("ng", .35)], "ao": [("A", .55), ("u", .45)], "e": [("e", 1)],
    "ei": [("E", .5), ("i", .5)], "en": [("@", .6), ("n", .4)], "eng": [("@", .6), ("ng", .4)],
    "er": [("er", 1)], "i": [("i", 1)], "ia": [("i", .3), ("a", .7)],
    "ian": [("i", .25), ("E", .45), ("n", .3)], "iang": [("i", .25), ("A", .45), ("ng", .3)],
    "iao": [("i", .2), ("A", .45), ("u", .35)], "ie": [("i", .3), ("E", .7)],
    "in": [("i", .65), ("n", .35)], "ing": [("i", .6), ("ng", .4)],
    "iong": [("i", .2), ("u", .4), ("ng", .4)], "iu": [("i", .3), ("o", .3), ("u", .4)],
    "o": [("u", .2), ("o", .8)], "ong": [("u", .6), ("ng", .4)], "ou": [("o", .5), ("u", .5)],
    "u": [("u", 1)], "ua": [("u", .3), ("a", .7)], "uai": [("u", .25), ("a", .4), ("i", .35)],
    "uan": [("u", .25), ("a", .45), ("n", .3)], "uang": [("u", .25), ("A", .45), ("ng", .3)],
    "ui": [("u", .3), ("E", .3), ("i", .4)], "un": [("u", .3), ("@", .35), ("n", .35)],
    "uo": [("u", .3), ("o", .7)], "v": [("v", 1)], "van": [("v", .25), ("E", .45), ("n", .3)],
    "ve": [("v", .3), ("E", .7)], "vn": [("v", .6), ("n", .4)],
}
# Initials: (closure share, noise-band centre Hz or None for a formant-shaped sound,
# noise-band width in octaves, level dB, voiced). Stops and affricates start with a closure.
INITIALS = {
    "b": (0.5, 800, 1.5, -20, False), "d": (0.5, 4000, 0.8, -20, False), "g": (0.5, 2000, 0.7, -20, False),
    "p": (0.3, None, 0, -16, False), "t": (0.3, None, 0, -16, False), "k": (0.3, None, 0, -16, False),
    "z": (0.35, 6500, 0.5, -14, False), "zh": (0.35, 3200, 0.6, -14, False), "j": (0.35, 4500, 0.6, -14, False),
    "c": (0.25, 6500, 0.5, -12, False), "ch": (0.25, 3200, 0.6, -12, False), "q": (0.25, 4500, 0.6, -12, False),
    "f": (0.0, 3000, 2.5, -24, False), "s": (0.0, 6500, 0.5, -10, False), "sh": (0.0, 3200, 0.6, -10, False),
    "x": (0.0, 4500, 0.6, -12, False), "h": (0.0, None, 0, -16, False),
    "m": (0.0, None, 0, -10, True), "n": (0.0, None, 0, -10, True), "l": (0.0, None, 0, -6, True),
    "r": (0.0, None, 0, -6, True), "y": (0.0, None, 0, -4, True), "w": (0.0, None, 0, -4, True),
}


@dataclass
class SingerConfig:
    singer: int = 1  # singer id in the corpus (segment ids acesinger_<singer>#<utt>)
    low_midi: int = 55  # lowest MIDI note of the singer's range
    high_midi: int = 74  # highest MIDI note of the singer's range
    tract_scale: float = 1.0  # formant frequency scale: < 1 a longer vocal tract (darker, male-like)
    breathiness: float = 0.2  # 0..1: aperiodic energy in voiced sounds
    vibrato_hz: float = 5.5  # vibrato rate
    vibrato_semitones: float = 0.3  # vibrato depth (peak)


@dataclass
class SungNote:
    start: float  # s
    end: float  # s
    midi: int  # 0 for rests
    phns: list[str]
    phone_ends: list[float]  # s, one per phone
    slur: bool = False  # continues the previous note's final on a new pitch


def _formant_track(targets: list[tuple[str, float]], n: int) -> np.ndarray:
    """[n, 5] formants gliding linearly between the centres of the targets."""
    shares = np.array([s for _, s in targets], dtype=float)
    centres = (np.cumsum(shares) - shares / 2) / shares.sum() * n
    values = np.array([FORMANTS[t] for t, _ in targets], dtype=float)
    x = np.arange(n) + 0.5
    return np.stack([np.interp(x, centres, values[:, k]) for k in range(5)], axis=1)


def _final_targets(final: str, initial: str | None) -> list[tuple[str, float]]:
    if final == "i" and initial in ("z", "c", "s"):
        return [("i_apical", 1)]
    if final == "i" and initial in ("zh", "ch", "sh", "r"):
        return [("i_retroflex", 1)]
    return FINAL_TARGETS[final]


class _Frames:
    """Per-frame synthesis parameters, filled phone by phone."""

    def __init__(self, n: int):
        self.formants = np.tile(np.array(FORMANTS["@"], dtype=float), (n, 1))
        self.bw_scale = np.ones(n)
        self.level_db = np.full(n, -90.0)
        self.noise_centre = np.full(n, 4000.0)
        self.noise_width = np.ones(n)
        self.noise_mix = np.zeros(n)  # 1 = noise band, 0 = formant envelope
        self.voiced = np.zeros(n, dtype=bool)
        self.aperiodic = np.zeros(n)  # extra aperiodicity of voiced frames (r's friction)


def _fill_initial(fr: _Frames, sl: slice, initial: str, next_formants: np.ndarray) -> None:
    closure, centre, width, level, voiced = INITIALS[initial]
    n = sl.stop - sl.start
    n_closure = round(closure * n)
    if initial == "y":
        fr.formants[sl] = FORMANTS["i"]
    elif initial in FORMANTS:  # m n l r w: their own resonances
        fr.formants[sl] = FORMANTS[initial]
    else:  # obstruents are shaped by the tract already set for the following vowel
        fr.formants[sl] = next_formants
    if initial in ("p", "t", "k", "h"):  # aspiration: breath noise, wider resonances
        fr.bw_scale[sl] = 1.6
    if initial in NASALS:
        fr.bw_scale[sl] = 2.0
    if centre is not None:
        fr.noise_centre[sl], fr.noise_width[sl], fr.noise_mix[sl] = centre, width, 1.0
    fr.level_db[sl] = level
    fr.level_db[sl.start:sl.start + n_closure] = -70.0
    fr.voiced[sl] = voiced
    if initial == "r":
        fr.aperiodic[sl] = 0.3


def _frame_of(t: float) -> int:
    return round(t * 1000 / FRAME_PERIOD_MS)


def _fill_phones(fr: _Frames, notes: list[SungNote], note_gain_db: np.ndarray) -> None:
    for i, note in enumerate(notes):
        starts = [note.start, *note.phone_ends[:-1]]
        for k, (phn, st, et) in enumerate(zip(note.phns, starts, note.phone_ends)):
            sl = slice(_frame_of(st), max(_frame_of(et), _frame_of(st) + 1))
            n = sl.stop - sl.start
            if phn == "SP":
                fr.level_db[sl] = -90.0
            elif phn == "AP":  # breath: noise through a relaxed tract, swelling and fading
                fr.formants[sl] = FORMANTS["@"]
                fr.bw_scale[sl] = 3.0
                fr.level_db[sl] = -22.0 + 10 * np.log10(np.sin(np.linspace(0.05, np.pi - 0.05, n)) + 1e-3)
            elif phn in INITIALS:
                nxt = note.phns[k + 1] if k + 1 < len(note.phns) else "a"
                next_formants = np.array(FORMANTS[_final_targets(nxt, phn)[0][0]], dtype=float)
                _fill_initial(fr, sl, phn, next_formants)
            else:
                initial = note.phns[0] if k == 1 else None
                targets = _final_targets(phn, initial)
                if note.slur:  # a melisma holds the end of the syllable's final
                    targets = targets[-1:]
                fr.formants[sl] = _formant_track(targets, n)
                nasal_tail = targets[-1][0] in NASALS
                fr.level_db[sl] = note_gain_db[i]
                if nasal_tail:  # the coda murmur is damped and quieter
                    m = round(targets[-1][1] * n)
                    fr.bw_scale[sl.stop - m:sl.stop] = 2.0
                    fr.level_db[sl.stop - m:sl.stop] -= 8.0
                fr.voiced[sl] = True


def _f0_track(notes: list[SungNote], n: int, singer: SingerConfig, rng: np.random.Generator) -> np.ndarray:
    """Semitone (MIDI) curve [n]: note pitches with portamento, vibrato and drift."""
    t = np.arange(n) * FRAME_PERIOD_MS / 1000
    midi = np.zeros(n)
    sung = [x for x in notes if x.midi > 0]
    for note in sung:
        midi[(t >= note.start) & (t < note.end)] = note.midi
    # Rests hold the neighbouring pitch so the glide into a phrase starts at its first note.
    idx = np.where(midi > 0, np.arange(n), 0)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(midi > 0))
    midi = np.where(np.arange(n) < first, midi[first], midi[idx])
    kernel = np.hanning(17)  # ~80 ms glide between notes
    midi = np.convolve(np.pad(midi, 8, mode="edge"), kernel / kernel.sum(), mode="valid")
    for note in sung:
        mask = (t >= note.start) & (t < note.end)
        tau = t[mask] - note.start
        if note.end - note.start >= 0.35:
            depth = singer.vibrato_semitones * np.clip((tau - 0.15) / 0.25, 0, 1)
            midi[mask] += depth * np.sin(2 * np.pi * singer.vibrato_hz * tau + rng.uniform(0, 2 * np.pi))
    drift = np.cumsum(rng.normal(0, 1, n))
    drift = np.convolve(drift - drift.mean(), np.ones(40) / 40, mode="same")
    midi += 0.08 * drift / (np.abs(drift).max() + 1e-9)
    return midi


def n_frames(duration: float) -> int:
    """Frames (FRAME_PERIOD_MS each) of the parameter tracks for `duration` s of audio."""
    return int(duration * 1000 / FRAME_PERIOD_MS) + 2


def sing(notes: list[SungNote], singer: SingerConfig, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Waveform (float32, peak 0.6) of `notes`, exactly round(last end * sample_rate) samples."""
    gains_db = rng.normal(0.0, 1.5, len(notes))
    semitones = _f0_track(notes, n_frames(notes[-1].end), singer, rng)
    return synthesize(notes, semitones, singer, sample_rate, gains_db)


def synthesize(notes: list[SungNote], semitones: np.ndarray, singer: SingerConfig, sample_rate: int,
               gains_db: np.ndarray) -> np.ndarray:
    """Waveform of the phones of `notes` on the pitch curve `semitones` (MIDI per frame, `n_frames`
    long; used where a phone is voiced), each note `gains_db` louder; exactly round(last end *
    sample_rate) samples, float32, peak 0.6. The note's own `midi` is not used here."""
    duration = notes[-1].end
    n = n_frames(duration)
    fr = _Frames(n)
    _fill_phones(fr, notes, gains_db)
    f0 = np.where(fr.voiced, 440.0 * 2 ** ((semitones - 69) / 12), 0.0)

    fft_size = pyworld.get_cheaptrick_fft_size(sample_rate)
    f = np.linspace(0, sample_rate / 2, fft_size // 2 + 1)  # [F]
    formants = fr.formants * singer.tract_scale  # [n, 5]
    bw = BANDWIDTHS[None, :] * fr.bw_scale[:, None]  # [n, 5]
    # Cascade of second-order resonators (unit gain at 0 Hz), in dB: [n, F].
    fk2, f2 = formants[:, :, None] ** 2, f[None, None, :] ** 2
    resonance_db = 10 * np.log10(fk2**2 / ((fk2 - f2) ** 2 + (bw[:, :, None] * f[None, None, :]) ** 2)).sum(axis=1)
    # Above ~F4 the five-pole cascade falls ~60 dB/octave, where a real tract (more poles) keeps
    # harmonics up to 8 kHz: continue from the knee at 6 dB/octave instead.
    knee = int(np.searchsorted(f, 4000.0 * singer.tract_scale))
    resonance_db[:, knee:] = resonance_db[:, knee - 1:knee] - 6.0 * np.log2(f[knee:] / f[knee - 1])
    tilt_db = -6.0 * np.log2(np.maximum(f, 200.0) / 200.0)  # glottal source + lip radiation
    octaves = np.log2(np.maximum(f, 50.0)[None, :] / (fr.noise_centre * np.sqrt(singer.tract_scale))[:, None])
    noise_db = 10 * np.log10(np.exp(-0.5 * (octaves / fr.noise_width[:, None]) ** 2) + 0.003)
    mix = fr.noise_mix[:, None]
    spec_db = (1 - mix) * (resonance_db + tilt_db[None, :]) + mix * noise_db
    spec_db -= 10 * np.log10(np.mean(10 ** (spec_db / 10), axis=1, keepdims=True))  # unit mean power
    level = np.convolve(np.pad(fr.level_db, 2, mode="edge"), np.ones(5) / 5, mode="valid")  # 25 ms fades
    spec_db += level[:, None]
    # 3-frame moving average along time (edges held), written out over all bins at once: the same
    # sums in the same order as np.convolve with np.ones(3) / 3 per bin, so the audio is unchanged.
    padded = np.pad(spec_db, ((1, 1), (0, 0)), mode="edge")
    spec_db = padded[:-2] * (1 / 3) + padded[1:-1] * (1 / 3) + padded[2:] * (1 / 3)
    sp = np.ascontiguousarray(10 ** (spec_db / 10) * 1e-4)

    breath = 0.02 + 0.3 * singer.breathiness + fr.aperiodic
    ap = np.clip(breath[:, None] + (1 - breath[:, None]) * (f[None, :] / f[-1]) ** 2 * 0.6, 0.0, 1.0)
    ap = np.ascontiguousarray(np.where(fr.voiced[:, None], ap, 1.0))
    wav = pyworld.synthesize(np.ascontiguousarray(f0), sp, ap, sample_rate, FRAME_PERIOD_MS)
    n_samples = round(duration * sample_rate)
    wav = np.pad(wav[:n_samples], (0, max(0, n_samples - wav.shape[0])))
    return (0.6 * wav / (np.abs(wav).max() + 1e-9)).astype(np.float32)
