"""Tests of the shared utilities: config schema checks, atomic files, audio I/O and the mel."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from svslm.utils.audio import AudioError, load_wav, save_wav
from svslm.utils.config import ConfigError, from_dict, load_config
from svslm.utils.fileio import atomic_dir, atomic_path, read_kaldi_map, write_kaldi_map
from svslm.utils.mel import (
    MelConfig,
    MelMismatchError,
    check_same_mel,
    griffin_lim,
    mel_spectrogram,
)


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10


@dataclass
class Outer:
    name: str
    optim: Inner = field(default_factory=Inner)
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    mode: str | None = None


def test_config_builds_nested_and_applies_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\noptim:\n  lr: 2\nsizes: [3]\n")
    cfg = load_config(path, Outer, overrides=["optim.steps=5"])
    assert cfg.optim.lr == 2.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.steps == 5 and cfg.sizes == [3] and cfg.mode is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nbogus: 1\n", "unknown key(s) ['bogus']"),
        ("optim: {lr: 1}\n", "required key 'name'"),
        ("name: x\noptim: {steps: 1.5}\n", "optim.steps: expected an integer"),
        ("name: x\nsizes: 3\n", "sizes: expected a list"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, Outer)
    assert message in str(err.value) and "bad.yaml" in str(err.value)


def test_from_dict_rejects_unknown_nested_key():
    with pytest.raises(ConfigError, match="optim"):
        from_dict(Outer, {"name": "a", "optim": {"lr": 1.0, "momentum": 0.9}})


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a").write_text("2")
        raise RuntimeError("killed")
    assert (target / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_kaldi_map_round_trip_and_errors(tmp_path):
    path = tmp_path / "utt2spk"
    write_kaldi_map(path, {"b#2": "b", "a#1": "a x"})
    assert path.read_text() == "a#1 a x\nb#2 b\n"
    assert read_kaldi_map(path) == {"a#1": "a x", "b#2": "b"}
    path.write_text("a 1\na 2\n")
    with pytest.raises(ValueError, match=r"utt2spk:2: key 'a' appears twice"):
        read_kaldi_map(path)


def test_audio_round_trip_resample_and_errors(tmp_path):
    t = np.arange(22050) / 22050
    wav = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    import soundfile as sf

    sf.write(tmp_path / "a.wav", wav, 22050)
    out = load_wav(tmp_path / "a.wav", sample_rate=16000)
    assert abs(out.size - 16000) <= 1
    save_wav(tmp_path / "b.wav", out, 16000)
    assert np.allclose(load_wav(tmp_path / "b.wav"), out, atol=1e-4)
    sf.write(tmp_path / "st.wav", np.stack([wav, wav], 1), 22050)
    with pytest.raises(AudioError, match="st.wav: 2 channels"):
        load_wav(tmp_path / "st.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    with pytest.raises(AudioError, match="junk.wav: unreadable"):
        load_wav(tmp_path / "junk.wav")


def test_mel_frame_count_and_pitch_peak():
    cfg = MelConfig()
    n = 16000 + 123
    wav = np.sin(2 * np.pi * 1000 * np.arange(n) / 16000).astype(np.float32)
    mel = mel_spectrogram(wav, cfg)
    assert mel.shape == (80, n // 320)
    freqs = __import__("librosa").mel_frequencies(n_mels=80, fmin=0, fmax=8000)
    assert abs(freqs[int(mel[:, 10].argmax())] - 1000) < 80
    batch = mel_spectrogram(torch.from_numpy(np.stack([wav, wav])), cfg)
    assert batch.shape == (2, 80, n // 320) and torch.allclose(batch[0], mel)


def test_mel_mismatch_is_refused():
    with pytest.raises(MelMismatchError, match="hop_length: 320 vs 256"):
        check_same_mel(MelConfig(), dataclasses.replace(MelConfig(), hop_length=256), "flow", "vocoder")


def test_griffin_lim_keeps_length():
    cfg = MelConfig()
    wav = np.sin(2 * np.pi * 300 * np.arange(8000) / 16000).astype(np.float32)
    mel = mel_spectrogram(wav, cfg).numpy()
    out = griffin_lim(mel, cfg, n_iter=4)
    assert out.shape == (8000,) and np.isfinite(out).all()
    # The level survives the inversion (a magnitude/power mix-up makes it ~13 dB too loud).
    level_db = 20 * np.log10(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(wav**2)))
    assert abs(level_db) < 2.0, level_db
