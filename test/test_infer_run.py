"""Stage 6 inference over a split: outputs, re-run skipping, bad utterances, missing components."""
from __future__ import annotations

import json
import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from svslm.bin import infer as infer_bin
from svslm.infer.config import ConditionConfig, InferConfig
from svslm.infer.pipeline import Synthesizer
from svslm.infer.run import run_inference
from svslm.testing.infer import UTTS, fake_parts, make_recipe

CONF_INFER = Path(__file__).resolve().parents[1] / "conf/infer/tiny.yaml"

CONFIG = InferConfig(conditions=[
    ConditionConfig(name="CD Resynthesis"), ConditionConfig(name="LM + CD"),
    ConditionConfig(name="LM + Flow1 + CD", flow_tag="f1c"), ConditionConfig(name="LM + Flow1 + Voc", flow_tag="f1m"),
    ConditionConfig(name="LM + Flow2 + Voc", flow_tag="f2m"), ConditionConfig(name="GT mel + Voc"),
], batch_size=2)


@pytest.fixture()
def fake_loading(monkeypatch):
    """from_recipe returns stand-ins (counting how often it renders) instead of loading checkpoints."""
    synth = Synthesizer(**fake_parts(), config=CONFIG)
    calls = []
    real_render = synth.render

    def counting_render(condition, **kw):
        calls.append((condition, tuple(kw["utt_ids"])))
        return real_render(condition, **kw)

    synth.render = counting_render
    monkeypatch.setattr(Synthesizer, "from_recipe", classmethod(lambda cls, *a, **k: synth))
    return calls


def test_writes_every_condition_then_skips_on_rerun(tmp_path, fake_loading):
    dirs = make_recipe(tmp_path)
    manifest = run_inference(CONFIG, "conf.yaml", **dirs)
    out = dirs["out_dir"]
    for slug in ("cd_resynthesis", "lm_cd", "lm_flow1_cd", "lm_flow1_voc", "lm_flow2_voc", "gt_mel_voc", "reference"):
        for utt, n in UTTS.items():
            wav, sr = sf.read(out / "wav" / slug / f"{utt}.wav")
            assert sr == 16000 and len(wav) == n * 320, (slug, utt)
    assert {c["status"] for c in manifest["conditions"]} == {"done"}
    assert json.loads((out / "manifest.json").read_text())["utterances"] == sorted(UTTS)
    flow2 = next(c for c in manifest["conditions"] if c["slug"] == "lm_flow2_voc")
    assert flow2["components"]["flow_checkpoint"]["path"].endswith("f2m/best.pth") and flow2["n_steps"] == 10
    assert flow2["timing"]["n_rendered"] == 3 and flow2["timing"]["audio_seconds"] == pytest.approx(18 / 50)
    # Batches of 2, shortest first.
    assert ("LM + CD", ("s1#002", "s1#001")) in fake_loading and ("LM + CD", ("s2#003",)) in fake_loading

    fake_loading.clear()
    (out / "wav/lm_cd/s1#001.wav").unlink()
    manifest = run_inference(CONFIG, "conf.yaml", **dirs)
    assert fake_loading == [("LM + CD", ("s1#001",))]  # only the missing wav is redone
    lm_cd = next(c for c in manifest["conditions"] if c["slug"] == "lm_cd")
    assert lm_cd["timing"]["n_rendered"] == 4  # this run's one added to the first run's three

    # A retrained vocoder makes every wav it rendered stale, and only those.
    fake_loading.clear()
    generator = Path(flow2["components"]["vocoder_checkpoint"]["path"])
    newer = max(p.stat().st_mtime for p in (out / "wav").rglob("*.wav")) + 10
    os.utime(generator, (newer, newer))
    run_inference(CONFIG, "conf.yaml", **dirs)
    assert sorted({condition for condition, _ in fake_loading}) == ["GT mel + Voc", "LM + Flow1 + Voc", "LM + Flow2 + Voc"]
    assert sum(len(utts) for _, utts in fake_loading) == 3 * len(UTTS)


def test_bad_utterances_are_all_reported_and_the_good_ones_written(tmp_path, fake_loading):
    dirs = make_recipe(tmp_path, lm_utts=("s1#001",))
    config = InferConfig(conditions=[ConditionConfig(name="LM + CD"), ConditionConfig(name="CD Resynthesis")])
    with pytest.raises(RuntimeError) as err:
        run_inference(config, "conf.yaml", **dirs)
    assert "s1#002: no LM decode" in str(err.value) and "s2#003: no LM decode" in str(err.value)
    assert (dirs["out_dir"] / "wav/lm_cd/s1#001.wav").is_file()
    assert len(list((dirs["out_dir"] / "wav/cd_resynthesis").glob("*.wav"))) == 3
    manifest = json.loads((dirs["out_dir"] / "manifest.json").read_text())
    assert [c["status"] for c in manifest["conditions"]] == ["incomplete", "done"]


def test_missing_flow_fails_unless_optional(tmp_path, fake_loading):
    dirs = make_recipe(tmp_path, flow_tags=())
    required = InferConfig(conditions=[ConditionConfig(name="LM + Flow2 + Voc", flow_tag="f2m"), ConditionConfig(name="LM + CD")])
    with pytest.raises(RuntimeError, match=r"'LM \+ Flow2 \+ Voc': missing flow model .*f2m/config.yaml"):
        run_inference(required, "conf.yaml", **dirs)
    assert len(list((dirs["out_dir"] / "wav/lm_cd").glob("*.wav"))) == 3  # the others still rendered

    optional = InferConfig(conditions=[ConditionConfig(name="LM + Flow2 + Voc", flow_tag="f2m", optional=True)])
    manifest = run_inference(optional, "conf.yaml", **dirs)
    assert manifest["conditions"][0]["status"] == "skipped" and "f2m" in manifest["conditions"][0]["reason"]


def test_cli_selects_conditions_and_reports_failure_as_exit_code(tmp_path, fake_loading):
    dirs = make_recipe(tmp_path)
    conf = tmp_path / "infer.yaml"
    conf.write_text("conditions:\n  - name: LM + CD\n  - name: GT mel + Voc\nbatch_size: 3\n")
    # --data_dir is stage 1's output (data/), the split is --split, as for every entry point.
    dirs["data_dir"], split = dirs["data_dir"].parent, dirs["data_dir"].name
    args = [f"--{k}={v}" for k, v in dirs.items()] + ["--split", split, "--config", str(conf), "--nj", "1"]
    assert infer_bin.main(args + ["--conditions", "gt_mel_voc"]) == 0
    assert (dirs["out_dir"] / "wav/gt_mel_voc").is_dir() and not (dirs["out_dir"] / "wav/lm_cd").exists()
    assert infer_bin.main(args + ["--conditions", "LM + CD"]) == 0
    manifest = json.loads((dirs["out_dir"] / "manifest.json").read_text())
    assert [c["name"] for c in manifest["conditions"]] == ["LM + CD", "GT mel + Voc"]  # the earlier run's kept
    conf.write_text("conditions:\n  - name: LM + Flow1 + Voc\n    flow_tag: nowhere\n")
    assert infer_bin.main(args) == 1
    conf.write_text("conditions:\n  - name: LM + Flow9\n")
    assert infer_bin.main(args) == 1


def test_flow_sampling_has_one_home_the_flow_config(tmp_path, fake_loading):
    """An infer YAML that sets n_steps/guidance (once silently winning over the flow YAML's
    `sampling`, e.g. guidance 0.7 for a tiny flow whose YAML says 0.0) is an error naming the home."""
    from svslm.infer.config import load_infer_config
    from svslm.utils.config import ConfigError

    bad = tmp_path / "infer.yaml"
    bad.write_text("conditions:\n  - name: LM + Flow1 + Voc\n    flow_tag: f1m\n    guidance: 0.7\n")
    with pytest.raises(ConfigError, match=r"conditions\[0\]: 'guidance' is not an inference setting.*model\.sampling"):
        load_infer_config(bad)
    with pytest.raises(ConfigError, match="n_steps.*model.sampling.n_steps"):
        load_infer_config(CONF_INFER, ["n_steps=2"])
    bad.write_text("svs_lb_layout: fork\n")
    with pytest.raises(ConfigError, match="svs_lb.layout.*data.json"):
        load_infer_config(bad)
    # The manifest records each flow's own settings (the fixture's flows: 10 steps, guidance 0.7).
    dirs = make_recipe(tmp_path / "r")
    (dirs["flow_root"] / "f2m" / "config.yaml").write_text("model:\n  sampling: {n_steps: 4, guidance: 0.0}\n")
    manifest = run_inference(CONFIG, "conf.yaml", **dirs)
    flows = {c["flow_tag"]: (c["n_steps"], c["guidance"]) for c in manifest["conditions"] if c.get("flow_tag")}
    assert flows == {"f1c": (10, 0.7), "f1m": (10, 0.7), "f2m": (4, 0.0)}


def test_lm_from_scratch_renders_the_scratch_runs_decodes(tmp_path, monkeypatch):
    """'LM from scratch + CD' takes its tokens from --lm_scratch_dir's decodes, not the main LM's;
    without that run it fails naming the option, as any missing input does."""
    dirs = make_recipe(tmp_path)
    scratch = tmp_path / "exp/lm/t_scratch"
    (scratch / "decode/test").mkdir(parents=True)
    with kaldiio.WriteHelper(f"ark,scp:{scratch}/decode/test/codec_ssl.ark,{scratch}/decode/test/codec_ssl.scp",
                             write_function="numpy") as w:
        for u, n in UTTS.items():
            w(u, np.full((n, 9), 2, np.int32))  # the main LM's decodes are all ones
    synth = Synthesizer(**fake_parts(), config=CONFIG)
    seen = []
    real_render = synth.render

    def recording_render(condition, **kw):
        seen.append((condition, {int(t.max()) for t in kw["tokens"]}))
        return real_render(condition, **kw)

    synth.render = recording_render
    monkeypatch.setattr(Synthesizer, "from_recipe", classmethod(lambda cls, *a, **k: synth))
    config = InferConfig(conditions=[ConditionConfig(name="LM + CD"), ConditionConfig(name="LM from scratch + CD")])
    with pytest.raises(RuntimeError, match="LM from scratch.*--lm_scratch_dir"):
        run_inference(config, "conf.yaml", **dirs)
    assert dict(seen) == {"LM + CD": {1}}  # the other condition still rendered
    seen.clear()
    manifest = run_inference(config, "conf.yaml", **dirs, lm_scratch_dir=scratch)
    assert dict(seen) == {"LM from scratch + CD": {2}}
    rec = next(c for c in manifest["conditions"] if c["slug"] == "lm_scratch_cd")
    assert rec["status"] == "done" and rec["components"]["tokens"]["path"].startswith(str(scratch))
    assert len(list((dirs["out_dir"] / "wav/lm_scratch_cd").glob("*.wav"))) == len(UTTS)
