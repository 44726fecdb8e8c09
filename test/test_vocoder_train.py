"""Vocoder training end to end on a tiny generated corpus: segments, resume, the mel guard, load_vocoder."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from svslm.bin.vocoder_train import main as vocoder_train_main
from svslm.utils.audio import load_wav
from svslm.utils.config import ConfigError, from_dict, load_config, to_dict
from svslm.utils.distributed import Dist
from svslm.utils.mel import MelConfig, MelMismatchError, mel_spectrogram
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.dataset import (
    DataError,
    SegmentDataset,
    ground_truth_mel_segment,
    read_utterances,
)
from svslm.vocoder.inference import load_vocoder
from svslm.vocoder.source import frame_f0
from svslm.vocoder.train import Trainer, latest_checkpoint, train_vocoder

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "generator": {"upsample_initial_channel": 16, "resblock_kernel_sizes": [3],
                  "resblock_dilation_sizes": [[1, 3]]},
    "discriminator": {"periods": [2, 3], "period_channels": [4, 4, 8, 8, 8], "n_scales": 2,
                      "scale_channels": [16, 16, 16, 16, 16, 16, 16]},
    "train": {"segment_frames": 4, "batch_size": 2, "max_steps": 4, "discriminator_start_step": 1,
              "num_workers": 0, "device": "cpu", "log_interval": 1, "valid_interval": 2,
              "checkpoint_interval": 2, "keep_checkpoints": 5, "n_audio_samples": 1},
}


def chirp(seconds: float, f0: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (0.4 * np.sin(2 * np.pi * f0 * t * (1 + 0.5 * t)) + noise).astype(np.float32)


def write_split(root: Path, split: str, n: int, seconds: float = 0.5) -> None:
    wav_dir = root / split / "wav"
    wav_dir.mkdir(parents=True)
    lines = []
    for i in range(n):
        utt = f"singer{i % 2}#{split}{i}"
        sf.write(wav_dir / f"{utt}.wav", chirp(seconds, 150 + 40 * i, i), 16000, subtype="PCM_16")
        lines.append(f"{utt} {wav_dir / f'{utt}.wav'}\n")
    (root / split / "wav.scp").write_text("".join(lines))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_split(root, "train", 6)  # 3 steps per epoch at batch 2
    write_split(root, "dev", 1)
    return root


# The tiny recipe's generator: a harmonic source with a learned F0 predictor, linear upsampling.
WITH_SOURCE = {"source_harmonics": 2, "f0_predictor_channels": 8, "upsample_mode": "linear"}


def tiny_config(source: bool = False, **train) -> VocoderConfig:
    raw = yaml.safe_load(yaml.safe_dump(TINY))
    raw["train"].update(train)
    if source:
        raw["generator"].update(WITH_SOURCE)
    return from_dict(VocoderConfig, raw)


def test_ground_truth_segment_equals_the_whole_utterance_mel():
    cfg = MelConfig()
    wav = chirp(1.013, 200, 0)  # not a whole number of frames
    whole = mel_spectrogram(wav, cfg).numpy()
    n = whole.shape[1]
    for start in (0, 1, 7, n - 5):  # the edges use the utterance's own reflect padding
        np.testing.assert_allclose(ground_truth_mel_segment(wav, start, 5, cfg), whole[:, start:start + 5],
                                   atol=1e-3)


def test_segments_align_mel_audio_and_f0(data_dir):
    cfg = MelConfig()
    utts = read_utterances(data_dir / "train" / "wav.scp", cfg, min_frames=4)
    mel, wav, f0 = SegmentDataset(utts, cfg, 4)[(1, 123)]
    assert mel.shape == (80, 4) and wav.shape == (4 * 320,)
    assert f0.numel() == 0  # F0 is analysed only for a generator with a harmonic source
    assert torch.equal(SegmentDataset(utts, cfg, 4)[(1, 123)][1], wav)  # the seed fixes the segment

    mel, wav, f0 = SegmentDataset(utts, cfg, 4, with_f0=True)[(1, 123)]
    whole = load_wav(utts[1].wav_path)
    start = next(s for s in range(utts[1].n_frames) if np.array_equal(whole[s * 320:(s + 4) * 320], wav.numpy()))
    np.testing.assert_array_equal(f0.numpy(), frame_f0(whole, 16000, 320)[start:start + 4])
    assert (f0 > 0).all()  # the chirp is voiced throughout
    np.testing.assert_allclose(mel.numpy(), mel_spectrogram(whole, cfg).numpy()[:, start:start + 4], atol=1e-3)


def test_bad_utterances_are_all_reported(tmp_path, data_dir):
    good = (data_dir / "train" / "wav.scp").read_text().splitlines()[0]
    sf.write(tmp_path / "fast.wav", chirp(0.5, 200, 0), 22050)
    (tmp_path / "wav.scp").write_text(f"{good}\nbroken {tmp_path}/missing.wav\nfast {tmp_path}/fast.wav\n")
    with pytest.raises(DataError) as err:
        read_utterances(tmp_path / "wav.scp", MelConfig(), min_frames=4)
    assert "broken: unreadable audio" in str(err.value) and "fast:" in str(err.value) and "22050 Hz" in str(err.value)


def checkpoint_state(exp_dir: Path) -> dict:
    return torch.load(latest_checkpoint(exp_dir / "checkpoints"), weights_only=True)


def assert_same_tensors(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.slow
@pytest.mark.parametrize("source", [False, True], ids=["hifigan", "with_source"])
def test_interrupted_training_resumes_to_the_same_state(data_dir, tmp_path, source):
    # 4 steps in one go, against 2 steps, a stop, and a re-run asked for 4: the second run must
    # pick up at step 2 (mid-epoch, after the GAN losses started) and end in the identical state.
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_vocoder(tiny_config(source), data_dir, straight)
    train_vocoder(tiny_config(source, max_steps=2), data_dir, resumed)
    assert checkpoint_state(resumed)["step"] == 2
    train_vocoder(tiny_config(source), data_dir, resumed)
    a, b = checkpoint_state(straight), checkpoint_state(resumed)
    assert a["step"] == b["step"] == 4
    for part in ("generator", "discriminators", "optim_g", "optim_d"):
        assert_same_tensors(a[part], b[part], part)
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == ["step2", "step4"]
    assert all(sorted(p.name for p in d.iterdir()) == ["complete", "state.pt"]
               for d in (resumed / "checkpoints").iterdir())  # complete, no half-written leftovers
    assert any((resumed / "tensorboard").iterdir())

    # load_vocoder: batched mel -> waveform of T * hop samples, close to the checkpoint's generator.
    vocoder = load_vocoder(resumed, mel_config=MelConfig())
    with torch.no_grad():
        assert vocoder(torch.randn(3, 80, 11) * 10 - 40).shape == (3, 11 * 320)
    with pytest.raises(MelMismatchError, match="fmax: 8000.0 vs 7600.0"):
        load_vocoder(resumed, mel_config=MelConfig(fmax=7600.0))

    # A different generator cannot continue this experiment.
    other = tiny_config(source)
    other.generator.upsample_initial_channel = 32
    with pytest.raises(ConfigError, match="different generator settings"):
        train_vocoder(other, data_dir, resumed)


def test_command_line_entry_point_trains_and_writes_the_stage_outputs(data_dir, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    exp = tmp_path / "exp"
    assert vocoder_train_main(["--config", str(config), "--data_dir", str(data_dir), "--exp_dir", str(exp),
                               "--override", "train.max_steps=1"]) == 0
    assert (exp / "generator.pth").is_file() and (exp / "config.yaml").is_file()
    assert from_dict(VocoderConfig, yaml.safe_load((exp / "config.yaml").read_text())).train.max_steps == 1
    assert math.prod(load_vocoder(exp).generator.ups[i].stride[0] for i in range(4)) == 320


def test_fine_tuning_starts_from_the_trained_vocoder(data_dir, tmp_path):
    base = tmp_path / "base"
    train_vocoder(tiny_config(max_steps=1), data_dir, base)
    # Learning rate 0: the fine-tuned generator must be exactly the one it started from.
    tuned = tmp_path / "tuned"
    train_vocoder(tiny_config(max_steps=1, learning_rate=0.0, init_from=str(base)), data_dir, tuned)
    assert_same_tensors(torch.load(base / "generator.pth"), torch.load(tuned / "generator.pth"))


def test_the_committed_zoo_vocoder_in_its_single_file_layout_is_found_and_loads(data_dir):
    # local/mini_zoo ships checkpoints/checkpoint_<step>.pt (the layout before step<N>/);
    # fine-tuning reads its weights and mel.
    zoo = ROOT / "local/mini_zoo/models/vocoder"
    path = latest_checkpoint(zoo / "checkpoints")
    assert path is not None and path.name == "checkpoint_3000.pt"
    cfg = load_config(ROOT / "conf/vocoder/tiny_finetune.yaml", VocoderConfig,
                      ["train.batch_size=2", "train.segment_frames=4", "train.device=cpu", "train.num_workers=0"])
    trainer = Trainer(cfg, data_dir, data_dir / "unused_exp", Dist())
    trainer.init_from(zoo)
    shipped = torch.load(path, weights_only=True)["generator"]
    for name, value in trainer.generator.state_dict().items():
        assert torch.equal(value, shipped[name].float()), name


# ---- data parallelism: `torchrun --nproc_per_node 2` (gloo) trains what one process trains ----

# oneDNN's convolutions sum in an order that depends on the batch size (1e-2 relative error seen in
# the generator's tiny first-layer gradients, batch 2 against 1 + 1), which Adam's first steps
# turn into lr-sized weight differences; torch's own convolutions compute each item alike.
NO_ONEDNN = "import runpy, sys, torch\ntorch.backends.mkldnn.enabled = False\n" \
            "runpy.run_module('svslm.bin.vocoder_train', run_name='__main__')\n"


def torchrun(config: VocoderConfig, data_dir: Path, exp: Path, nproc: int = 2, module: bool = True) -> None:
    """The stage-5 entry point under torchrun on CPU, as run.sh --gpus would launch it
    (module=False: through a script that turns oneDNN off first)."""
    import os
    import subprocess
    import sys

    path = exp.parent / f"{exp.name}.yaml"
    path.write_text(yaml.safe_dump(to_dict(config)))
    script = exp.parent / "no_onednn.py"
    script.write_text(NO_ONEDNN)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    entry = ["-m", "svslm.bin.vocoder_train"] if module else [str(script)]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(nproc), *entry, "--config", str(path),
                           "--data_dir", str(data_dir), "--exp_dir", str(exp)],
                          check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def train_losses(exp: Path, name: str = "train/generator") -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(exp / "tensorboard"))
    events.Reload()
    return [e.value for e in events.Scalars(name)]


def assert_close_tensors(a: dict, b: dict, where: str, atol: float = 1e-6) -> None:
    for name, value in a.items():
        assert torch.allclose(value, b[name], rtol=1e-5, atol=atol), f"{where}.{name}"


@pytest.mark.slow
def test_two_processes_train_the_same_vocoder_as_one_and_resume_on_one(data_dir, tmp_path):
    # Global batch 2: one segment per process, every loss a mean over equal shares. Steps 1-2 on
    # 2 processes (the GAN losses start at step 1), then 3-4 (a new epoch) resumed on 1 process,
    # against 4 steps on 1 process.
    cfg = tiny_config()
    with torch.backends.mkldnn.flags(enabled=False):
        train_vocoder(cfg, data_dir, tmp_path / "one")
        torchrun(tiny_config(max_steps=2), data_dir, tmp_path / "two", module=False)
        half = checkpoint_state(tmp_path / "two")
        assert half["step"] == 2 and half["world_size"] == len(half["rng"]) == 2  # each process's noise stream
        train_vocoder(cfg, data_dir, tmp_path / "two")
    for name in ("train/generator", "train/discriminator", "train/mel_l1"):
        one, two = train_losses(tmp_path / "one", name), train_losses(tmp_path / "two", name)
        assert len(one) == len(two) and len(one) >= 3, name
        np.testing.assert_allclose(two, one, rtol=1e-4, err_msg=name)  # float32 sums in another order (1.8e-5 on an AMD EPYC)
    for step in (2, 4):
        name = f"checkpoints/step{step}/state.pt"
        a, b = (torch.load(tmp_path / run / name, weights_only=True) for run in ("one", "two"))
        # Step 2: equal to 1e-8, which is what proves the averaging. After that, weights whose
        # gradients are ~0 drift by up to about lr (Adam normalises float32 noise: lr / 3 on an
        # Intel Xeon, 0.8 lr on an AMD EPYC), so step 4 allows 2 lr; a resume that drops the
        # optimizers' state still fails it. (2 -> 1 processes reseeds the noise by design.)
        atol = 1e-6 if step == 2 else 2 * cfg.train.learning_rate
        for part in ("generator", "discriminators"):
            assert_close_tensors(a[part], b[part], f"step {step} {part}", atol)
    assert b["world_size"] == 1 and (tmp_path / "two" / "generator.pth").is_file()


@pytest.mark.slow
def test_a_harmonic_source_generator_trains_on_two_processes(data_dir, tmp_path):
    # The F0 predictor's loss goes through DDP with the generator's (GeneratorStep); the source's
    # noise is each process's own, so this is trained, not compared.
    torchrun(tiny_config(source=True, max_steps=2, precision="bf16"), data_dir, tmp_path / "exp")
    state = checkpoint_state(tmp_path / "exp")
    assert state["step"] == 2 and all(np.isfinite(train_losses(tmp_path / "exp", "train/f0")))


def test_a_batch_that_does_not_split_evenly_is_refused(data_dir, tmp_path):
    from svslm.utils.distributed import check_divisible

    check_divisible(4, 2, "train.batch_size")
    with pytest.raises(ValueError, match="train.batch_size 3 .* not divisible by the 2 processes"):
        check_divisible(3, 2, "train.batch_size")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_the_vocoder(data_dir, tmp_path, precision):
    train_vocoder(tiny_config(source=True, max_steps=2, precision=precision), data_dir, tmp_path)
    state = checkpoint_state(tmp_path)
    assert (state["scaler"] is not None) == (precision == "fp16")
    assert all(np.isfinite(train_losses(tmp_path)))
    assert all(torch.isfinite(v).all() for v in state["generator"].values())


@pytest.mark.slow
@pytest.mark.parametrize("config", ["tiny.yaml", "paper.yaml"])
def test_every_parameter_learns_in_its_update_as_ddp_requires(config):
    # DistributedDataParallel (find_unused_parameters off) fails at the second step of a
    # multi-GPU run when a wrapped module has a parameter without a gradient.
    from svslm.utils.config import load_config
    from svslm.vocoder.models import Discriminators, Generator
    from svslm.vocoder.train import DiscriminatorStep, GeneratorStep

    cfg = load_config(Path(__file__).resolve().parents[1] / "conf" / "vocoder" / config, VocoderConfig)
    generator, discriminators = Generator(cfg.generator, cfg.mel), Discriminators(cfg.discriminator)
    frames = 8  # a short segment: the paper-size networks are slow on a CPU
    mel, wav = torch.randn(1, cfg.mel.n_mels, frames) * 10 - 40, torch.randn(1, frames * 320) * 0.1
    f0 = torch.full((1, frames), 220.0) if cfg.generator.source_harmonics else None
    fake, logits = GeneratorStep(generator, cfg)(mel, f0)
    (fake.abs().mean() + (logits.float().mean() if logits is not None else 0)).backward()
    real_scores, fake_scores = DiscriminatorStep(discriminators)(wav, fake.detach())
    sum(s.mean() for s in real_scores + fake_scores).backward()
    for module in (generator, discriminators):
        assert [n for n, p in module.named_parameters() if p.grad is None] == []
