"""The harmonic (NSF) source: F0 analysis aligned to mel frames, a source that sounds at F0 with a
continuous phase, the F0 predictor and its loss, and a generator driven by either F0."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svslm.testing.evaluate import sung_tone
from svslm.utils.mel import MelConfig, mel_spectrogram
from svslm.vocoder.config import GeneratorConfig
from svslm.vocoder.models import Generator
from svslm.vocoder.source import (
    F0Predictor,
    HarmonicSource,
    decode_f0,
    f0_loss,
    f0_target,
    frame_f0,
)

SR, HOP = 16000, 320


def test_frame_f0_has_one_value_per_mel_frame_and_follows_the_pitch():
    wav = sung_tone(2.0, f0_hz=440.0, vibrato_semitones=0.0)
    f0 = frame_f0(wav, SR, HOP)
    assert f0.shape == (wav.size // HOP,) == (mel_spectrogram(wav, MelConfig()).shape[-1],)
    voiced = f0 > 0
    assert voiced[10:-10].all()  # the steady middle of the tone
    assert np.median(np.abs(1200 * np.log2(f0[voiced] / 440.0))) < 10  # cents
    assert not frame_f0(np.zeros(SR, dtype=np.float32), SR, HOP).any()  # silence is unvoiced


def only_the_fundamental(source: HarmonicSource) -> HarmonicSource:
    with torch.no_grad():
        source.mix.weight.zero_()
        source.mix.weight[0, 0] = 1.0
        source.mix.bias.zero_()
    return source.eval()


@torch.no_grad()
def test_source_sounds_at_f0_and_is_quiet_noise_when_unvoiced():
    source = only_the_fundamental(HarmonicSource(4, SR, HOP))
    wav = source(torch.full((1, 50), 440.0))[0, 0].numpy()  # one second
    assert wav.shape == (50 * HOP,)
    spectrum = np.abs(np.fft.rfft(wav))
    assert np.argmax(spectrum) * SR / wav.size == pytest.approx(440.0, abs=1.0)
    silent = source(torch.zeros(1, 50))[0, 0].numpy()
    assert 0.02 < silent.std() < 0.05  # NSF's unvoiced noise level 0.033, nothing periodic on top


@torch.no_grad()
def test_source_phase_is_continuous_across_frames_with_changing_f0():
    # A glide 200 -> 600 Hz, one F0 per frame: a phase restarting at frame boundaries would jump
    # by up to twice the amplitude (0.2); a continuous sine moves < 2 pi f / sr x 0.1 = 0.024 per
    # sample, plus the voiced noise (0.003 std, on both samples).
    source = only_the_fundamental(HarmonicSource(4, SR, HOP))
    torch.manual_seed(0)
    wav = source(torch.linspace(200.0, 600.0, 40).unsqueeze(0))[0, 0]
    assert wav.diff().abs().max().item() < 0.024 + 0.03


def logits_of(distribution: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax is (almost exactly) `distribution`."""
    return torch.log(distribution + 1e-12)


def test_pitch_classes_round_trip_f0_and_voicing():
    f0 = torch.tensor([[0.0, 82.0, 220.0, 441.3, 1000.0, 0.0]])
    decoded = decode_f0(logits_of(f0_target(f0)))
    voiced = f0 > 0
    assert torch.equal(decoded > 0, voiced)
    assert (1200 * torch.log2(decoded[voiced] / f0[voiced])).abs().max() < 2  # cents


def test_f0_loss_prefers_the_right_pitch_over_an_octave_error_and_a_voicing_error():
    f0 = torch.tensor([[0.0, 220.0, 440.0, 0.0]])
    right = f0_loss(logits_of(f0_target(f0)), f0)
    octave = f0_loss(logits_of(f0_target(f0 * 2)), f0)
    unvoiced = f0_loss(logits_of(f0_target(torch.zeros_like(f0))), f0)
    assert right < octave and right < unvoiced
    # Cross-entropy of a distribution with itself is its entropy: the loss's floor.
    target = f0_target(f0)
    entropy = -(target * torch.log(target.clamp(min=1e-30))).sum(1).mean()
    assert right.item() == pytest.approx(entropy.item(), abs=1e-3)


def test_f0_predictor_reports_zero_where_it_hears_no_voice():
    predictor = F0Predictor(80, 16)
    with torch.no_grad():
        predictor.out.bias[-1] = 100.0  # the "unvoiced" class dominates
        assert not predictor.predict(torch.randn(2, 80, 9)).any()
        predictor.out.bias[-1] = -100.0
        f0 = predictor.predict(torch.randn(2, 80, 9))
    assert f0.shape == (2, 9) and (f0 >= 60).all() and (f0 <= 1100 * 1.01).all()


@pytest.fixture(scope="module")
def source_generator() -> Generator:
    torch.manual_seed(0)
    cfg = GeneratorConfig(upsample_initial_channel=32, resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                          upsample_mode="linear", source_harmonics=4, f0_predictor_channels=16)
    return Generator(cfg, MelConfig()).eval()


@pytest.mark.parametrize("frames", [1, 3, 26])
def test_generator_with_source_keeps_the_length_with_given_or_predicted_f0(source_generator, frames):
    mel = torch.randn(2, 80, frames) * 10 - 40
    with torch.no_grad():
        assert source_generator(mel).shape == (2, frames * HOP)  # F0 from its own predictor
        assert source_generator(mel, torch.full((2, frames), 330.0)).shape == (2, frames * HOP)


def test_generator_output_depends_on_the_f0_that_drives_the_source(source_generator):
    mel = torch.randn(1, 80, 10) * 10 - 40
    torch.manual_seed(1)
    with torch.no_grad():
        low = source_generator(mel, torch.full((1, 10), 220.0))
        torch.manual_seed(1)  # the same source noise: only F0 differs
        high = source_generator(mel, torch.full((1, 10), 440.0))
        torch.manual_seed(1)
        again = source_generator(mel, torch.full((1, 10), 220.0))
    assert torch.equal(low, again)
    assert not torch.equal(low, high)  # same noise, so any difference is the F0's

