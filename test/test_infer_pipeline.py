"""Routing of every condition through stand-in components with the documented interfaces."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from svslm.infer.config import ConditionConfig, InferConfig
from svslm.infer.pipeline import MissingComponentError, RecipePaths, Synthesizer
from svslm.testing.infer import FakeFlow, FakeVocoder, fake_parts
from svslm.utils.mel import MelConfig, MelMismatchError

LENGTHS = (5, 9)


def tokens(n_frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 16, size=(n_frames, 9)).astype(np.int32)
    t[:, 0] = 999  # the SSL column must never reach the codec
    return t


@pytest.fixture()
def synth() -> Synthesizer:
    return Synthesizer(**fake_parts(), config=InferConfig(seed=7), svs_lb_layout="frame")


def render(synth: Synthesizer, condition: str) -> list[np.ndarray]:
    toks = [tokens(n, i) for i, n in enumerate(LENGTHS)]
    midi = [np.arange(n) % 3 + 60 for n in LENGTHS]
    refs = [np.random.default_rng(i).standard_normal(n * 320).astype(np.float32) * 0.1 for i, n in enumerate(LENGTHS)]
    return synth.render(condition, tokens=toks, frame_midi=midi, reference=refs)


@pytest.mark.parametrize("condition, value", [
    ("CD Resynthesis", 0.1), ("LM + CD", 0.1), ("LM + Flow1 + CD", 0.2),
    ("LM + Flow1 + Voc", 0.3), ("LM + Flow2 + Voc", 0.3), ("GT mel + Voc", 0.3),
])
def test_each_condition_routes_to_its_decoder_with_exact_lengths(synth, condition, value):
    wavs = render(synth, condition)
    assert [len(w) for w in wavs] == [n * 320 for n in LENGTHS]
    for w in wavs:
        np.testing.assert_allclose(w, value)  # the signal of the part that should have made it


def test_codec_gets_the_eight_codec_columns_only(synth):
    render(synth, "LM + CD")
    decoded = [c[1] for c in synth.codec.calls if c[0] == "decode"]
    assert [d.shape for d in decoded] == [(n, 8) for n in LENGTHS]
    assert all((d != 999).all() for d in decoded)


def test_flows_get_embedding_mask_and_settings(synth):
    render(synth, "LM + Flow1 + Voc")
    call = synth.flows["LM + Flow1 + Voc"].calls[-1]
    assert tuple(call["codec_emb"].shape) == (2, max(LENGTHS), 4)
    assert call["pitch"] is None  # Flow1 is not given the score's pitch
    assert call["mask"].sum(1).tolist() == list(LENGTHS)
    # Steps and guidance: None = the flow's own model.sampling (their one home); the seed is the config's.
    assert (call["n_steps"], call["guidance"], call["seed"]) == (None, None, 7)
    assert len(synth.vocoder.calls) == 1 and synth.vocoder.calls[0].shape[-1] == max(LENGTHS)  # one batch


def test_flow2_gets_the_frame_midi(synth):
    render(synth, "LM + Flow2 + Voc")
    pitch = synth.flows["LM + Flow2 + Voc"].calls[-1]["pitch"]
    assert tuple(pitch.shape) == (2, max(LENGTHS))
    np.testing.assert_array_equal(pitch[1].numpy(), np.arange(LENGTHS[1]) % 3 + 60)


def test_call_overrides_config_settings(synth):
    synth.config.conditions = [ConditionConfig(name="LM + Flow2 + Voc", seed=8)]
    synth.render("LM + Flow2 + Voc", tokens=[tokens(4)], frame_midi=[np.zeros(4)], guidance=0.0, n_steps=3)
    call = synth.flows["LM + Flow2 + Voc"].calls[-1]
    assert (call["n_steps"], call["guidance"], call["seed"]) == (3, 0.0, 8)


def test_new_scores_need_stage_2s_svs_lb_layout(synth, tmp_path):
    synth.svs_lb_layout = None
    synth.lm = (object(), object())
    phones = [{"phn": "a", "start": 0.0, "end": 0.2, "midi": 62}]
    with pytest.raises(ValueError, match="svs_lb layout"):
        synth.synthesize(phones, prompt=tokens(20))
    # The layout comes from what stage 2 wrote, and splits that disagree are an error.
    paths = RecipePaths(tmp_path / "dump", tmp_path / "lm", tmp_path / "flow", tmp_path / "voc")
    with pytest.raises(MissingComponentError, match="data.json"):
        paths.svs_lb_layout()
    for split, layout in (("train", "fork"), ("test", "fork")):
        (tmp_path / "dump" / split).mkdir(parents=True)
        (tmp_path / "dump" / split / "data.json").write_text(f'{{"svs_lb_layout": "{layout}"}}')
    assert paths.svs_lb_layout() == "fork"
    (tmp_path / "dump/test/data.json").write_text('{"svs_lb_layout": "frame"}')
    with pytest.raises(ValueError, match="disagree"):
        paths.svs_lb_layout()


def test_gt_mel_condition_vocodes_the_reference_mel(synth):
    render(synth, "GT mel + Voc")
    mel = synth.vocoder.calls[-1]
    assert tuple(mel.shape) == (2, 80, max(LENGTHS))
    assert mel[0, :, LENGTHS[0]:].max() < -90  # padding is silence, not 0 dB


def test_mel_mismatch_between_flow_and_vocoder_is_refused():
    parts = fake_parts()
    parts["vocoder"] = FakeVocoder(MelConfig(fmax=7600.0))
    with pytest.raises(MelMismatchError, match="fmax"):
        Synthesizer(**parts)


def test_a_flow_of_the_wrong_kind_is_refused():
    parts = fake_parts()
    parts["flows"]["LM + Flow2 + Voc"] = FakeFlow("mel", needs_pitch=False)
    with pytest.raises(ValueError, match="pitch"):
        Synthesizer(**parts)
    parts = fake_parts()
    parts["flows"]["LM + Flow1 + CD"] = FakeFlow("mel")
    with pytest.raises(ValueError, match="codec_emb"):
        Synthesizer(**parts)
    parts = fake_parts()
    parts["flows"]["LM + Flow1 + Voc"].codec_dim = 512  # trained on another codec's latent
    with pytest.raises(ValueError, match="512-d"):
        Synthesizer(**parts)


def test_bad_tokens_name_the_utterance(synth):
    with pytest.raises(ValueError, match="utt_b"):
        synth.render("LM + CD", tokens=[tokens(3), np.zeros((3, 8), np.int32)], utt_ids=["utt_a", "utt_b"])
    with pytest.raises(ValueError, match="utt_a.*frame MIDI"):
        synth.render("LM + Flow2 + Voc", tokens=[tokens(3)], frame_midi=[np.zeros(4)], utt_ids=["utt_a"])


def test_missing_components_are_all_named(tmp_path):
    (tmp_path / "dump/tokenizers/codec").mkdir(parents=True)
    (tmp_path / "dump/tokenizers/codec/config.yaml").write_text("backend: mini\n")
    paths = RecipePaths(tmp_path / "dump", tmp_path / "exp/lm/x", tmp_path / "exp/flow/x", tmp_path / "exp/vocoder/x")
    config = InferConfig(conditions=[
        ConditionConfig(name="LM + CD"), ConditionConfig(name="LM + Flow2 + Voc", flow_tag="tiny_flow2_mel"),
    ])
    with pytest.raises(MissingComponentError) as err:
        Synthesizer.from_recipe(paths, config)
    msg = str(err.value)
    assert "'LM + Flow2 + Voc' needs flow model" in msg and "tiny_flow2_mel/config.yaml" in msg
    assert "exp/vocoder/x/generator.pth" in msg
    assert "LM + CD" not in msg  # the codec is there: nothing missing for it


def test_synthesize_a_new_score(synth, monkeypatch):
    seen = {}

    def decode(model, vocab, svs_lb, prompts, conf, seed, n_frames):
        seen["svs_lb"], seen["prompt"], seen["n_frames"] = svs_lb, prompts, n_frames
        return [tokens(n_frames[0])]

    fake_lm = types.SimpleNamespace(decode=decode, DecodeConfig=lambda: "default decode config")
    monkeypatch.setitem(sys.modules, "svslm.lm.inference", fake_lm)
    synth.lm = (object(), object())
    phones = [{"phn": "SP", "start": 0.0, "end": 0.1, "midi": 0}, {"phn": "a", "start": 0.1, "end": 0.3, "midi": 62}]
    wav = synth.synthesize(phones, prompt=tokens(20), seed=3)
    assert wav.dtype == np.float32 and len(wav) == 15 * 320  # 0.3 s at 50 fps
    assert seen["svs_lb"][0][:2] == ["svs_SP", "svs_0"] and len(seen["svs_lb"][0]) == 2 * 15
    assert seen["prompt"][0].shape == (20, 9) and seen["n_frames"] == [15]
    pitch = synth.flows["LM + Flow2 + Voc"].calls[-1]["pitch"]
    assert pitch[0, -1].item() == 62
    with pytest.raises(ValueError, match="ground-truth"):
        synth.synthesize(phones, prompt=tokens(20), condition="CD Resynthesis")


def test_prompted_flow_gets_a_prompt_mel():
    parts = fake_parts()
    parts["flows"]["LM + Flow1 + Voc"] = flow = FakeFlow("mel", needs_prompt=True)
    flow.cfg = types.SimpleNamespace(prompt_frames=12)
    synth = Synthesizer(**parts)
    with pytest.raises(ValueError, match="speaker prompt"):
        synth.render("LM + Flow1 + Voc", tokens=[tokens(4)])
    synth.render("LM + Flow1 + Voc", tokens=[tokens(4)], prompt_audio=[np.zeros(3 * 320, np.float32) + 0.01])
    assert tuple(flow.calls[-1]["prompt_mel"].shape) == (1, 80, 12)
