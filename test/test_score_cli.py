"""The two scoring entry points on a tiny reference/synthesis directory pair."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from svslm.bin import score, score_eval
from svslm.testing.evaluate import SR, sung_tone
from svslm.utils.audio import save_wav
from svslm.utils.fileio import write_kaldi_map

FAST = ["--override", "metrics=[mcd_f0, per, singer_sim]", "--override", "singer_sim.trim_silence=false"]


@pytest.fixture()
def corpus(tmp_path):
    """data/test with two references, and an eval dir with one condition (one wav missing, one extra)."""
    refs = {"s1#001": sung_tone(0.6, 200.0), "s1#002": sung_tone(0.6, 260.0, seed=1)}
    wav_scp = {}
    for utt, wav in refs.items():
        save_wav(tmp_path / "ref" / f"{utt}.wav", wav, SR)
        wav_scp[utt] = str(tmp_path / "ref" / f"{utt}.wav")
    write_kaldi_map(tmp_path / "data" / "test" / "wav.scp", wav_scp)
    write_kaldi_map(tmp_path / "data" / "test" / "text", {u: "SP n i h ao SP" for u in refs})
    cond = tmp_path / "exp" / "eval" / "mini" / "wav" / "lm_cd"
    save_wav(cond / "s1#001.wav", refs["s1#001"] * 0.5, SR)
    save_wav(cond / "extra.wav", refs["s1#001"], SR)
    save_wav(tmp_path / "exp" / "eval" / "mini" / "wav" / "reference" / "s1#001.wav", refs["s1#001"], SR)
    return tmp_path


@pytest.mark.slow
def test_score_matches_names_and_writes_json_and_markdown(corpus):
    out = corpus / "out"
    rc = score.main([str(corpus / "ref"), str(corpus / "exp/eval/mini/wav/lm_cd"), "--out_dir", str(out),
                     "--text", str(corpus / "data/test/text"), "--asr_dir", str(corpus / "no_asr"),
                     "--nj", "2", *FAST])
    assert rc == 0
    data = json.loads((out / "scores.json").read_text())
    assert list(data["utts"]) == ["s1#001"]
    assert data["only_in_ref"] == ["s1#002"] and data["only_in_hyp"] == ["extra"]
    assert data["summary"]["MCD"]["n"] == 1 and data["summary"]["MCD"]["ci95"] is None
    assert data["summary"]["MCD"]["mean"] == pytest.approx(10 / np.log(10) * np.sqrt(2) * np.log(2), rel=0.02)
    assert "no_asr does not exist" in data["summary"]["PER"]["n/a"]
    md = (out / "scores.md").read_text()
    assert "| s1#001 |" in md and "References without synthesis" in md and "- extra" in md


@pytest.mark.slow
def test_score_eval_scores_conditions_and_ground_truth_and_resumes(corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    args = ["--config", str(Path(__file__).parents[1] / "conf/score/tiny.yaml"),
            "--data_dir", "data", "--eval_dir", "exp/eval/mini", "--asr_dir", "exp/asr/mini", "--nj", "1", *FAST]
    assert score_eval.main(args) == 0
    scores = corpus / "exp/eval/mini/scores"
    assert sorted(p.name for p in scores.glob("*.json")) == ["ground_truth.json", "lm_cd.json", "summary.json"]
    summary = json.loads((scores / "summary.json").read_text())
    gt = summary["conditions"]["ground_truth"]
    assert gt["name"] == "Ground truth" and gt["utterances"] == 2
    assert gt["summary"]["MCD"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert gt["summary"]["Singer-Sim"]["mean"] == pytest.approx(1.0, abs=1e-5)
    # The empty ctc model_dir is --asr_dir; absent here, so PER is n/a saying where it looked.
    assert "exp/asr/mini" in gt["summary"]["PER"]["n/a"]
    lm_cd = summary["conditions"]["lm_cd"]
    assert lm_cd["utterances"] == 1 and lm_cd["only_in_ref"] == ["s1#002"]
    assert summary["metrics"]["F0_CORR"]["mode"] == "dtw: false"
    assert "| Ground truth |" in (scores / "summary.md").read_text()
    # A re-run with the same wavs and config scores nothing again; a changed wav is re-scored.
    mtimes = {p.name: p.stat().st_mtime_ns for p in scores.glob("*.json")}
    assert score_eval.main(args) == 0
    assert all(mtimes[p.name] == p.stat().st_mtime_ns for p in scores.glob("*.json") if p.name != "summary.json")
    save_wav(corpus / "exp/eval/mini/wav/lm_cd/s1#001.wav", sung_tone(0.6, 200.0) * 0.25, SR)
    assert score_eval.main(args) == 0
    assert (scores / "lm_cd.json").stat().st_mtime_ns != mtimes["lm_cd.json"]
    assert (scores / "ground_truth.json").stat().st_mtime_ns == mtimes["ground_truth.json"]


def test_score_eval_data_dir_is_stage_1s_output_as_for_infer(corpus, monkeypatch, capsys):
    """One meaning of --data_dir for every entry point: data/, the split is --split (infer once
    took data/test where score_eval took data)."""
    monkeypatch.chdir(corpus)
    args = ["--config", str(Path(__file__).parents[1] / "conf/score/tiny.yaml"),
            "--data_dir", "data/test", "--eval_dir", "exp/eval/mini", "--nj", "1", *FAST]
    assert score_eval.main(args) == 1
    err = capsys.readouterr().err
    assert "data/test/test/wav.scp not found" in err and "not a split" in err


@pytest.mark.slow
def test_score_eval_guesses_no_recogniser_directory(corpus, monkeypatch):
    """The recogniser's directory is --asr_dir (or the config's model_dir), never derived from --eval_dir."""
    monkeypatch.chdir(corpus)
    (corpus / "exp/asr/mini").mkdir(parents=True)
    args = ["--config", str(Path(__file__).parents[1] / "conf/score/tiny.yaml"),
            "--data_dir", "data", "--eval_dir", "exp/eval/mini", "--nj", "1", *FAST]
    assert score_eval.main(args) == 0
    summary = json.loads((corpus / "exp/eval/mini/scores/summary.json").read_text())
    assert "no model directory configured" in summary["conditions"]["ground_truth"]["summary"]["PER"]["n/a"]


@pytest.mark.slow
def test_score_eval_killed_pass_resumes_where_it_stopped_and_analyses_each_reference_once(corpus, monkeypatch):
    """Stage 6 killed after the first reference's results: the re-run scores only the rest, and the
    tables equal those of a pass that was never killed. Each reference is analysed (WORLD) once,
    also where the ground truth is scored against itself."""
    from svslm.evaluate import directories, mcd_f0, scorer

    monkeypatch.chdir(corpus)
    args = ["--config", str(Path(__file__).parents[1] / "conf/score/tiny.yaml"),
            "--data_dir", "data", "--eval_dir", "exp/eval/mini", "--asr_dir", "exp/asr/mini", "--nj", "1", *FAST]
    analysed, scored = [], []
    world, score_one, save = mcd_f0.world_features, scorer._score_one, directories.PartialScores.save

    def counted_world(wav, *a, **k):
        analysed.append(len(wav))
        return world(wav, *a, **k)

    def save_then_die(self, group):
        save(self, group)
        raise KeyboardInterrupt

    for module in (scorer, mcd_f0):  # the scorer analyses references, mcd_f0 the syntheses
        monkeypatch.setattr(module, "world_features", counted_world)
    monkeypatch.setattr(scorer, "_score_one", lambda item: scored.append(item.hyp_path) or score_one(item))
    monkeypatch.setattr(directories.PartialScores, "save", save_then_die)
    scorer._WORKER = None  # a fresh scorer: its cache of reference analyses starts empty
    with pytest.raises(KeyboardInterrupt):
        score_eval.main(args)
    scores = corpus / "exp/eval/mini/scores"
    assert not (scores / "lm_cd.json").exists() and len(list((scores / "partial").glob("*.json"))) == 1
    n_first = len(scored)

    monkeypatch.setattr(directories.PartialScores, "save", save)
    assert score_eval.main(args) == 0
    # 3 items: s1#001 against itself and against lm_cd, s1#002 against itself; each scored once.
    assert sorted(scored) == sorted([str(corpus / "ref/s1#001.wav"), str(corpus / "ref/s1#002.wav"),
                                     "exp/eval/mini/wav/lm_cd/s1#001.wav"])
    assert 0 < n_first < 3
    assert not (scores / "partial").exists()
    assert len(analysed) == 3  # the two references and lm_cd's synthesis; the ground truth reuses its reference's
    resumed = json.loads((scores / "summary.json").read_text())

    for p in scores.glob("*.json"):
        p.unlink()
    scorer._WORKER = None
    assert score_eval.main(args) == 0
    assert json.loads((scores / "summary.json").read_text())["conditions"] == resumed["conditions"]
