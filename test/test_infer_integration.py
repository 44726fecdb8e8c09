"""Stage 6 with the real codec, flow and vocoder classes (untrained, tiny configs) loaded from disk:
the interfaces of docs/formats.md fit together for every condition."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from svslm.flow.config import FlowConfig
from svslm.flow.model import FlowModel
from svslm.infer.config import load_infer_config
from svslm.infer.pipeline import RecipePaths, Synthesizer
from svslm.infer.run import run_inference
from svslm.testing.infer import UTTS, make_recipe
from svslm.testing.lm import make_init_checkpoint, tiny_lm_config
from svslm.tokenize.codec import MiniCodec
from svslm.tokenize.config import CodecConfig
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
        # Two Euler steps: the flow's own sampling setting is the one stage 6 uses.
        (d / "config.yaml").write_text((CONF / "flow" / f"{tag}.yaml").read_text().replace("n_steps: 10", "n_steps: 2"))
        model = FlowModel(load_config(d / "config.yaml", FlowConfig).model, codec_dim=80)
        torch.save({"model": model.state_dict(), "codec_dim": 80}, d / "best.pth")
    voc = dirs["vocoder_dir"]
    shutil.copy(CONF / "vocoder" / "tiny.yaml", voc / "config.yaml")
    cfg = load_config(voc / "config.yaml", VocoderConfig)
    torch.save(Generator(cfg.generator, cfg.mel).state_dict(), voc / "generator.pth")


@pytest.mark.slow
def test_every_condition_with_the_real_components(tmp_path):
    dirs = make_recipe(tmp_path, flow_tags=FLOWS, scratch_lm=True)
    save_untrained_parts(dirs)
    (dirs["dump_dir"] / "test/utt2prompt").write_text("".join(f"{u} {u}\n" for u in UTTS))  # tiny_flow2_mel is prompted
    config = load_infer_config(CONF / "infer" / "tiny.yaml")
    manifest = run_inference(config, "conf/infer/tiny.yaml", **dirs, nj=2)  # run.sh's --nj 2: worker processes
    assert [c["status"] for c in manifest["conditions"]] == ["done"] * 7  # conf/infer/tiny.yaml's, the LM from scratch too
    for cond in manifest["conditions"]:
        for utt, n in UTTS.items():
            wav, sr = sf.read(dirs["out_dir"] / cond["wav_dir"] / f"{utt}.wav")
            assert sr == 16000 and len(wav) == n * 320, (cond["name"], utt)
            assert np.isfinite(wav).all()


def test_new_score_through_the_real_lm(tmp_path):
    """`synthesize` (what `svslm sing` calls): LM decode, Flow2 with pitch and prompt, vocoder."""
    dirs = make_recipe(tmp_path, flow_tags=FLOWS)
    save_untrained_parts(dirs)
    make_init_checkpoint(dirs["lm_dir"] / "best", tiny_lm_config(), ssl_vocab=16, codebook_size=16)
    paths = RecipePaths(dirs["dump_dir"], dirs["lm_dir"], dirs["flow_root"], dirs["vocoder_dir"])
    config = load_infer_config(CONF / "infer" / "tiny.yaml")
    synth = Synthesizer.from_recipe(paths, config, ["LM + Flow2 + Voc"], need_lm_model=True)
    phones = [{"phn": "SP", "start": 0.0, "end": 0.06, "midi": 0}, {"phn": "a", "start": 0.06, "end": 0.2, "midi": 62}]
    prompt = np.random.default_rng(0).integers(0, 16, size=(12, 9)).astype(np.int32)
    wav = synth.synthesize(phones, prompt, prompt_audio=np.zeros(4000, np.float32) + 0.01)
    assert wav.dtype == np.float32 and len(wav) == 10 * 320 and np.isfinite(wav).all()
