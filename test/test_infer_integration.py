"""Stage 6 with the real codec, flow and vocoder classes (untrained, tiny configs) loaded from disk:
the interfaces of docs/formats.md fit together for every condition."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from svslm.flow.model import FlowModel
from svslm.flow.train import FlowTrainConfig
from svslm.infer.config import InferConfig
from svslm.infer.fixtures import UTTS, make_recipe
from svslm.infer.run import run_inference
from svslm.tokenize.codec import CodecConfig, MiniCodec
from svslm.utils.config import load_config
from svslm.utils.mel import MelConfig
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.models import Generator

CONF = Path(__file__).resolve().parents[1] / "conf"
FLOWS = ("tiny_flow1_codec", "tiny_flow1_mel", "tiny_flow2_mel")


def save_untrained_parts(dirs: dict[str, Path]) -> None:
    """Overwrite the placeholder checkpoints of make_recipe with real, randomly initialised ones."""
    torch.manual_seed(0)
    codebooks = np.random.default_rng(0).normal(-40, 10, size=(8, 16, 80)).astype(np.float32)
    codec_dir = dirs["dump_dir"] / "tokenizers/codec"
    shutil.rmtree(codec_dir)
    MiniCodec(codebooks, MelConfig(), CodecConfig(codebook_size=16, griffin_lim_iters=2)).save(codec_dir)
    for tag in FLOWS:
        d = dirs["flow_root"] / tag
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(CONF / "flow" / f"{tag}.yaml", d / "config.yaml")
        model = FlowModel(load_config(d / "config.yaml", FlowTrainConfig).model, codec_dim=80)
        torch.save({"model": model.state_dict(), "codec_dim": 80}, d / "best.pth")
    voc = dirs["vocoder_dir"]
    shutil.copy(CONF / "vocoder" / "tiny.yaml", voc / "config.yaml")
    cfg = load_config(voc / "config.yaml", VocoderConfig)
    torch.save(Generator(cfg.generator, cfg.mel).state_dict(), voc / "generator.pth")


def test_every_condition_with_the_real_components(tmp_path):
    dirs = make_recipe(tmp_path, flow_tags=FLOWS)
    save_untrained_parts(dirs)
    (dirs["dump_dir"] / "test/utt2prompt").write_text("".join(f"{u} {u}\n" for u in UTTS))  # tiny_flow2_mel is prompted
    config = load_config(CONF / "infer" / "tiny.yaml", InferConfig, ["n_steps=2"])
    manifest = run_inference(config, "conf/infer/tiny.yaml", **dirs, nj=2)  # run.sh's --nj 2: worker processes
    assert [c["status"] for c in manifest["conditions"]] == ["done"] * 6
    for cond in manifest["conditions"]:
        for utt, n in UTTS.items():
            wav, sr = sf.read(dirs["out_dir"] / cond["wav_dir"] / f"{utt}.wav")
            assert sr == 16000 and len(wav) == n * 320, (cond["name"], utt)
            assert np.isfinite(wav).all()
