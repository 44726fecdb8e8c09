"""HiFi-GAN loss terms on cases whose values are known."""
from __future__ import annotations

import math

import pytest
import torch

from svslm.utils.mel import MelConfig
from svslm.vocoder.losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
)


def constant_scores(values: list[float]) -> list[torch.Tensor]:
    return [torch.full((2, 7), float(v)) for v in values]


def test_least_squares_discriminator_loss_on_constant_scores():
    # Perfect discriminators (real 1, fake 0) have zero loss; fully fooled ones (real 0, fake 1)
    # lose 1 + 1 each; the losses of the sub-discriminators add up.
    assert discriminator_loss(constant_scores([1, 1, 1]), constant_scores([0, 0, 0])).item() == 0.0
    assert discriminator_loss(constant_scores([0, 0, 0]), constant_scores([1, 1, 1])).item() == 6.0
    assert discriminator_loss(constant_scores([0.5]), constant_scores([0.5])).item() == pytest.approx(0.5)


def test_least_squares_generator_loss_on_constant_scores():
    assert generator_adversarial_loss(constant_scores([1, 1])).item() == 0.0
    assert generator_adversarial_loss(constant_scores([0.5, 0.0])).item() == pytest.approx(0.25 + 1.0)


def test_feature_matching_is_zero_for_identical_features_and_sums_layer_means():
    torch.manual_seed(0)
    real = [[torch.randn(2, 4, 10), torch.randn(2, 1, 5)], [torch.randn(2, 3, 6)]]
    assert feature_matching_loss(real, [[f.clone() for f in d] for d in real]).item() == 0.0
    shifted = [[f + 0.5 for f in d] for d in real]
    assert feature_matching_loss(real, shifted).item() == pytest.approx(3 * 0.5)


def test_feature_matching_trains_only_the_generator_side():
    real = [[torch.ones(1, 3, requires_grad=True)]]
    fake = [[torch.zeros(1, 3, requires_grad=True)]]
    feature_matching_loss(real, fake).backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None


@pytest.mark.parametrize("log_scale", ["db_power", "ln_magnitude"])
def test_mel_l1_is_zero_for_identical_audio_and_in_ln_magnitude_units(log_scale):
    cfg = MelConfig(log_scale=log_scale)
    torch.manual_seed(0)
    wav = 0.1 * torch.randn(2, 3200)  # white noise: every mel bin well above the log floor
    assert mel_l1_loss(wav, wav.clone(), cfg).item() == 0.0
    # Twice the amplitude is ln 2 more in every bin, whichever log the mel definition uses:
    # the published weight 45 keeps its meaning.
    assert mel_l1_loss(2 * wav, wav, cfg).item() == pytest.approx(math.log(2.0), rel=1e-4)
