"""SSL tokenizer: 50 fps features, deterministic k-means, save/load, the HuBERT and XEUS back ends."""
from __future__ import annotations

import numpy as np
import pytest

from svslm.tokenize.ssl import (
    HubertFeatures,
    MfccFeatures,
    SSLConfig,
    SSLTokenizer,
    XeusFeatures,
    load_ssl_tokenizer,
)

SR = 16000


def _audio(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 200 + 100 * np.sin(2 * np.pi * 0.7 * t + seed)
    return (0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SR) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


CONFIG = SSLConfig(backend="mini", n_clusters=12, kmeans_n_init=1, kmeans_batch_size=512)


def test_mfcc_features_are_39_dim_at_50_fps():
    feats = MfccFeatures(CONFIG)(_audio(1.3, 0))
    assert feats.shape == (int(1.3 * SR) // 320, 39) and feats.dtype == np.float32


def test_kmeans_is_deterministic_and_survives_save_load(tmp_path):
    extractor = MfccFeatures(CONFIG)
    feats = [extractor(_audio(2.0, s)) for s in range(4)]
    a, b = SSLTokenizer.fit(feats, CONFIG), SSLTokenizer.fit(feats, CONFIG)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    other = SSLTokenizer.fit(feats, SSLConfig(**{**CONFIG.__dict__, "seed": 1}))
    assert not np.array_equal(other.centroids, a.centroids)  # the seed matters, so it is really used
    a.save(tmp_path / "ssl")
    loaded = load_ssl_tokenizer(tmp_path / "ssl")
    wav = _audio(1.0, 9)
    ids = loaded.encode(wav)
    np.testing.assert_array_equal(ids, a.encode(wav))
    assert ids.shape == (50,) and ids.min() >= 0 and ids.max() < 12 and loaded.vocab_size == 12


def test_hubert_from_a_local_directory_gives_one_frame_per_320_samples(tmp_path):
    from transformers import HubertConfig, HubertModel

    tiny = HubertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    HubertModel(tiny).save_pretrained(tmp_path / "hubert")
    extractor = HubertFeatures(SSLConfig(backend="hubert", model_path=str(tmp_path / "hubert"), layer=2))
    for n in (16000, 16000 + 319, 12345):
        feats = extractor(_audio(n / SR, 1))
        assert feats.shape == (n // 320, 32)
    with pytest.raises(ValueError, match="layers 1..3"):
        HubertFeatures(SSLConfig(backend="hubert", model_path=str(tmp_path / "hubert"), layer=4))


def test_missing_models_are_named():
    with pytest.raises(FileNotFoundError, match="local transformers HuBERT directory"):
        HubertFeatures(SSLConfig(backend="hubert", model_path="/nowhere"))
    with pytest.raises(FileNotFoundError, match=r"XEUS checkpoint .*ssl.model_path='/nowhere.pth', ssl.config_path=''"):
        XeusFeatures(SSLConfig(backend="xeus", model_path="/nowhere.pth"))


def test_xeus_names_the_missing_extra(tmp_path):
    try:
        import espnet2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("espnet is installed here; the missing-extra message cannot be seen")
    for name in ("xeus.pth", "config.yaml"):
        (tmp_path / name).write_text("x")
    with pytest.raises(ImportError, match=r"needs ESPnet \(install it with \./install\.sh --espnet\)"):
        XeusFeatures(SSLConfig(backend="xeus", model_path=str(tmp_path / "xeus.pth"),
                               config_path=str(tmp_path / "config.yaml")))
