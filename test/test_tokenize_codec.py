"""Codec tokenizers: the mini codec's shapes, round trip and quality ordering; espnet's errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from svslm.tokenize.codec import (
    EspnetCodec,
    MiniCodec,
    load_codec,
    log_mel_frames,
)
from svslm.tokenize.config import CodecConfig
from svslm.utils.mel import MelConfig

SR = 16000


def _tones(seconds: float, seed: int) -> np.ndarray:
    """Harmonic tones whose pitch and timbre change every 0.25 s, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.25 * SR)) / SR
    parts = []
    for _ in range(int(seconds / 0.25)):
        f0, tilt = rng.uniform(150, 500), rng.uniform(0.3, 0.9)
        parts.append(sum(0.2 * tilt**k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(6)))
    x = np.concatenate(parts) + 0.01 * rng.standard_normal(len(parts) * len(t))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def codec() -> MiniCodec:
    mels = [log_mel_frames(_tones(4.0, seed), MelConfig()) for seed in range(5)]
    return MiniCodec.fit(mels, CodecConfig(codebook_size=32, kmeans_n_init=1, griffin_lim_iters=4))


def test_encode_decode_embed_shapes(codec):
    wav = _tones(1.0, seed=10)[: SR - 100]  # 15900 samples -> 49 frames
    codes = codec.encode(wav)
    assert codes.shape == (49, 8) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 32
    z = codec.embed(torch.from_numpy(codes)[None])
    assert z.shape == (1, 49, codec.embed_dim) and codec.embed_dim == 80
    # the latent is the sum of the chosen code vectors
    expected = sum(codec.codebooks[i][codes[:, i]] for i in range(8))
    np.testing.assert_allclose(z[0].numpy(), expected, rtol=1e-5, atol=1e-4)
    audio = codec.decode(codes)
    assert audio.shape == (49 * 320,) and audio.dtype == np.float32 and np.isfinite(audio).all()
    assert codec.decode_embedding(z[0]).shape == (49 * 320,)


def test_more_codebooks_reconstruct_the_log_mel_better(codec):
    wav = _tones(2.0, seed=11)  # not seen in fitting
    target = log_mel_frames(wav, codec.mel)
    codes = codec.encode(wav)
    errors = []
    for n in range(1, 9):
        approx = sum(codec.codebooks[i][codes[:, i]] for i in range(n))
        errors.append(float(np.sqrt(np.mean((approx - target) ** 2))))
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.8 * errors[0]


def test_fitting_is_deterministic_and_save_load_round_trips(codec, tmp_path):
    mels = [log_mel_frames(_tones(4.0, seed), MelConfig()) for seed in range(5)]
    again = MiniCodec.fit(mels, codec.config)
    np.testing.assert_array_equal(again.codebooks, codec.codebooks)
    codec.save(tmp_path / "codec")
    loaded = load_codec(tmp_path / "codec")
    wav = _tones(1.0, seed=12)
    np.testing.assert_array_equal(loaded.encode(wav), codec.encode(wav))
    assert loaded.codebook_size == 32 and loaded.n_codebooks == 8 and loaded.frame_rate == 50


def test_tokens_out_of_range_are_refused(codec):
    with pytest.raises(ValueError, match=r"outside \[0, 32\)"):
        codec.decode(np.full((5, 8), 32))
    with pytest.raises(ValueError, match="8 columns"):
        codec.embed(torch.zeros(1, 5, 9, dtype=torch.long))


def test_espnet_backend_names_the_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="codec.model_file='nowhere.pth'"):
        EspnetCodec(CodecConfig(backend="espnet", model_file="nowhere.pth", config_file=""))


def test_espnet_backend_names_the_missing_extra(tmp_path):
    try:
        import espnet2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("espnet is installed here; the missing-extra message cannot be seen")
    for name in ("model.pth", "config.yaml"):
        (tmp_path / name).write_text("x")
    cfg = CodecConfig(backend="espnet", model_file=str(tmp_path / "model.pth"), config_file=str(tmp_path / "config.yaml"))
    with pytest.raises(ImportError, match=r"needs ESPnet \(install it with \./install\.sh --espnet\)"):
        EspnetCodec(cfg)
