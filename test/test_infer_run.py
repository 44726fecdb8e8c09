"""Stage 6 inference over a split: outputs, re-run skipping, bad utterances, missing components."""
from __future__ import annotations

import json
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from svslm.bin import infer as infer_bin
from svslm.infer.config import ConditionConfig, InferConfig
from svslm.infer.fixtures import fake_parts
from svslm.infer.pipeline import Synthesizer
from svslm.infer.run import run_inference
from svslm.utils.fileio import write_kaldi_map

UTTS = {"s1#001": 6, "s1#002": 4, "s2#003": 8}  # utt -> frames


def make_recipe(root: Path, lm_utts=tuple(UTTS), flow_tags=("f1c", "f1m", "f2m")) -> dict[str, Path]:
    """data/test, dump (codec dir + GT tokens), exp/lm decodes and placeholder checkpoints."""
    data, dump, lm, flow, voc = (root / p for p in ("data/test", "dump", "exp/lm/t", "exp/flow/t", "exp/vocoder/t"))
    (data / "wav").mkdir(parents=True)
    wavs, score = {}, {"version": 1, "utts": {}}
    for utt, n in UTTS.items():
        path = data / "wav" / f"{utt}.wav"
        sf.write(path, np.zeros(n * 320, np.float32), 16000, subtype="PCM_16")
        wavs[utt] = str(path)
        score["utts"][utt] = {"notes": [], "phones": [{"phn": "a", "start": 0.0, "end": n / 50, "midi": 60, "note": 0}]}
    write_kaldi_map(data / "wav.scp", wavs)
    write_kaldi_map(data / "utt2dur", {u: str(n / 50) for u, n in UTTS.items()})
    (data / "score.json").write_text(json.dumps(score))
    for d, utts in ((dump / "test", UTTS), (lm / "decode/test", lm_utts)):
        d.mkdir(parents=True)
        with kaldiio.WriteHelper(f"ark,scp:{d}/codec_ssl.ark,{d}/codec_ssl.scp", write_function="numpy") as w:
            for u in utts:
                w(u, np.ones((UTTS[u], 9), np.int32))
    for d, files in ((dump / "tokenizers/codec", ["config.yaml"]), (voc, ["config.yaml", "generator.pth"]),
                     *((flow / tag, ["config.yaml", "best.pth"]) for tag in flow_tags)):
        d.mkdir(parents=True, exist_ok=True)
        for f in files:
            (d / f).write_text("model: {}\n")
    return dict(data_dir=data, dump_dir=dump, lm_dir=lm, flow_root=flow, vocoder_dir=voc, out_dir=root / "exp/eval/t")


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
    args = [f"--{k}={v}" for k, v in dirs.items()] + ["--config", str(conf), "--nj", "1"]
    assert infer_bin.main(args + ["--conditions", "gt_mel_voc"]) == 0
    assert (dirs["out_dir"] / "wav/gt_mel_voc").is_dir() and not (dirs["out_dir"] / "wav/lm_cd").exists()
    conf.write_text("conditions:\n  - name: LM + Flow1 + Voc\n    flow_tag: nowhere\n")
    assert infer_bin.main(args) == 1
    conf.write_text("conditions:\n  - name: LM + Flow9\n")
    assert infer_bin.main(args) == 1
