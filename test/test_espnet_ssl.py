"""svslm's xeus SSL backend against ESPnet's own SSLTask model (a tiny XEUS-like one).

Needs ESPnet (./install.sh --espnet); run with `pytest -m espnet test`.
"""
from __future__ import annotations

import joblib
import numpy as np
import pytest
import torch
from espnet_tiny import tiny

from svslm.tokenize.config import SSLConfig
from svslm.tokenize.ssl import SSLTokenizer, XeusFeatures

# ESPnet is imported inside the tests: the main suite collects this file without ESPnet installed.
pytestmark = pytest.mark.espnet


@pytest.fixture(scope="module")
def xeus(tmp_path_factory):
    return tiny.build_ssl(tmp_path_factory.mktemp("xeus"), seed=0)


def _config(directory, layer: int, **kw) -> SSLConfig:
    return SSLConfig(backend="xeus", layer=layer, model_path=str(directory / "1epoch.pth"),
                     config_path=str(directory / "config.yaml"), n_clusters=tiny.KMEANS_CLUSTERS, **kw)


def _espnet_model(directory):
    from espnet2.tasks.ssl import SSLTask

    model, _ = SSLTask.build_model_from_file(str(directory / "config.yaml"), str(directory / "1epoch.pth"))
    return model.eval()


def test_layer_l_is_encoder_block_l_output(xeus):
    """ESPnet-SpeechLM's --ssl_nlayer counting: entry L is block L+1's output (from 0), the last
    one through the encoder's final norm."""
    model = _espnet_model(xeus)
    blocks = model.encoder.encoders
    outputs = {}

    def keep(index):
        def hook(module, args, out):
            x = out[0]
            outputs[index] = (x[0] if isinstance(x, tuple) else x)[0]  # rel-pos blocks return (x, pos_emb)
        return hook

    for i, block in enumerate(blocks):
        block.register_forward_hook(keep(i))
    wav = tiny.synthetic_audio(1.2, seed=5)
    padded = torch.from_numpy(np.pad(wav, (0, 80)))[None]
    with torch.no_grad():
        model.inference_encode(padded, torch.tensor([padded.shape[1]]), use_mask=False, use_final_output=False)
        final = model.encoder.after_norm(outputs[len(blocks) - 1])
    for layer in range(len(blocks)):
        feats = XeusFeatures(_config(xeus, layer))(wav)
        expected = final if layer == len(blocks) - 1 else outputs[layer]
        assert feats.shape == (len(wav) // 320, 16)
        np.testing.assert_allclose(feats, expected.numpy(), rtol=0, atol=1e-6)
    assert not np.allclose(XeusFeatures(_config(xeus, 0))(wav), final.numpy(), atol=1e-3)  # layers differ
    with pytest.raises(ValueError, match=r"ssl.layer=3 but .* has layers 0..2"):
        XeusFeatures(_config(xeus, 3))


@pytest.mark.parametrize("n_samples", [16000, 16000 + 79, 16000 + 80, 16000 + 319, 12345])
def test_one_frame_per_320_samples_and_espnets_frames_unchanged(xeus, n_samples):
    wav = tiny.synthetic_audio(1.4, seed=6)[:n_samples]
    assert len(wav) == n_samples
    feats = XeusFeatures(_config(xeus, 2))(wav)
    assert feats.shape[0] == n_samples // 320  # what the codec gives
    model = _espnet_model(xeus)
    with torch.no_grad():
        final, _, lengths = model.inference_encode(torch.from_numpy(wav)[None], torch.tensor([n_samples]),
                                                   use_mask=False, use_final_output=False)
    espnet_frames = (n_samples - 400) // 320 + 1
    assert final.shape[1] == espnet_frames == int(lengths[0])
    if espnet_frames == feats.shape[0]:  # N mod 320 >= 80: the same windows, the same features
        np.testing.assert_allclose(feats, final[0].numpy(), rtol=0, atol=1e-5)
    else:  # one frame more than ESPnet, none dropped
        assert feats.shape[0] == espnet_frames + 1


def test_token_ids_are_the_espnet_kmeans_predictions(xeus):
    km_path = xeus / f"km_{tiny.KMEANS_CLUSTERS}.mdl"
    tokenizer = SSLTokenizer.from_pretrained_kmeans(_config(xeus, tiny.SSL_LAYER, kmeans_path=str(km_path)))
    wav = tiny.synthetic_audio(2.0, seed=7)
    ids = tokenizer.encode(wav)
    km = joblib.load(km_path)  # what ESPnet's dump_km_label does with the same features
    np.testing.assert_array_equal(ids, km.predict(XeusFeatures(_config(xeus, tiny.SSL_LAYER))(wav)))
    assert len(np.unique(ids)) > 3


def test_a_checkpoint_whose_keys_do_not_match_is_refused(xeus, tmp_path):
    state = torch.load(xeus / "1epoch.pth", weights_only=False)
    key = next(k for k in state if k.startswith("encoder.encoders.1."))
    del state[key]
    (tmp_path / "config.yaml").write_text((xeus / "config.yaml").read_text())
    torch.save(state, tmp_path / "1epoch.pth")
    with pytest.raises(ValueError, match=rf"1epoch\.pth: does not match .*config\.yaml; missing from the file: 1 \({key}\)"):
        XeusFeatures(_config(tmp_path, 2))
