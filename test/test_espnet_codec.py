"""svslm's espnet codec against ESPnet's own inference on a tiny DAC built by GANCodecTask.

Needs ESPnet (./install.sh --espnet); run with `pytest -m espnet test`.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from espnet_tiny import tiny

from svslm.tokenize.codec import EspnetCodec
from svslm.tokenize.config import CodecConfig

# ESPnet is imported inside the tests: the main suite collects this file without ESPnet installed.
pytestmark = pytest.mark.espnet


def _config(directory) -> CodecConfig:
    return CodecConfig(backend="espnet", model_file=str(directory / "1epoch.pth"),
                       config_file=str(directory / "config.yaml"))


def _espnet(directory):
    from espnet2.bin.gan_codec_inference import AudioCoding

    return AudioCoding(str(directory / "config.yaml"), str(directory / "1epoch.pth"))


@pytest.fixture(scope="module")
def dac(tmp_path_factory):
    return tiny.build_codec(tmp_path_factory.mktemp("dac"), seed=0)


@pytest.mark.parametrize("n_samples", [16000 + 100, 12345, 9600])
def test_codes_latent_and_audio_are_espnets(dac, n_samples):
    wav = tiny.synthetic_audio(1.0, seed=3)[:n_samples]
    ours, espnet = EspnetCodec(_config(dac)), _espnet(dac)
    codes = ours.encode(wav)
    assert codes.shape == (n_samples // 320, 8)
    with torch.no_grad():
        # ESPnet's codec inference (its largest bandwidth: 8 codebooks here) keeps the partial last frame
        ref = espnet(torch.from_numpy(wav), encode_only=True)["codes"]  # [8, 1, T']
        np.testing.assert_array_equal(codes, ref[:8, 0].T[: len(codes)].numpy())
        ref_codes = torch.from_numpy(codes).T[:, None]  # [8, 1, T]
        latent = espnet.model.codec.generator.quantizer.decode(ref_codes)  # [1, D, T]
        assert torch.equal(ours.embed(torch.from_numpy(codes)[None])[0], latent[0].T)
        audio = ours.decode(codes)
        assert audio.shape == (len(codes) * 320,)
        np.testing.assert_array_equal(audio, espnet.model.decode_continuous(latent).view(-1).numpy())
        np.testing.assert_array_equal(audio, espnet.decode(ref_codes)["resyn_audio"].view(-1).numpy())


def test_eight_codebooks_even_where_the_config_bandwidth_gives_four(tmp_path):
    # 2 kbps at 50 fps and 1024 codes (0.5 kbps each) is 4 codebooks: ESPnet's encode gives [4, B, T]
    directory = tiny.build_codec(tmp_path / "dac", seed=1, target_bandwidth=[1.0, 2.0])
    wav = tiny.synthetic_audio(0.6, seed=4)
    codes = EspnetCodec(_config(directory)).encode(wav)
    with torch.no_grad():
        ref = _espnet(directory)(torch.from_numpy(wav), encode_only=True)["codes"]
    assert ref.shape[0] == 4 and codes.shape == (len(wav) // 320, 8)
    np.testing.assert_array_equal(codes[:, :4], ref[:, 0].T[: len(codes)].numpy())


def test_a_codec_with_fewer_than_eight_codebooks_is_refused(tmp_path):
    directory = tiny.build_codec(tmp_path / "dac", seed=0, n_q=4)
    with pytest.raises(ValueError, match=r"1epoch\.pth: .* 4 codebooks; svslm needs .* >= 8"):
        EspnetCodec(_config(directory))


def test_uninitialised_codebooks_are_refused(tmp_path):
    # kmeans_init: the codebooks are zeros until a training step; ESPnet loads such a file silently
    from espnet2.tasks.gan_codec import GANCodecTask

    directory = tiny.build_codec(tmp_path / "dac", seed=0, kmeans_init=True)
    GANCodecTask.build_model_from_file(str(directory / "config.yaml"), str(directory / "1epoch.pth"))
    with pytest.raises(ValueError, match=r"1epoch\.pth: codebooks \[0, 1, 2, 3, 4, 5, 6, 7\] were never initialised"):
        EspnetCodec(_config(directory))


def test_a_checkpoint_whose_keys_do_not_match_is_refused(dac, tmp_path):
    from espnet2.tasks.gan_codec import GANCodecTask

    state = torch.load(dac / "1epoch.pth", weights_only=False)
    del state["codec.generator.quantizer.vq.layers.3._codebook.embed"]
    state["codec.generator.extra.weight"] = torch.zeros(1)
    (tmp_path / "config.yaml").write_text((dac / "config.yaml").read_text())
    torch.save(state, tmp_path / "1epoch.pth")
    # ESPnet itself takes it (strict=False) and leaves codebook 3 at its initial values
    GANCodecTask.build_model_from_file(str(tmp_path / "config.yaml"), str(tmp_path / "1epoch.pth"))
    with pytest.raises(ValueError) as err:
        EspnetCodec(_config(tmp_path))
    message = str(err.value)
    assert str(tmp_path / "1epoch.pth") in message
    assert "missing from the file: 1 (codec.generator.quantizer.vq.layers.3._codebook.embed)" in message
    assert "codec.generator.extra.weight" in message
