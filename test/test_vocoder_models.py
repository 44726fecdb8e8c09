"""HiFi-GAN modules: output lengths for any input length, discriminator outputs, the same
generator function as a maintained implementation, weight-norm removal, config checks."""
from __future__ import annotations

import pytest
import torch

from svslm.utils.config import ConfigError, from_dict
from svslm.utils.mel import MelConfig
from svslm.vocoder.config import DiscriminatorConfig, GeneratorConfig, VocoderConfig
from svslm.vocoder.models import Discriminators, Generator

TINY_G = GeneratorConfig(upsample_initial_channel=32, resblock_kernel_sizes=[3, 5],
                         resblock_dilation_sizes=[[1, 3], [1, 3]])
TINY_D = DiscriminatorConfig(period_channels=[4, 8, 16, 16, 16], n_scales=3,
                             scale_channels=[16, 16, 32, 32, 32, 32, 32])


def folded_copy(generator: Generator) -> Generator:
    """The same weights with weight norm folded in (deepcopy cannot copy parametrized modules)."""
    copy = Generator(TINY_G, MelConfig())
    copy.load_state_dict(generator.state_dict())
    copy.remove_weight_norm()
    return copy.eval()


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return Generator(TINY_G, MelConfig()).eval()


@pytest.mark.parametrize("frames", [1, 2, 7, 26, 51])
def test_generator_output_is_frames_times_hop(generator, frames):
    mel = torch.randn(2, 80, frames) * 10 - 40
    with torch.no_grad():
        wav = generator(mel)
    assert wav.shape == (2, frames * 320)
    assert wav.abs().max() <= 1.0


def test_published_v1_geometry_upsamples_by_the_codec_hop():
    cfg = VocoderConfig()
    g = Generator(cfg.generator, cfg.mel)
    assert [u.stride[0] for u in g.ups] == [8, 5, 4, 2]
    assert [u.out_channels for u in g.ups] == [256, 128, 64, 32]
    assert len(g.resblocks) == 4 * 3
    with torch.no_grad():
        assert g(torch.zeros(1, 80, 3)).shape == (1, 960)


def test_generator_matches_transformers_hifigan_with_the_same_weights(generator):
    """transformers' SpeechT5HifiGan is a maintained implementation of the same generator."""
    transformers = pytest.importorskip("transformers")
    ours = folded_copy(generator)
    ref = transformers.SpeechT5HifiGan(transformers.SpeechT5HifiGanConfig(
        model_in_dim=80, upsample_rates=TINY_G.upsample_rates, upsample_kernel_sizes=TINY_G.upsample_kernel_sizes,
        upsample_initial_channel=32, resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 3], [1, 3]],
        normalize_before=False)).eval()
    state = {k.replace("ups.", "upsampler."): v for k, v in ours.state_dict().items()}
    state["mean"], state["scale"] = ref.mean, ref.scale
    ref.load_state_dict(state)
    mel = torch.randn(2, 80, 9) * 10 - 40
    with torch.no_grad():
        # SpeechT5HifiGan takes [B, T, n_mels] in ln-magnitude units (our input layer rescales dB).
        expected = ref((mel * (torch.log(torch.tensor(10.0)) / 20)).transpose(1, 2))
        assert torch.allclose(ours(mel), expected, atol=1e-5)


def test_remove_weight_norm_keeps_the_output(generator):
    folded = folded_copy(generator)
    assert not any("parametrizations" in name for name, _ in folded.named_parameters())
    mel = torch.randn(1, 80, 5) * 10 - 40
    with torch.no_grad():
        assert torch.allclose(folded(mel), generator(mel), atol=1e-6)


def test_discriminators_return_one_score_and_feature_list_per_subdiscriminator():
    torch.manual_seed(0)
    d = Discriminators(TINY_D)
    wav = torch.randn(3, 26 * 320) * 0.1  # 8320 samples: padded for periods 3, 7, 11
    scores, features = d(wav)
    assert len(scores) == len(features) == 5 + 3
    for score, feats in zip(scores, features):
        assert score.dim() == 2 and score.shape[0] == 3
        assert all(f.shape[0] == 3 for f in feats)
    assert [len(f) for f in features] == [6] * 5 + [8] * 3  # conv layers + output layer
    # A period discriminator folds the signal into columns of its period.
    assert [feats[0].shape[-1] for feats in features[:5]] == [2, 3, 5, 7, 11]
    scores[0].sum().backward()
    assert d.mpd.discriminators[0].convs[0].parametrizations.weight.original1.grad is not None


@pytest.mark.parametrize(
    "section, bad, message",
    [
        ("generator", {"upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4]}, "not the mel hop_length 320"),
        ("generator", {"upsample_kernel_sizes": [16, 10, 8, 4]}, "differ from it by an even number"),
        ("discriminator", {"scale_channels": [16, 18, 32, 32, 32, 32, 32]}, "cannot have 4 groups"),
    ],
)
def test_config_refuses_geometry_that_cannot_work(section, bad, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(VocoderConfig, {section: bad})
