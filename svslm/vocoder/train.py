"""HiFi-GAN training loop (stage 5): ground-truth mel -> waveform.

One step = a discriminator update on detached generated audio, then a generator update with
LSGAN + 2 x feature matching + 45 x mel L1 (HiFi-GAN V1). The learning rate decays by
`lr_decay` after every epoch. Checkpoints (`checkpoints/step<N>/`, svslm.utils.checkpoint) hold
generator, discriminators, optimisers and every process's RNG state; the newest one is resumed
from, and since the data order is a function of (seed, epoch) a resumed run continues exactly
where the interrupted one stopped.

Under `torchrun` the processes split every (global) batch evenly and DistributedDataParallel
averages the gradients, so N processes train what one process does with the same batch; the
harmonic source's noise and phases are each process's own draws. Rank 0 logs, validates and
writes checkpoints. `train.precision` bf16 or fp16 autocasts the networks (fp16 with a gradient
scaler); losses and the mel of the mel loss are computed in fp32.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from svslm.utils import distributed
from svslm.utils.audio import load_wav
from svslm.utils.checkpoint import (
    STATE_FILE,
    CheckpointDir,
    restore_rng_per_rank,
    rng_state,
)
from svslm.utils.config import ConfigError, from_dict, save_config, to_dict
from svslm.utils.fileio import atomic_path
from svslm.utils.mel import MelConfig, check_same_mel, mel_spectrogram
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.dataset import SegmentDataset, epoch_batches, read_utterances
from svslm.vocoder.losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
)
from svslm.vocoder.models import Discriminators, Generator, log_magnitude
from svslm.vocoder.source import f0_loss, frame_f0

log = logging.getLogger("svslm")


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The state file of the newest complete checkpoint in `ckpt_dir`, or else of the newest
    `checkpoint_<step>.pt`: the single-file layout of vocoders trained before
    svslm.utils.checkpoint, which the mini model zoo (local/mini_zoo) ships."""
    latest = CheckpointDir(ckpt_dir).latest()
    if latest is not None:
        return latest / STATE_FILE
    legacy = sorted((int(p.stem.split("_", 1)[1]), p) for p in ckpt_dir.glob("checkpoint_*.pt")
                    if p.stem.split("_", 1)[1].isdigit())
    return legacy[-1][1] if legacy else None


def check_resumable(cfg: VocoderConfig, exp_dir: Path) -> None:
    """Refuse to continue an experiment whose model or mel definition was different."""
    path = exp_dir / "config.yaml"
    if not path.is_file():
        return
    old = from_dict(VocoderConfig, yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    check_same_mel(old.mel, cfg.mel, str(path), "the new config")
    for section in ("generator", "discriminator"):
        if getattr(old, section) != getattr(cfg, section):
            raise ConfigError(
                f"{exp_dir} holds a vocoder with different {section} settings ({path}); "
                "train in a new --exp_dir"
            )


class GeneratorStep(nn.Module):
    """What the generator update runs, as one forward() for DistributedDataParallel: the waveform
    and, with a harmonic source, the F0 predictor's logits."""

    def __init__(self, generator: Generator, cfg: VocoderConfig):
        super().__init__()
        self.generator, self.mel = generator, cfg.mel

    def forward(self, mel: torch.Tensor, f0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        fake = self.generator(mel, f0)
        if f0 is None:
            return fake, None
        return fake, self.generator.f0_predictor(log_magnitude(mel, self.mel))


class DiscriminatorStep(nn.Module):
    """The discriminator update's forward(): scores of real and (detached) generated audio."""

    def __init__(self, discriminators: Discriminators):
        super().__init__()
        self.discriminators = discriminators

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.discriminators(real)[0], self.discriminators(fake)[0]


def _fp32(x):
    """Network outputs (tensors, nested in lists and tuples) as float32, for the losses."""
    if isinstance(x, (list, tuple)):
        return type(x)(_fp32(v) for v in x)
    return x.float() if x is not None else None


class Trainer:
    def __init__(self, cfg: VocoderConfig, data_dir: Path, exp_dir: Path, dist: distributed.Dist):
        self.cfg, self.exp_dir, self.dist = cfg, exp_dir, dist
        tc = cfg.train
        distributed.check_divisible(tc.batch_size, dist.world_size, "train.batch_size")
        self.device = dist.device
        if tc.num_threads > 0:
            torch.set_num_threads(tc.num_threads)
        torch.manual_seed(tc.seed)
        self.generator = Generator(cfg.generator, cfg.mel).to(self.device)
        self.discriminators = Discriminators(cfg.discriminator).to(self.device)
        betas = tuple(tc.adam_betas)
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), tc.learning_rate, betas=betas)
        self.optim_d = torch.optim.AdamW(self.discriminators.parameters(), tc.learning_rate, betas=betas)
        self.scaler = distributed.grad_scaler(tc.precision, self.device)  # one for both, as torch.amp advises
        self.step = 0

        train_utts = read_utterances(data_dir / "train" / "wav.scp", cfg.mel, tc.segment_frames)
        if len(train_utts) < tc.batch_size:
            raise ConfigError(
                f"{data_dir}/train has {len(train_utts)} usable utterances, fewer than "
                f"train.batch_size {tc.batch_size}"
            )
        self.has_source = cfg.generator.source_harmonics > 0
        self.train_set = SegmentDataset(train_utts, cfg.mel, tc.segment_frames, with_f0=self.has_source)
        self.steps_per_epoch = len(train_utts) // tc.batch_size
        dev_utts = read_utterances(data_dir / "dev" / "wav.scp", cfg.mel, min_frames=1)
        self.dev_utts = dev_utts[: tc.max_valid_utts]
        self.dev_f0: dict[str, np.ndarray] = {}  # the recordings' F0, analysed at the first validation
        log.info("train: %d utterances, %d steps per epoch of global batch %d on %d process(es); "
                 "dev: %d utterances for validation", len(train_utts), self.steps_per_epoch, tc.batch_size, dist.world_size, len(self.dev_utts))

    def wrap(self) -> None:
        """The DDP-wrapped update modules; called once the weights are loaded (DDP broadcasts
        rank 0's), and after that each process's source noise is its own."""
        self.generator_step = self.dist.wrap(GeneratorStep(self.generator, self.cfg))
        self.discriminator_step = self.dist.wrap(DiscriminatorStep(self.discriminators))

    # ---- checkpoints ----
    def state(self) -> dict:
        """Every process takes part (its RNG states are gathered); rank 0 writes the result."""
        return {
            "step": self.step,
            "generator": self.generator.state_dict(),
            "discriminators": self.discriminators.state_dict(),
            "optim_g": self.optim_g.state_dict(),
            "optim_d": self.optim_d.state_dict(),
            "config": to_dict(self.cfg),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            # The harmonic source draws noise and phases: a resumed run continues the same draws,
            # one stream per process.
            "rng": self.dist.gather(rng_state()),
            "world_size": self.dist.world_size,
        }

    def load_state(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.generator.load_state_dict(state["generator"])
        self.discriminators.load_state_dict(state["discriminators"])
        self.optim_g.load_state_dict(state["optim_g"])
        self.optim_d.load_state_dict(state["optim_d"])
        self.step = state["step"]
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        # Single-file checkpoints (latest_checkpoint) hold torch's CPU state per process, older
        # ones a single tensor or nothing.
        rng = state.get("rng", [])
        rng = [rng] if isinstance(rng, torch.Tensor) else rng
        restored = restore_rng_per_rank(rng, self.dist.rank, self.dist.world_size, self.cfg.train.seed, self.step)
        if not restored and rng and self.dist.is_main:
            log.info("checkpoint written by %d processes, resumed by %d: the source's noise draws start anew",
                     len(rng), self.dist.world_size)

    def init_from(self, vocoder_dir: Path) -> None:
        """Start from another vocoder's newest weights (fine-tuning); optimisers and step start anew."""
        path = latest_checkpoint(vocoder_dir / "checkpoints")
        if path is None:
            raise FileNotFoundError(f"train.init_from: no checkpoint under {vocoder_dir}/checkpoints")
        state = torch.load(path, map_location=self.device, weights_only=True)
        # Only the mel must agree (the weights' shapes are checked as they load); the other
        # vocoder's training settings are its own business.
        check_same_mel(from_dict(MelConfig, state["config"]["mel"], f"{path}: mel"), self.cfg.mel,
                       f"vocoder {vocoder_dir}", "this config")
        self.generator.load_state_dict(state["generator"])
        self.discriminators.load_state_dict(state["discriminators"])
        log.info("initialised generator and discriminators from %s (step %d)", path, state["step"])

    # ---- one optimisation step ----
    def train_step(self, mel: torch.Tensor, wav: torch.Tensor, f0: torch.Tensor | None = None) -> dict[str, float]:
        """mel [B, n_mels, S], wav [B, S * hop], f0 [B, S] (Hz; with a harmonic source) -> the step's losses.

        The source is driven by the recording's F0 (teacher forcing); the F0 predictor that
        drives it at inference learns from the same F0 on the side."""
        lc, scaler = self.cfg.loss, self.scaler
        autocast = distributed.autocast(self.cfg.train.precision, self.device)
        with autocast:
            fake, f0_logits = _fp32(self.generator_step(mel, f0 if self.has_source else None))  # [B, S * hop]
        adversarial = self.step >= self.cfg.train.discriminator_start_step
        losses = {}
        if adversarial:
            with autocast:
                real_scores, fake_scores = _fp32(self.discriminator_step(wav, fake.detach()))
            loss_d = discriminator_loss(real_scores, fake_scores)
            self.optim_d.zero_grad(set_to_none=True)
            scaler.scale(loss_d).backward()
            scaler.step(self.optim_d)
            losses["discriminator"] = loss_d

        loss_mel = mel_l1_loss(fake, wav, self.cfg.mel)
        loss_g = lc.mel_weight * loss_mel
        if adversarial:
            # Not through DDP: these gradients of the discriminators are discarded, not averaged.
            with autocast:
                _, real_features = _fp32(self.discriminators(wav))
                fake_scores, fake_features = _fp32(self.discriminators(fake))
            loss_adv = generator_adversarial_loss(fake_scores)
            loss_fm = feature_matching_loss(real_features, fake_features)
            loss_g = loss_g + loss_adv + lc.feature_matching_weight * loss_fm
            losses.update(adversarial=loss_adv, feature_matching=loss_fm)
        if self.has_source:
            loss_f0 = f0_loss(f0_logits, f0)
            loss_g = loss_g + lc.f0_weight * loss_f0
            losses["f0"] = loss_f0
        self.optim_g.zero_grad(set_to_none=True)
        scaler.scale(loss_g).backward()
        scaler.step(self.optim_g)
        scaler.update()
        losses.update(mel_l1=loss_mel, generator=loss_g)
        # The whole batch's losses: the mean of the processes' (equal shares).
        names = list(losses)
        values = self.dist.sum(torch.stack([losses[k].detach().double() for k in names])) / self.dist.world_size
        return dict(zip(names, values.tolist()))

    def set_learning_rate(self) -> float:
        """V1's per-epoch exponential decay, as a function of the step (nothing to checkpoint)."""
        epoch = self.step // self.steps_per_epoch
        lr = self.cfg.train.learning_rate * self.cfg.train.lr_decay**epoch
        for optim in (self.optim_g, self.optim_d):
            for group in optim.param_groups:
                group["lr"] = lr
        return lr

    # ---- validation ----
    @torch.no_grad()
    def validate(self, writer: SummaryWriter) -> float:
        """Mean absolute log-mel error (dB for a dB mel) of resynthesised dev utterances."""
        self.generator.eval()
        errors, cents, vuv = [], [], []
        for i, item in enumerate(self.dev_utts):
            wav = torch.from_numpy(load_wav(item.wav_path)[: item.n_frames * self.cfg.mel.hop_length])
            mel = mel_spectrogram(wav, self.cfg.mel).to(self.device)  # [n_mels, T]
            f0 = None
            if self.has_source:  # the generator's own F0, as at inference, against the recording's
                f0 = self.generator.f0_predictor.predict(log_magnitude(mel[None], self.cfg.mel))  # [1, T]
                predicted = f0[0].cpu().numpy()
                if item.utt not in self.dev_f0:
                    self.dev_f0[item.utt] = frame_f0(wav.numpy(), self.cfg.mel.sample_rate, self.cfg.mel.hop_length)
                target = self.dev_f0[item.utt]
                both = (predicted > 0) & (target > 0)
                cents.extend(np.abs(1200 * np.log2(predicted[both] / target[both])))
                vuv.extend((predicted > 0) != (target > 0))
            fake = self.generator(mel[None], f0)[0]  # [T * hop]
            fake_mel = mel_spectrogram(fake, self.cfg.mel)
            errors.append((fake_mel - mel).abs().mean().item())
            if i < self.cfg.train.n_audio_samples:
                sr = self.cfg.mel.sample_rate
                writer.add_audio(f"dev/{item.utt}/generated", fake.cpu().unsqueeze(0), self.step, sr)
                if self.step <= self.cfg.train.valid_interval:
                    writer.add_audio(f"dev/{item.utt}/ground_truth", wav.unsqueeze(0), self.step, sr)
                writer.add_figure(f"dev/{item.utt}/mel", mel_figure(fake_mel.cpu(), mel.cpu()), self.step)
        self.generator.train()
        if self.has_source and vuv:
            cents_error = float(np.mean(cents)) if cents else float("nan")  # nan: no frame voiced in both
            writer.add_scalar("dev/f0_abs_error_cents", cents_error, self.step)
            writer.add_scalar("dev/voicing_error", float(np.mean(vuv)), self.step)
            log.info("step %d: dev F0 predictor: %.1f cents mean absolute error, %.1f%% voicing errors",
                     self.step, cents_error, 100 * float(np.mean(vuv)))
        return float(np.mean(errors))

    # ---- the loop ----
    def run(self) -> None:
        tc = self.cfg.train
        dist, main = self.dist, self.dist.is_main
        checkpoints = CheckpointDir(self.exp_dir / "checkpoints", tc.keep_checkpoints)
        latest = latest_checkpoint(checkpoints.root)
        if latest is not None:
            self.load_state(latest)
            if main:
                log.info("resumed from %s at step %d", latest, self.step)
        else:
            if tc.init_from:
                self.init_from(Path(tc.init_from))
            if dist.enabled:  # the same initial weights (DDP broadcasts them), then each its own noise
                torch.manual_seed(tc.seed * 1000003 + dist.rank)
        self.wrap()
        # Scalars after the checkpoint's step came from a run killed before its next checkpoint:
        # hidden, as they are written again. Those of the step itself were written before it.
        writer = SummaryWriter(str(self.exp_dir / "tensorboard"), purge_step=self.step + 1) if main else None
        progress = tqdm(total=tc.max_steps, initial=self.step, desc="vocoder", unit="step", dynamic_ncols=True,
                        disable=not main)
        self.generator.train()
        while self.step < tc.max_steps:
            epoch, done_in_epoch = divmod(self.step, self.steps_per_epoch)
            batches = epoch_batches(len(self.train_set), tc.batch_size, tc.seed, epoch)[done_in_epoch:]
            # Its own generator: a DataLoader seeds its workers from the global RNG otherwise, and a
            # resumed run would then draw the source's noise differently.
            loader = DataLoader(self.train_set, num_workers=tc.num_workers, pin_memory=self.device.type == "cuda",
                                batch_sampler=[distributed.shard(b, dist.rank, dist.world_size) for b in batches],
                                generator=torch.Generator().manual_seed(tc.seed + epoch))
            for mel, wav, f0 in loader:
                lr = self.set_learning_rate()
                losses = self.train_step(mel.to(self.device), wav.to(self.device), f0.to(self.device))
                self.step += 1
                progress.update(1)
                if self.step % tc.log_interval == 0 and main:
                    for name, value in losses.items():
                        writer.add_scalar(f"train/{name}", value, self.step)
                    writer.add_scalar("train/learning_rate", lr, self.step)
                    progress.set_postfix(mel_l1=f"{losses['mel_l1']:.3f}", epoch=epoch)
                    log.info("step %d epoch %d lr %.3g %s", self.step, epoch, lr,
                             " ".join(f"{k} {v:.4f}" for k, v in losses.items()))
                if (self.step % tc.valid_interval == 0 or self.step == tc.max_steps) and main:
                    error = self.validate(writer)
                    writer.add_scalar("dev/mel_l1", error, self.step)
                    log.info("step %d: dev mel L1 %.3f", self.step, error)
                if self.step % tc.checkpoint_interval == 0 or self.step == tc.max_steps:
                    state = self.state()
                    if main:
                        checkpoints.save_state(self.step, state)
                    dist.barrier()  # the others wait for rank 0's validation and checkpoint
                if self.step >= tc.max_steps:
                    break
        progress.close()
        if main:
            writer.close()
            with atomic_path(self.exp_dir / "generator.pth") as tmp:
                torch.save(self.generator.state_dict(), tmp)
            log.info("generator after %d steps: %s", self.step, self.exp_dir / "generator.pth")
        dist.barrier()


def mel_figure(generated: torch.Tensor, reference: torch.Tensor):
    """Generated above reference log-mel [n_mels, T], for tensorboard."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for ax, mel, title in zip(axes, (generated, reference), ("generated", "ground truth")):
        ax.imshow(mel.numpy(), origin="lower", aspect="auto", interpolation="none")
        ax.set_title(title)
    fig.tight_layout()
    return fig


def train_vocoder(cfg: VocoderConfig, data_dir: str | Path, exp_dir: str | Path) -> Path:
    """Train (or resume, or finish) the vocoder in `exp_dir`; returns the generator.pth path.
    Under `torchrun` every process calls this; rank 0 alone writes exp_dir."""
    exp_dir = Path(exp_dir)
    dist = distributed.setup(cfg.train.device)
    check_resumable(cfg, exp_dir)
    dist.barrier()  # every process has read the old config before rank 0 writes the new one
    if dist.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, exp_dir / "config.yaml")
    Trainer(cfg, Path(data_dir), exp_dir, dist).run()
    return exp_dir / "generator.pth"

