"""Tests of stage 4 end to end on a generated recipe: data checks, the four variants, sampling,
resuming, the entry point, and the YAML configs."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from svslm.flow.config import FlowConfig, OptimConfig
from svslm.flow.data import (
    FlowDataset,
    epoch_batches,
    load_flow_examples,
    resample_frames,
    tile_to,
)
from svslm.flow.estimator import DiTConfig
from svslm.flow.inference import load_flow
from svslm.flow.model import FlowModel
from svslm.flow.train import lr_factor, train
from svslm.utils.audio import save_wav
from svslm.utils.checkpoint import CheckpointDir
from svslm.utils.config import from_dict, load_config
from svslm.utils.mel import MelConfig, mel_spectrogram

CONF = Path(__file__).resolve().parent.parent / "conf" / "flow"
FPS, SR = 50, 16000


class StandInCodec:
    """The `embed` interface of svslm.tokenize.codec (docs/formats.md): the sum of 8 codebooks'
    code vectors, here fixed random tables."""

    embed_dim = 12
    codebook_size = 16

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.tables = torch.randn(8, self.codebook_size, self.embed_dim, generator=gen)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T, 8] -> [B, T, D]
        return sum(self.tables[i][tokens[..., i]] for i in range(8))


def _write_split(root: Path, split: str, utts: dict[str, tuple[float, int]], decode_extra: dict[str, int]) -> None:
    """utts: name -> (seconds, midi). decode_extra: frames the LM decode is longer by."""
    rng = np.random.default_rng(len(split))
    data, dump, dec = root / "data" / split, root / "dump" / split, root / "exp" / "lm" / "decode" / split
    for d in (data / "wav", dump, dec):
        d.mkdir(parents=True, exist_ok=True)
    wav_scp, scores, num_frames, prompts = [], {}, [], []
    names = sorted(utts)
    with kaldiio.WriteHelper(f"ark,scp:{dump}/codec_ssl.ark,{dump}/codec_ssl.scp", write_function="numpy") as gt, \
            kaldiio.WriteHelper(f"ark,scp:{dec}/codec_ssl.ark,{dec}/codec_ssl.scp", write_function="numpy") as lm:
        for k, utt in enumerate(names):
            seconds, midi = utts[utt]
            n = int(seconds * SR)
            f0 = 440.0 * 2 ** ((midi - 69) / 12)
            wav = 0.3 * np.sin(2 * np.pi * f0 * np.arange(n) / SR) * np.linspace(0.2, 1, n)
            save_wav(data / "wav" / f"{utt}.wav", wav, SR)
            wav_scp.append(f"{utt} {data / 'wav' / f'{utt}.wav'}\n")
            t = n // 320
            half = round(seconds / 2, 2)
            scores[utt] = {"notes": [], "phones": [
                {"phn": "a", "start": 0.0, "end": half, "midi": midi, "note": 0},
                {"phn": "SP", "start": half, "end": seconds, "midi": 0, "note": 1}]}
            tokens = rng.integers(0, StandInCodec.codebook_size, size=(t, 9)).astype(np.int32)
            gt(utt, tokens)
            extra = decode_extra.get(utt, 0)
            lm(utt, np.concatenate([tokens, tokens[-1:].repeat(extra, 0)]) if extra >= 0 else tokens[:extra])
            num_frames.append(f"{utt} {t}\n")
            prompts.append(f"{utt} {names[(k + 1) % len(names)]}\n")
    (data / "wav.scp").write_text("".join(wav_scp))
    (data / "score.json").write_text(json.dumps({"version": 1, "utts": scores}))
    (dump / "utt2num_frames").write_text("".join(num_frames))
    (dump / "utt2prompt").write_text("".join(prompts))


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("recipe")
    _write_split(root, "train", {"s1#a": (1.0, 60), "s1#b": (1.2, 64), "s2#c": (0.9, 67), "s2#d": (1.1, 72)}, {"s1#b": 1})
    _write_split(root, "dev", {"s1#e": (1.0, 62), "s2#f": (0.8, 70)}, {})
    return root


def tiny_config(**model) -> FlowConfig:
    mel = {"n_mels": 20}
    return from_dict(FlowConfig, {
        "model": {"prompt_frames": 30, "mel": mel,
                  "encoder": {"d_model": 16, "n_blocks": 1, "n_heads": 2, "ffn_dim": 32, "conv_kernel": 3, "spk_dim": 8},
                  "estimator": {"channels": [16, 16], "n_blocks": 1, "n_mid_blocks": 1, "n_heads": 2, "head_dim": 8},
                  "sampling": {"n_steps": 2}, **model},
        "data": {"batch_size": 2, "max_frames": 40},
        "optim": {"lr": 1e-3, "decay_start": 2, "decay_end": 4},
        "train": {"epochs": 1, "max_steps": 2, "save_every": 1, "log_every": 1},
    })


def _train(recipe: Path, cfg: FlowConfig, exp: Path) -> Path:
    return train(cfg, recipe / "data", recipe / "dump", recipe / "exp" / "lm" / "decode", exp, StandInCodec())


@pytest.mark.parametrize("use_pitch", [False, True], ids=["flow1", "flow2"])
@pytest.mark.parametrize("output", ["mel", "codec_emb"])
def test_each_variant_trains_and_samples_the_right_shape(recipe, tmp_path, use_pitch, output):
    cfg = tiny_config(output=output, use_pitch=use_pitch, use_prompt=use_pitch)
    best = _train(recipe, cfg, tmp_path)
    assert best.is_file() and (tmp_path / "config.yaml").is_file() and any((tmp_path / "tensorboard").iterdir())
    flow = load_flow(tmp_path)
    assert (flow.output, flow.needs_pitch, flow.needs_prompt, flow.condition_source) == (output, use_pitch, use_pitch, "lm_decode")
    assert flow.mel_config == MelConfig(n_mels=20)
    emb = StandInCodec().embed(torch.randint(0, 16, (2, 7, 8)))
    mask = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])
    pitch = torch.full((2, 7), 64)
    prompt = torch.randn(2, 20, 30) * 10 - 40 if use_pitch else None
    out = flow.sample(emb, pitch, mask, n_steps=2, guidance=0.5, seed=1, prompt_mel=prompt)
    expected = (2, 20, 7) if output == "mel" else (2, 7, StandInCodec.embed_dim)
    assert out.shape == expected and torch.isfinite(out).all()
    if use_pitch:
        with pytest.raises(ValueError, match="pitch"):
            flow.sample(emb, None, mask, prompt_mel=prompt)


def test_sampling_is_seeded_per_utterance_and_guidance_matters(recipe, tmp_path):
    _train(recipe, tiny_config(), tmp_path)
    flow = load_flow(tmp_path)
    emb = StandInCodec().embed(torch.randint(0, 16, (2, 9, 8)))
    mask = torch.tensor([[True] * 9, [True] * 6 + [False] * 3])
    batch = flow.sample(emb, None, mask, seed=3)
    alone = flow.sample(emb[1:, :6], None, mask[1:, :6], seed=3)
    assert torch.allclose(batch[1:, :, :6], alone, atol=1e-4)  # independent of the batch it is in
    assert (batch[1, :, 6:] == 0).all()
    assert torch.equal(batch, flow.sample(emb, None, mask, seed=3))
    assert not torch.allclose(batch, flow.sample(emb, None, mask, seed=4))
    assert not torch.allclose(batch, flow.sample(emb, None, mask, seed=3, guidance=0.0))


@pytest.mark.slow
def test_resumed_training_equals_uninterrupted(recipe, tmp_path):
    cfg = tiny_config(use_pitch=True, use_prompt=True)
    cfg.model.estimator = DiTConfig(kind="dit", n_blocks=1, n_heads=2, head_dim=8)
    cfg.train.max_steps, cfg.train.ema_decay = 3, 0.9  # 2 batches per epoch: crosses an epoch
    _train(recipe, cfg, tmp_path / "straight")
    cfg.train.max_steps = 1
    _train(recipe, cfg, tmp_path / "resumed")
    cfg.train.max_steps = 3
    _train(recipe, cfg, tmp_path / "resumed")
    a = CheckpointDir(tmp_path / "straight" / "checkpoints").load_latest_state()
    b = CheckpointDir(tmp_path / "resumed" / "checkpoints").load_latest_state()
    assert a["step"] == b["step"] == 3
    for key in ("model", "ema"):
        for name, value in a[key].items():
            assert torch.allclose(value.float(), b[key][name].float(), atol=1e-6), (key, name)
    # a finished run is left alone; a changed model is refused
    before = (tmp_path / "resumed" / "best.pth").stat().st_mtime_ns
    _train(recipe, cfg, tmp_path / "resumed")
    assert (tmp_path / "resumed" / "best.pth").stat().st_mtime_ns == before
    cfg.model.estimator.n_blocks = 2
    with pytest.raises(ValueError, match="model config differs"):
        _train(recipe, cfg, tmp_path / "resumed")


def test_bad_utterances_are_each_reported_and_the_good_kept(recipe, tmp_path):
    bad_root = tmp_path / "recipe"
    _write_split(bad_root, "train", {"s1#a": (1.0, 60), "s1#b": (1.2, 64), "s2#c": (0.9, 67)}, {"s1#b": 9})
    scp = bad_root / "exp" / "lm" / "decode" / "train" / "codec_ssl.scp"
    scp.write_text("".join(line for line in scp.read_text().splitlines(True) if not line.startswith("s2#c")))
    cfg = tiny_config(use_pitch=True)
    examples, bad = load_flow_examples("train", cfg.model, cfg.data, bad_root / "data", bad_root / "dump",
                               bad_root / "exp" / "lm" / "decode")
    assert [ex.utt for ex in examples] == ["s1#a"]
    assert len(bad) == 2 and "s1#b" in bad[0] and "differ" in bad[0] and "s2#c" in bad[1] and "missing" in bad[1]
    cfg.model.condition_source = "ground_truth"  # the ground truth has all three
    examples, bad = load_flow_examples("train", cfg.model, cfg.data, bad_root / "data", bad_root / "dump", None)
    assert len(examples) == 3 and not bad


def test_entry_point_loads_the_codec_from_the_dump(recipe, tmp_path, monkeypatch, capsys):
    loaded = []
    fake = types.ModuleType("svslm.tokenize.codec")
    fake.load_codec = lambda path: loaded.append(Path(path)) or StandInCodec()
    monkeypatch.setitem(sys.modules, "svslm.tokenize.codec", fake)
    from svslm.bin.flow_train import main

    config = tmp_path / "flow.yaml"
    config.write_text((CONF / "tiny_flow1_codec.yaml").read_text())
    args = ["--config", str(config), "--data_dir", str(recipe / "data"), "--dump_dir", str(recipe / "dump"),
            "--lm_decode_dir", str(recipe / "exp" / "lm" / "decode"), "--exp_dir", str(tmp_path / "exp"),
            "--override", "train.max_steps=1", "--override", "model.estimator.n_blocks=1"]
    assert main(args) == 0
    assert loaded == [recipe / "dump" / "tokenizers" / "codec"]
    assert load_flow(tmp_path / "exp").output == "codec_emb"
    # missing LM decodes: a clear error and a failing exit status, no traceback
    args[args.index("--lm_decode_dir") + 1] = str(tmp_path / "no_decodes")
    args[args.index("--exp_dir") + 1] = str(tmp_path / "exp2")
    assert main(args) == 1
    assert "no_decodes/train/codec_ssl.scp not found" in capsys.readouterr().err


def test_configs_cover_the_four_paper_variants_with_the_papers_settings():
    variants = set()
    for path in sorted(CONF.glob("*.yaml")):
        cfg = load_config(path, FlowConfig)
        variants.add((path.name.split("_")[0], cfg.model.use_pitch, cfg.model.output))
        if path.name.startswith("tiny"):
            FlowModel(cfg.model, codec_dim=StandInCodec.embed_dim)  # builds
    assert {(p, f, o) for p in ["paper"] for f in (False, True) for o in ("mel", "codec_emb")} <= variants
    paper = load_config(CONF / "paper_flow2_mel.yaml", FlowConfig)
    m = paper.model
    assert (m.encoder.n_blocks, m.encoder.n_heads, m.encoder.ffn_dim) == (3, 4, 1024)
    assert m.estimator.kind == "unet"
    assert (m.estimator.channels, m.estimator.n_blocks, m.estimator.n_mid_blocks, m.estimator.n_heads) == ([256, 256], 4, 8, 8)
    assert (m.cfm.sigma_min, m.cfm.time_schedule, m.cfm.cond_drop_prob) == (1e-6, "cosine", 0.2)
    assert (m.sampling.solver, m.sampling.n_steps, m.sampling.guidance) == ("euler", 10, 0.7)
    assert m.condition_source == "lm_decode" and m.mel == MelConfig()
    assert (paper.optim.lr, paper.optim.final_lr, paper.optim.decay_start, paper.optim.decay_end) == (3e-4, 1e-4, 200000, 500000)
    assert (paper.data.batch_size, paper.train.epochs, paper.train.seed) == (64, 30, 42)


def test_lr_is_constant_then_decays_linearly_between_two_steps():
    cfg = OptimConfig(lr=3e-4, final_lr=1e-4, decay_start=200, decay_end=500)
    lrs = [cfg.lr * lr_factor(s, cfg) for s in (0, 200, 350, 500, 900)]
    assert lrs == pytest.approx([3e-4, 3e-4, 2e-4, 1e-4, 1e-4])


def test_length_helpers_and_batches():
    x = np.arange(10)
    assert resample_frames(x, 10) is x
    assert resample_frames(x, 11).tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9] or len(resample_frames(x, 11)) == 11
    assert resample_frames(x, 9)[0] == 0 and resample_frames(x, 9)[-1] == 9
    assert tile_to(np.array([[1, 2, 3]]), 7).tolist() == [[1, 2, 3, 1, 2, 3, 1]]
    lengths = [5, 50, 7, 48, 6, 49]
    batches = epoch_batches(lengths, 3, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 2 for b in batches)
    assert batches == epoch_batches(lengths, 3, seed=1, epoch=0)


# ---- data parallelism: N processes train what one process trains ----

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_as_rank(rank: int, world_size: int, port: int, recipe: Path, cfg: FlowConfig, exp: Path) -> None:
    """One process of a gloo group, as torchrun would start it (its environment variables).
    Writes the sizes of the batches it fed the model to <exp>.rank<r>.json."""
    import os

    import svslm.flow.train as flow_train
    from svslm.utils import distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    sizes, model_inputs = [], flow_train.model_inputs
    flow_train.model_inputs = lambda batch, *a: sizes.append(len(batch["utts"])) or model_inputs(batch, *a)
    try:
        _train(recipe, cfg, exp)
    finally:
        distributed.teardown()
    Path(f"{exp}.rank{rank}.json").write_text(json.dumps(sizes))


def train_in_processes(recipe: Path, cfg: FlowConfig, exp: Path, world_size: int = 2) -> None:
    torch.multiprocessing.start_processes(_train_as_rank, (world_size, _free_port(), recipe, cfg, exp),
                                          nprocs=world_size, start_method="spawn")


def train_losses(exp: Path) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(exp / "tensorboard"))
    events.Reload()
    return [e.value for e in events.Scalars("train/loss")]


def data_parallel_config() -> FlowConfig:
    # Flow2 with a prompt through the U-Net (GroupNorm over time: padding must match). Batch 3 of
    # 4 utterances: batches of 3 and 1, so the 2 processes get 2 + 1 utterances, then 1 + none.
    cfg = tiny_config(use_pitch=True, use_prompt=True)
    cfg.model.encoder.dropout = cfg.model.estimator.dropout = 0.0  # the one per-process draw
    cfg.data.batch_size = 3
    cfg.train.max_steps, cfg.train.ema_decay, cfg.train.save_every = 4, 0.9, 2
    return cfg


@pytest.mark.slow
def test_two_processes_train_the_same_model_as_one_and_resume_on_one(recipe, tmp_path):
    # Steps 1-2 on 2 processes, then 3-4 on 1 (resumed), against 4 steps on 1 process.
    cfg = data_parallel_config()
    _train(recipe, cfg, tmp_path / "one")
    cfg.train.max_steps = 2
    train_in_processes(recipe, cfg, tmp_path / "two")
    half = CheckpointDir(tmp_path / "two" / "checkpoints").load_latest_state()
    assert half["step"] == 2 and half["world_size"] == len(half["rng"]) == 2  # each process's dropout stream
    # The work was split: rank 1 fed the model one utterance a step (1 of 3, then a weight-0
    # stand-in for its empty share of a batch of 1) and did no statistics or validation.
    assert json.loads((tmp_path / "two.rank1.json").read_text()) == [1, 1]
    cfg.train.max_steps = 4
    _train(recipe, cfg, tmp_path / "two")
    one, two = train_losses(tmp_path / "one"), train_losses(tmp_path / "two")
    assert len(one) == len(two) == 4
    assert len(set(np.round(one, 6))) == 4  # the steps' losses differ: equal trajectories are not a constant
    np.testing.assert_allclose(two, one, rtol=1e-5)  # float32 sums in another order: not bit-equal
    a = torch.load(tmp_path / "one" / "best.pth", weights_only=False)
    b = torch.load(tmp_path / "two" / "best.pth", weights_only=False)
    assert a["step"] == b["step"] == 4
    for name, value in a["model"].items():
        assert torch.allclose(value.float(), b["model"][name].float(), rtol=1e-4, atol=1e-5), name


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains(recipe, tmp_path, precision):
    cfg = tiny_config()
    cfg.train.precision = precision
    _train(recipe, cfg, tmp_path)
    state = CheckpointDir(tmp_path / "checkpoints").load_latest_state()
    assert state["step"] == 2 and all(np.isfinite(train_losses(tmp_path)))
    assert (state["scaler"] is not None) == (precision == "fp16")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_batches_reach_a_non_cpu_device_with_the_codec_fed_on_the_cpu(recipe):
    # "meta" stands in for CUDA here: the mini codec's tables stay on the CPU, so a CUDA run
    # must hand it CPU tokens and move the embedding (the first GPU run would fail otherwise).
    cfg = tiny_config(output="codec_emb", use_pitch=True)
    examples, _ = load_flow_examples("train", cfg.model, cfg.data, recipe / "data", recipe / "dump", recipe / "exp/lm/decode")
    from svslm.flow.data import collate
    from svslm.flow.train import model_inputs

    seen = []

    class CpuOnlyCodec(StandInCodec):
        def embed(self, tokens):
            seen.append(tokens.device.type)
            return super().embed(tokens)

    batch = collate([FlowDataset(examples, cfg.model)[i] for i in range(2)])
    model = FlowModel(cfg.model, StandInCodec.embed_dim)
    inputs = model_inputs(batch, CpuOnlyCodec(), model, torch.device("meta"))
    assert seen == ["cpu", "cpu"]
    assert all(v.device.type == "meta" for v in inputs.values())


def test_cached_mels_give_the_same_items_and_are_computed_once(recipe, monkeypatch):
    from svslm.flow import data as flow_data

    cfg = tiny_config(output="mel", use_pitch=True, use_prompt=True)
    examples, _ = load_flow_examples("train", cfg.model, cfg.data, recipe / "data", recipe / "dump", recipe / "exp/lm/decode")
    plain = [FlowDataset(examples, cfg.model, max_frames=40)[i] for i in range(len(examples))]
    calls = []
    monkeypatch.setattr(flow_data, "mel_spectrogram", lambda *a: calls.append(1) or mel_spectrogram(*a))
    cached = FlowDataset(examples, cfg.model, max_frames=40, cache_mels=True)
    for epoch in range(3):
        cached.set_epoch(epoch)
        items = [cached[i] for i in range(len(examples))]
        if epoch == 0:  # the same crops, mels and prompts as without the cache
            for a, b in zip(plain, items):
                assert np.array_equal(a["target_mel"], b["target_mel"]) and torch.equal(a["prompt_mel"], b["prompt_mel"])
    wavs = {ex.wav for ex in examples} | {ex.prompt_wav for ex in examples}
    assert len(calls) == len(wavs)  # one mel per wav, over three epochs of targets and prompts


@pytest.mark.parametrize("config", sorted(p.name for p in CONF.glob("*.yaml")))
def test_every_parameter_learns_from_the_loss_as_ddp_requires(config):
    # DistributedDataParallel (find_unused_parameters off) fails at the second step of a
    # multi-GPU run when any parameter gets no gradient: check each shipped variant here.
    cfg = load_config(CONF / config, FlowConfig)
    model = FlowModel(cfg.model, StandInCodec.embed_dim)
    b, t = 2, 24
    inputs = {"target": torch.randn(b, model.out_dim, t), "codec_emb": torch.randn(b, t, StandInCodec.embed_dim),
              "mask": torch.ones(b, t, dtype=torch.bool)}
    if cfg.model.use_pitch:
        inputs["midi"] = torch.randint(0, 80, (b, t))
    if cfg.model.use_prompt:
        inputs["prompt_mel"] = torch.randn(b, cfg.model.mel.n_mels, cfg.model.prompt_frames)
    from svslm.flow.train import LossModule

    LossModule(model).train()(inputs, None).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
