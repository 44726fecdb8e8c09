"""The scorer: confidence intervals, singer similarity, DNSMOS, the n/a path, JSON round trip."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from svslm.evaluate.config import MetricsConfig
from svslm.evaluate.mos import (
    SheetConfig,
    SheetSsqa,
    SingMos,
    SingMosConfig,
    dnsmos,
)
from svslm.evaluate.na import MetricUnavailable, is_na
from svslm.evaluate.scorer import (
    ScoreItem,
    ScoreReport,
    Summary,
    markdown_table,
    mean_ci95,
    score_items,
    score_reports,
)
from svslm.evaluate.singer_sim import ResemblyzerEmbedder, cosine, singer_similarity
from svslm.testing.evaluate import SR, sung_tone
from svslm.utils.audio import load_wav, save_wav
from svslm.utils.config import from_dict


def test_mean_ci95_uses_student_t():
    mean, half = mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302652729911275 * 1.0 / np.sqrt(3))  # t(0.975, 2) * s / sqrt(n)
    values = np.random.default_rng(0).normal(5, 2, 40)
    lo, hi = scipy.stats.t.interval(0.95, 39, loc=values.mean(), scale=scipy.stats.sem(values))
    assert mean_ci95(list(values))[1] == pytest.approx((hi - lo) / 2)
    assert mean_ci95([4.0]) == (4.0, None)  # one value: no interval


def test_cosine_and_singer_similarity_sanity():
    assert cosine(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(0.0)
    embedder = ResemblyzerEmbedder(trim_silence=False)
    a = sung_tone(1.5, 220.0)
    noise = np.random.default_rng(1).standard_normal(a.size).astype(np.float32) * 0.1
    assert singer_similarity(embedder, a, a) == pytest.approx(1.0, abs=1e-5)
    assert singer_similarity(embedder, noise, a) < singer_similarity(embedder, a * 0.5, a)
    # Silence trimmed away by the VAD leaves nothing to embed: n/a, not a number.
    trimmed = singer_similarity(ResemblyzerEmbedder(trim_silence=True), np.zeros(SR, np.float32), a)
    assert isinstance(trimmed, MetricUnavailable) and "no voice" in trimmed.reason


@pytest.mark.slow
def test_dnsmos_scores_in_range_and_silence_is_na():
    out = dnsmos(sung_tone(1.0))
    assert set(out) == {"DNSMOS", "DNSMOS_SIG", "DNSMOS_BAK", "DNSMOS_P808"}
    assert all(1.0 <= v <= 5.0 for v in out.values())
    assert isinstance(dnsmos(np.zeros(SR, np.float32)), MetricUnavailable)


def test_published_mos_predictors_without_local_files_are_na(tmp_path):
    with pytest.raises(MetricUnavailable, match="no local repo_dir configured"):
        SingMos(SingMosConfig())
    with pytest.raises(MetricUnavailable, match="does not exist"):
        SheetSsqa(SheetConfig(repo_dir=str(tmp_path), model_config=str(tmp_path / "c.yml"), checkpoint="x.pkl"))
    (tmp_path / "ckpt.pt").write_bytes(b"")
    with pytest.raises(MetricUnavailable, match="cannot import singmos"):
        SingMos(SingMosConfig(repo_dir=str(tmp_path), checkpoint=str(tmp_path / "ckpt.pt")))


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pairs")
    tone = sung_tone(0.6, 220.0)
    save_wav(d / "ref.wav", tone, SR)
    save_wav(d / "hyp.wav", tone * 0.5, SR)
    (d / "broken.wav").write_bytes(b"not a wav")
    return d


@pytest.mark.slow
def test_report_carries_na_with_reasons_and_survives_json(pair_dir):
    cfg = from_dict(MetricsConfig, {"metrics": ["mcd_f0", "per", "singmos"]})
    items = [ScoreItem("u1", str(pair_dir / "ref.wav"), str(pair_dir / "hyp.wav"), ["SP", "n", "i"]),
             ScoreItem("u2", str(pair_dir / "ref.wav"), str(pair_dir / "ref.wav"), None),
             ScoreItem("u3", str(pair_dir / "ref.wav"), str(pair_dir / "broken.wav"), None)]
    report = score_items(items, cfg, nj=1, name="test")
    assert "u3" in report.errors and "broken.wav" in report.errors["u3"] and set(report.utts) == {"u1", "u2"}
    assert report.utts["u2"]["MCD"] == pytest.approx(0.0, abs=1e-9) and report.utts["u1"]["MCD"] > 3.0
    for utt in ("u1", "u2"):  # no recogniser configured / no weights: n/a with the reason, never a number
        assert is_na(report.utts[utt]["PER"]) and "no model directory" in report.utts[utt]["PER"].reason
        assert is_na(report.utts[utt]["SingMOS"])
    summary = report.summary()
    assert isinstance(summary["MCD"], Summary) and summary["MCD"].n == 2
    assert isinstance(summary["PER"], MetricUnavailable)
    data = report.to_json()
    assert data["summary"]["PER"] == {"n/a": summary["PER"].reason}
    assert data["metrics"]["MCD"]["mode"] == "dtw: false" and data["metrics"]["F0_RMSE"]["unit"] == "Hz"
    again = ScoreReport.from_json(data)
    assert again.to_json() == data
    table = markdown_table([report])
    assert "MCD (dB, dtw: false)" in table and "| test |" in table and "PER: no model directory" in table


@pytest.mark.slow
def test_parallel_scoring_matches_serial(pair_dir):
    cfg = from_dict(MetricsConfig, {"metrics": ["mcd_f0"]})
    items = [ScoreItem(f"u{i}", str(pair_dir / "ref.wav"), str(pair_dir / "hyp.wav")) for i in range(3)]
    serial, parallel = score_items(items, cfg, nj=1), score_items(items, cfg, nj=2)
    assert serial.utts == parallel.utts and list(parallel.utts) == ["u0", "u1", "u2"]


def test_each_reference_is_embedded_once_for_singer_sim(pair_dir, monkeypatch):
    """Every condition is scored against the same references: the scorer embeds a reference once
    and gives the same Singer-Sim as embedding both sides each time."""
    calls = []
    embed = ResemblyzerEmbedder.embed
    monkeypatch.setattr(ResemblyzerEmbedder, "embed", lambda self, wav: calls.append(wav.size) or embed(self, wav))
    cfg = from_dict(MetricsConfig, {"metrics": ["singer_sim"], "singer_sim": {"trim_silence": False}})
    ref, hyp = str(pair_dir / "ref.wav"), str(pair_dir / "hyp.wav")
    reports = score_reports({c: [ScoreItem("u1", ref, hyp)] for c in ("a", "b", "c")}, cfg, nj=1)
    assert len(calls) == 3 + 1  # three syntheses, one reference
    a = load_wav(ref, SR, mono=True)
    expected = singer_similarity(ResemblyzerEmbedder(trim_silence=False), load_wav(hyp, SR, mono=True), a)
    assert [reports[c].utts["u1"]["Singer-Sim"] for c in "abc"] == pytest.approx([expected] * 3, abs=1e-6)


@pytest.mark.slow
def test_per_through_the_scorer_with_a_trained_recogniser(tmp_path):
    from svslm.evaluate.ctc_asr import AsrConfig, CtcModelConfig, CtcTrainConfig
    from svslm.evaluate.ctc_train import train_ctc
    from svslm.testing.evaluate import make_phone_corpus

    phones = make_phone_corpus(tmp_path / "data" / "train", 3)
    train_ctc(AsrConfig(model=CtcModelConfig(conv_channels=8, rnn_hidden=8, rnn_layers=1),
                        train=CtcTrainConfig(epochs=1, batch_size=3, num_threads=1)), tmp_path / "data", tmp_path / "asr")
    cfg = from_dict(MetricsConfig, {"metrics": ["per"], "per": {"backends": [{"kind": "ctc", "model_dir": str(tmp_path / "asr")}]}})
    wav = {u: str(tmp_path / "data" / "train" / "wav" / f"{u}.wav") for u in phones}
    report = score_items([ScoreItem(u, wav[u], wav[u], phones[u]) for u in phones], cfg)
    edits = [report.details[u]["PER_edits"] for u in phones]
    ref_len = [report.details[u]["PER_ref_phones"] for u in phones]
    assert ref_len == [len([p for p in phones[u] if p not in ("SP", "AP")]) for u in phones]
    assert [report.utts[u]["PER"] for u in phones] == pytest.approx([100 * e / n for e, n in zip(edits, ref_len)])
    assert report.summary()["PER"].corpus == pytest.approx(100 * sum(edits) / sum(ref_len))


@pytest.mark.parametrize("name", ["tiny", "paper"])
def test_shipped_configs_load(name):
    from pathlib import Path

    from svslm.evaluate.ctc_asr import AsrConfig
    from svslm.utils.config import load_config

    conf = Path(__file__).parents[1] / "conf"
    score_cfg = load_config(conf / "score" / f"{name}.yaml", MetricsConfig)
    assert score_cfg.mcd_f0.dtw is False  # the paper's mode is the default everywhere
    assert score_cfg.per.backends[0].kind == "ctc"
    load_config(conf / "asr" / f"{name}.yaml", AsrConfig)


def test_one_sample_rate_for_scoring(tmp_path):
    """MetricsConfig.sample_rate is the only rate: mcd_f0 has none of its own (setting one once made
    WORLD analyse audio at a rate it was not loaded at), and the 16 kHz models refuse another."""
    from svslm.utils.config import ConfigError

    with pytest.raises(ConfigError, match="unknown key.*sample_rate"):
        from_dict(MetricsConfig, {"mcd_f0": {"sample_rate": 24000}})
    with pytest.raises(ValueError, match="take 16 kHz audio"):
        from_dict(MetricsConfig, {"sample_rate": 24000})
    # mcd_f0 alone may score at another rate, and then analyses at that rate.
    cfg = from_dict(MetricsConfig, {"sample_rate": 24000, "metrics": ["mcd_f0"]})
    tone = sung_tone(0.6, 220.0)
    save_wav(tmp_path / "ref.wav", tone, SR)
    save_wav(tmp_path / "hyp.wav", tone, SR)
    report = score_items([ScoreItem("u", str(tmp_path / "ref.wav"), str(tmp_path / "hyp.wav"), None)], cfg, 1)
    assert report.utts["u"]["MCD"] == pytest.approx(0.0, abs=1e-6)
    assert report.utts["u"]["F0_RMSE"] < 5.0  # 220 Hz found at 24 kHz: the rate reached WORLD
