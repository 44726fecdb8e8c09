"""Stage 3: fine-tune the speech LM with DeepSpeed; resumable; best-k selection by validation loss.

Layout of `exp_dir` (docs/formats.md):
    checkpoints/step<N>/   DeepSpeed checkpoint (model, optimizer, scheduler, client state) in
                           svslm.utils.checkpoint's layout: `complete` is written last, so a
                           checkpoint without it is never resumed
    snapshots/step<N>.pth  fp32 weights of the best-k validations (BestSnapshots)
    best/                  config.yaml + model.pth (ESPnet-SpeechLM format): the average (or the
                           best) of the kept snapshots
    tensorboard/, train.log
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from svslm.lm.checkpoint import load_checkpoint, save_checkpoint
from svslm.lm.config import LMRecipeConfig
from svslm.lm.data import (
    DataError,
    SVSDataset,
    epoch_order,
    make_batches,
    read_data_json,
    steps_per_epoch,
)
from svslm.lm.model import SpeechLM
from svslm.lm.sequence import Batch, collate
from svslm.utils.checkpoint import (
    BestSnapshots,
    CheckpointDir,
    rng_state,
    set_rng_state,
)
from svslm.utils.config import save_config
from svslm.utils.fileio import atomic_write_json

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf and nan_policy is `stop`."""


@dataclass
class TrainState:
    """Everything besides DeepSpeed's own state that a resumed run needs (client_state)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch
    batch_pos: int = 0  # micro-batches of the current epoch already consumed
    best: list[tuple[float, int]] = field(default_factory=list)  # (valid loss, step) of kept snapshots
    history: list[dict] = field(default_factory=list)  # validation results, in order
    skipped_batches: int = 0  # batches with a non-finite loss skipped (nan_policy skip)


def resolve_deepspeed_config(conf: LMRecipeConfig, config_path: Path, total_steps: int, world_size: int) -> dict:
    """Read the DeepSpeed JSON named by the YAML and fill its "auto" fields from the YAML."""
    path = (config_path.parent / conf.train.deepspeed_config).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{config_path}: train.deepspeed_config {conf.train.deepspeed_config} -> {path} not found")
    ds = json.loads(path.read_text())
    # Batches are bucketed by frames, so one "micro batch" is one bucket, whatever its size.
    ds["train_micro_batch_size_per_gpu"] = 1
    if ds.get("gradient_accumulation_steps", "auto") == "auto":
        ds["gradient_accumulation_steps"] = conf.train.grad_accum
    elif ds["gradient_accumulation_steps"] != conf.train.grad_accum:
        raise ValueError(f"{path}: gradient_accumulation_steps {ds['gradient_accumulation_steps']} "
                         f"differs from train.grad_accum {conf.train.grad_accum} in {config_path}")
    ds["train_batch_size"] = ds["gradient_accumulation_steps"] * world_size
    params = ds.get("optimizer", {}).get("params", {})
    if params.get("lr", "auto") == "auto":
        if conf.train.lr is None:
            raise ValueError(f"{path}: optimizer lr is \"auto\" and {config_path} sets no train.lr")
        params["lr"] = conf.train.lr
    elif conf.train.lr is not None and params["lr"] != conf.train.lr:
        raise ValueError(f"{path}: optimizer lr {params['lr']} differs from train.lr {conf.train.lr} in {config_path}; "
                         "set it in one place (train.lr, with \"lr\": \"auto\" in the JSON)")
    sched = ds.get("scheduler", {}).get("params", {})
    if sched.get("total_num_steps") == "auto":
        sched["total_num_steps"] = total_steps
    if "warmup_num_steps" in sched:  # DeepSpeed refuses a warm-up longer than the schedule
        sched["warmup_num_steps"] = max(1, min(sched["warmup_num_steps"], total_steps))
    return ds


def check_geometry(conf: LMRecipeConfig, model: SpeechLM, init_dir: Path, config_path: Path) -> None:
    """The YAML's `model` geometry (if any) must be the checkpoint's: stage 3 uses the checkpoint's."""
    if conf.model is None:
        return
    have = model.conf
    diff = [f"{f.name}: {config_path} says {getattr(conf.model, f.name)}, checkpoint has {getattr(have, f.name)}"
            for f in dataclasses.fields(conf.model) if getattr(conf.model, f.name) != getattr(have, f.name)]
    if diff:
        raise ValueError(f"{init_dir}: the checkpoint's geometry is not the YAML's `model` (stage 3 trains the "
                         f"checkpoint's; remove `model:` or fix it):\n  " + "\n  ".join(diff))


class Trainer:
    def __init__(self, conf: LMRecipeConfig, config_path: Path, init_dir: Path,
                 train_json: Path, valid_json: Path, exp_dir: Path):
        import deepspeed  # heavy import, only when training

        self.conf = conf
        self.tc = conf.train
        self.exp_dir = exp_dir
        self.checkpoints = CheckpointDir(exp_dir / "checkpoints", self.tc.keep_checkpoints)
        self.snapshots = BestSnapshots(exp_dir / "snapshots", self.tc.keep_best)
        random.seed(self.tc.seed)
        np.random.seed(self.tc.seed)
        torch.manual_seed(self.tc.seed)

        self.model: SpeechLM = load_checkpoint(init_dir, loss=conf.loss, attn_implementation=self.tc.attn_implementation)
        check_geometry(conf, self.model, init_dir, config_path)
        self.model.sequence = conf.sequence  # the fine-tuning config decides, as in ESPnet
        if self.tc.activation_checkpointing:
            self.model.corelm.decoders.model.activation_checkpointing_enable()
        vocab = self.model.vocab
        self.train_set = SVSDataset(read_data_json(train_json), vocab, conf.sequence, self.tc.seed)
        self.valid_set = SVSDataset(read_data_json(valid_json), vocab, conf.sequence, self.tc.seed)
        for ds in (self.train_set, self.valid_set):
            ds.check()  # every bad utterance reported before any compute is spent
        self.train_batches = make_batches(self.train_set.lengths, self.tc.batch_bins, self.tc.max_batch_size)
        self.valid_batches = make_batches(self.valid_set.lengths, self.tc.batch_bins, self.tc.max_batch_size)
        if len(self.train_batches) < self.tc.grad_accum:
            raise DataError(f"{train_json}: {len(self.train_batches)} batches per epoch < grad_accum "
                            f"{self.tc.grad_accum}; lower grad_accum or batch_bins")
        self.steps_per_epoch = steps_per_epoch(len(self.train_batches), self.tc.grad_accum)
        self.total_steps = self.steps_per_epoch * self.tc.max_epochs
        if self.tc.max_steps > 0:
            self.total_steps = min(self.total_steps, self.tc.max_steps)
        self.valid_interval = self.tc.valid_interval or self.steps_per_epoch

        if not torch.distributed.is_initialized():
            deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
        self.rank = torch.distributed.get_rank()
        ds_config = resolve_deepspeed_config(conf, config_path, self.total_steps, torch.distributed.get_world_size())
        self.engine, _, _, _ = deepspeed.initialize(
            model=self.model,
            model_parameters=[p for p in self.model.parameters() if p.requires_grad],
            config=ds_config,
        )
        self.state = TrainState()
        self.writer = None
        if self.rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(exp_dir / "tensorboard"))
            save_config(conf, exp_dir / "config.yaml")
            atomic_write_json(exp_dir / "deepspeed_config.json", ds_config)
        log.info("train: %d utts in %d batches, %d optimizer steps/epoch, %d steps in total; valid: %d utts",
                 len(self.train_set.split.utt_ids), len(self.train_batches), self.steps_per_epoch,
                 self.total_steps, len(self.valid_set.split.utt_ids))
        log.info("model: %.2fM parameters; DeepSpeed: %s", sum(p.numel() for p in self.model.parameters()) / 1e6,
                 {k: ds_config[k] for k in ("fp16", "bf16", "zero_optimization") if k in ds_config})

    # ---- resuming ----
    def resume(self) -> bool:
        """Load the latest complete checkpoint, if any; incomplete ones are left unused."""
        d = self.checkpoints.latest()
        if d is None:
            return False
        _, client = self.engine.load_checkpoint(str(self.checkpoints.root), tag=d.name)
        if client is None:
            raise RuntimeError(f"{d}: DeepSpeed could not load this checkpoint")
        self.state = TrainState(**client["train_state"])
        self.state.best = [tuple(b) for b in self.state.best]
        self.snapshots.ranking = list(self.state.best)
        set_rng_state(client["rng"])
        log.info("resumed from %s: step %d, epoch %d, batch %d", d, self.state.step, self.state.epoch, self.state.batch_pos)
        return True

    def save(self) -> None:
        """DeepSpeed writes the engine's state (every process its part) into the directory
        the checkpoint manager names; the manager marks it complete and rotates."""
        step = self.state.step
        if self.rank == 0:
            self.checkpoints.begin(step)
        torch.distributed.barrier()  # the directory is empty before anyone writes into it
        client = {"train_state": self.state.__dict__, "rng": rng_state()}
        self.engine.save_checkpoint(str(self.checkpoints.root), tag=self.checkpoints.path(step).name,
                                    client_state=client, save_latest=False)
        torch.distributed.barrier()  # every process's files are written
        if self.rank == 0:
            self.checkpoints.finish(step)
        torch.distributed.barrier()

    # ---- one batch ----
    def _to_device(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        dev = self.engine.device
        return (batch.inputs.to(dev), batch.attention_mask.to(dev), batch.targets.to(dev), batch.loss_mask.to(dev))

    def _batch(self, dataset: SVSDataset, utts: list[str]) -> Batch:
        return collate([dataset.example(u) for u in utts], dataset.vocab.pad)

    def validate(self) -> dict[str, float]:
        self.engine.eval()
        sums: dict[str, float] = {}
        total = 0
        with torch.no_grad():
            for utts in self.valid_batches:
                batch = self._batch(self.valid_set, utts)
                _, stats = self.engine(*self._to_device(batch))
                n = batch.n_target_frames
                total += n
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * n
        self.engine.train()
        return {k: v / total for k, v in sums.items()}

    def _zero_loss(self) -> torch.Tensor:
        """A zero loss touching every parameter: a skipped batch still completes its
        accumulation slot, so DeepSpeed's step counting and the data position stay in step."""
        return sum(p.reshape(-1)[0] for p in self.engine.module.parameters() if p.requires_grad) * 0.0

    # ---- best-k ----
    def keep_snapshot(self, valid_loss: float) -> None:
        """Keep the weights of this validation if it is among the best k."""
        self.snapshots.offer(valid_loss, self.state.step, self.engine.module.state_dict, write=self.rank == 0)
        self.state.best = list(self.snapshots.ranking)

    def write_best(self) -> None:
        if self.rank != 0:
            return
        if not self.state.best:
            raise RuntimeError("no validation was run, so there is no best model")
        chosen = self.state.best if self.tc.best_mode == "average" else self.state.best[:1]
        avg = self.snapshots.average(len(chosen))
        extra = {"svslm_best": {"mode": self.tc.best_mode, "steps": [s for _, s in chosen],
                                "valid_loss": [loss for loss, _ in chosen]}}
        save_checkpoint(self.model, self.exp_dir / "best", state=avg, extra=extra)
        log.info("best/: %s of steps %s (valid loss %s)", self.tc.best_mode, [s for _, s in chosen],
                 [round(loss, 4) for loss, _ in chosen])

    # ---- the loop ----
    def run(self) -> None:
        self.resume()
        st, tc = self.state, self.tc
        running: dict[str, float] = {}
        n_running = 0
        t_last, frames_since = time.time(), 0
        while st.step < self.total_steps and not self.out_of_patience():
            order = epoch_order(len(self.train_batches), tc.seed, st.epoch)[: self.steps_per_epoch * tc.grad_accum]
            self.train_set.epoch = st.epoch
            bar = tqdm(total=len(order), initial=st.batch_pos, desc=f"epoch {st.epoch + 1}", disable=self.rank != 0)
            while st.batch_pos < len(order) and st.step < self.total_steps:
                utts = self.train_batches[order[st.batch_pos]]
                batch = self._batch(self.train_set, utts)
                loss, stats = self.engine(*self._to_device(batch))
                if not torch.isfinite(loss):
                    where = f"step {st.step}, epoch {st.epoch + 1}, utterances {batch.utt_ids}"
                    if tc.nan_policy == "stop":
                        raise NonFiniteLossError(
                            f"loss is {loss.item()} at {where}; check these utterances, lower the learning "
                            f"rate, or set train.nan_policy: skip")
                    log.warning("skipping a batch with loss %s at %s", loss.item(), where)
                    st.skipped_batches += 1
                    loss, stats = self._zero_loss(), {}
                self.engine.backward(loss)
                self.engine.step()
                st.batch_pos += 1
                bar.update(1)
                frames_since += batch.n_target_frames
                for k, v in stats.items():
                    running[k] = running.get(k, 0.0) + float(v)
                n_running += 1 if stats else 0
                if st.batch_pos % tc.grad_accum:
                    continue
                st.step += 1
                if st.step % tc.log_interval == 0 and n_running:
                    now = time.time()
                    means = {k: v / n_running for k, v in running.items()}
                    lr = self.engine.get_lr()[0]
                    fps = frames_since / max(now - t_last, 1e-9)
                    log.info("step %d: loss %.4f, acc ssl %.3f codec0 %.3f, lr %.2e, %.0f target frames/s",
                             st.step, means["loss"], means.get("acc_stream0", 0), means.get("acc_stream1", 0), lr, fps)
                    bar.set_postfix(loss=f"{means['loss']:.3f}")
                    if self.writer:
                        for k, v in means.items():
                            self.writer.add_scalar(f"train/{k}", v, st.step)
                        self.writer.add_scalar("train/lr", lr, st.step)
                        self.writer.add_scalar("train/target_frames_per_s", fps, st.step)
                    running, n_running, t_last, frames_since = {}, 0, now, 0
                if st.step % self.valid_interval == 0 or st.step == self.total_steps:
                    self._validate_and_save()
                    if self.out_of_patience():
                        log.info("stopping early at step %d: no better validation loss for %d validations "
                                 "(train.patience)", st.step, tc.patience)
                        break
            bar.close()
            if st.batch_pos >= len(order):
                st.epoch += 1
                st.batch_pos = 0
        self.write_best()
        if self.writer:
            self.writer.close()

    def out_of_patience(self) -> bool:
        """`train.patience` validations in a row without a new best validation loss."""
        losses = [r["loss"] for r in self.state.history]
        if not self.tc.patience or not losses:
            return False
        best = losses.index(min(losses))
        return len(losses) - 1 - best >= self.tc.patience

    def _validate_and_save(self) -> None:
        st = self.state
        result = self.validate()
        result["step"] = st.step
        st.history.append(result)
        accs = " ".join(f"{result[f'acc_stream{n}']:.3f}" for n in range(self.model.nq))
        log.info("validation at step %d (epoch %d): loss %.4f, per-stream acc [%s]", st.step, st.epoch + 1, result["loss"], accs)
        if self.writer:
            for k, v in result.items():
                if k != "step":
                    self.writer.add_scalar(f"valid/{k}", v, st.step)
        if not math.isfinite(result["loss"]):
            raise NonFiniteLossError(f"validation loss is {result['loss']} at step {st.step}")
        self.keep_snapshot(result["loss"])
        self.save()


def train(config_path: str | Path, init_dir: str | Path, train_json: str | Path, valid_json: str | Path,
          exp_dir: str | Path, overrides: list[str] | None = None) -> Path:
    """Fine-tune and write `exp_dir/best`; re-running after a kill resumes; after completion it
    only rewrites best/."""
    from svslm.utils.config import load_config

    config_path = Path(config_path)
    conf = load_config(config_path, LMRecipeConfig, overrides)
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(conf, config_path, Path(init_dir), Path(train_json), Path(valid_json), exp_dir)
    trainer.run()
    return exp_dir / "best"
