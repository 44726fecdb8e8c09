"""Small generated signals and data directories with known properties, for the metric tests.

`sung_tone` makes a harmonic tone with vibrato whose F0 contour is known exactly;
`make_phone_corpus` writes a Kaldi-style split (wav.scp, text) in which every phone has its own
spectral colour, so a phone recogniser has something learnable in seconds of audio.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import scipy.signal

from svslm.data.phonemes import FINALS, INITIALS
from svslm.utils.audio import SAMPLE_RATE, save_wav
from svslm.utils.fileio import write_kaldi_map

SR = SAMPLE_RATE


def sung_tone(seconds: float, f0_hz: float = 220.0, vibrato_semitones: float = 0.3, seed: int = 0) -> np.ndarray:
    """A 30-harmonic sawtooth-like tone with 1.5 Hz vibrato and 50 ms fades; float32 [N]."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = f0_hz * 2.0 ** (vibrato_semitones * np.sin(2 * np.pi * 1.5 * t) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 31)) * 0.1
    x *= np.minimum(1.0, np.minimum(t, t[::-1]) * 20)
    x += 1e-3 * np.random.default_rng(seed).standard_normal(t.size)
    return x.astype(np.float32)


def _phone_filter(phone: str) -> tuple[np.ndarray, np.ndarray]:
    """A fixed band-pass per phone (centre from a hash of its name): its spectral colour."""
    rng = np.random.default_rng(zlib.crc32(phone.encode()))
    centre = float(rng.uniform(300, 5000))
    return scipy.signal.butter(2, [centre / 1.3 / (SR / 2), min(centre * 1.3, 7600) / (SR / 2)], btype="band")


def phone_audio(phone: str, seconds: float, f0_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Initials are coloured noise, finals a coloured harmonic tone at `f0_hz`."""
    n = int(seconds * SR)
    if phone in INITIALS:
        source = rng.standard_normal(n) * 0.3
    else:
        phase = 2 * np.pi * f0_hz * np.arange(n) / SR
        source = sum(np.sin(k * phase) for k in range(1, 25)) * 0.2
    b, a = _phone_filter(phone)
    return scipy.signal.lfilter(b, a, source)


def make_phone_corpus(split_dir: str | Path, n_utts: int, seed: int = 0, phones_per_utt: int = 8) -> dict[str, list[str]]:
    """Write `wav/<utt>.wav`, `wav.scp` and `text` of sung-phone strings with rests; returns utt -> phones."""
    split_dir = Path(split_dir)
    rng = np.random.default_rng(seed)
    inventory_initials, inventory_finals = INITIALS[:6], FINALS[:8]  # a small inventory learns fast
    wav_scp, text, out = {}, {}, {}
    for i in range(n_utts):
        utt = f"spk{i % 3}#{seed:02d}{i:04d}"
        phones, pieces = ["SP"], [np.zeros(int(0.1 * SR))]
        for _ in range(phones_per_utt // 2):
            f0 = float(rng.uniform(180, 330))
            initial = str(rng.choice(inventory_initials))
            final = str(rng.choice(inventory_finals))
            phones += [initial, final]
            pieces += [phone_audio(initial, 0.08, f0, rng), phone_audio(final, float(rng.uniform(0.15, 0.3)), f0, rng)]
        phones.append("SP")
        pieces.append(np.zeros(int(0.1 * SR)))
        wav = np.concatenate(pieces)
        path = split_dir / "wav" / f"{utt}.wav"
        save_wav(path, 0.5 * wav / np.abs(wav).max(), SR)
        wav_scp[utt], text[utt], out[utt] = str(path), " ".join(phones), phones
    write_kaldi_map(split_dir / "wav.scp", wav_scp)
    write_kaldi_map(split_dir / "text", text)
    return out
