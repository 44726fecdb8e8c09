"""RESULTS.md and the HTML report from a hand-written evaluation directory."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf

from svslm.bin import report as report_bin
from svslm.evaluate.config import MetricsConfig
from svslm.evaluate.na import MetricUnavailable
from svslm.evaluate.scorer import ScoreReport, mean_ci95, metric_infos
from svslm.report.published import PUBLISHED
from svslm.utils.config import load_config

CONF = Path(__file__).resolve().parents[1] / "conf"

UTTS = ["s1#001", "s2#002"]
CONDITIONS = [("LM + CD", "lm_cd"), ("LM + Flow2 + Voc", "lm_flow2_voc")]
SINGMOS_NA = "no SingMOS checkpoint at /models/singmos (set score.singmos_dir)"


def write_eval_dir(root: Path, metrics: str = "[mcd_f0,per,singer_sim,dnsmos,singmos,sheet]") -> Path:
    eval_dir, data = root / "exp/eval/t", root / "data/test"
    data.mkdir(parents=True)
    notes = [{"start": 0.0, "end": 0.2, "midi": 0, "lyric": "SP", "phns": ["SP"], "slur": False},
             {"start": 0.2, "end": 0.6, "midi": 64, "lyric": "a", "phns": ["a"], "slur": False}]
    (data / "score.json").write_text(json.dumps({"version": 1, "utts": {u: {"notes": notes, "phones": []} for u in UTTS}}))
    t = np.arange(int(0.6 * 16000)) / 16000
    for slug in ["reference"] + [s for _, s in CONDITIONS]:
        for utt in UTTS:
            path = eval_dir / "wav" / slug / f"{utt}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t) * (t > 0.2)).astype(np.float32), 16000)
    conds = [{"name": n, "slug": s, "description": "", "wav_dir": f"wav/{s}", "status": "done", "errors": [],
              "flow_tag": "tiny_flow2_mel" if "Flow" in n else None, "n_steps": 10, "guidance": 0.7, "seed": 0,
              "components": {"tokens": {"path": "exp/lm/t/decode/test/codec_ssl.scp", "modified": "2026-01-01T00:00:00+00:00"},
                             "vocoder_checkpoint": {"path": "exp/vocoder/t/generator.pth", "missing": True}},
              "timing": {"compute_seconds": 1.0, "audio_seconds": 4.0, "n_rendered": 2, "rtf": 0.25}} for n, s in CONDITIONS]
    conds.append({"name": "LM + Flow1 + CD", "slug": "lm_flow1_cd", "description": "", "wav_dir": "wav/lm_flow1_cd",
                  "status": "skipped", "reason": "missing flow model exp/flow/t/f1c/config.yaml", "errors": [], "components": {}})
    manifest = {"version": 1, "split": "test", "paths": {"data_dir": str(data)}, "nj": 2, "utterances": UTTS,
                "infer_config": {"path": "conf/infer/tiny.yaml", "values": {}}, "conditions": conds}
    (eval_dir / "manifest.json").write_text(json.dumps(manifest))
    (eval_dir / "scores").mkdir()
    # The scorer's own metric set, by default every group on (tiny.yaml leaves DNSMOS out for speed).
    infos = metric_infos(load_config(CONF / "score" / "tiny.yaml", MetricsConfig, [f"metrics={metrics}"]))
    for i, (name, slug) in enumerate([("Ground truth", "ground_truth")] + CONDITIONS):
        utts = {}
        for j, utt in enumerate(UTTS):
            values = {k: 0.5 + j for k in infos}
            values.update({"F0_RMSE": 20.0 + i + 2 * j, "MCD": 6.0 + i + j, "F0_CORR": 0.85 + 0.1 * j,
                           "SingMOS": MetricUnavailable(SINGMOS_NA), "Sheet-SSQA": MetricUnavailable("no Sheet-SSQA checkpoint")})
            utts[utt] = values
        report = ScoreReport(slug, infos, utts, only_in_ref=["s3#003"] if slug == "lm_cd" else [])
        (eval_dir / "scores" / f"{slug}.json").write_text(json.dumps(report.to_json()))
    return eval_dir


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> Path:
    eval_dir = write_eval_dir(tmp_path_factory.mktemp("report"))
    assert report_bin.main(["--eval_dir", str(eval_dir)]) == 0
    return eval_dir


def table(md: str, title: str) -> list[list[str]]:
    block = md.split(title, 1)[1].split("\n\n")[1]
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines() if line.startswith("|")]


def test_tables_have_the_paper_layout(reported):
    md = (reported / "RESULTS.md").read_text()
    t2 = table(md, "## Table 2")
    assert t2[0] == ["Condition", "F0_RMSE (Hz) ↓", "F0_CORR (Pearson r) ↑", "MCD (dB) ↓", "PER (%) ↓",
                     "Singer-Sim (cosine) ↑", "SingMOS (MOS 1-5) ↑", "Sheet-SSQA (MOS 1-5) ↑", "DNSMOS (MOS 1-5) ↑"]
    rows = {r[0].split(" [")[0]: r[1:] for r in t2[2:] if not r[0].startswith("*")}  # ours, not the published
    assert list(rows) == ["Ground truth", "LM + CD", "LM + Flow1 + CD", "LM + Flow2 + Voc"]  # the paper's order
    mean, ci = mean_ci95([21.0, 23.0])  # LM + CD's F0_RMSE per utterance
    assert rows["LM + CD"][0] == f"{mean:.1f} ± {ci:.1f}" and rows["LM + CD"][2] == "7.50 ± 6.35"
    assert "F0_RMSE, F0_CORR, MCD: `dtw: false`" in md.split("## Table 1")[0]


def test_na_cells_point_to_their_reason(reported):
    md = (reported / "RESULTS.md").read_text()
    rows = {r[0].split(" [")[0]: r[1:] for r in table(md, "## Table 2")[2:] if not r[0].startswith("*")}
    ref = re.fullmatch(r"n/a \[(\d+)\]", rows["LM + Flow2 + Voc"][5]).group(1)
    assert re.search(rf"^{ref}\. SingMOS: {re.escape(SINGMOS_NA)}$", md, re.MULTILINE)
    assert rows["LM + CD"][5] == rows["LM + Flow2 + Voc"][5]  # one note per distinct reason
    skipped = re.search(r"\[(\d+)\]", rows["LM + Flow1 + CD"][-1]).group(1)
    assert re.search(rf"^{skipped}\. LM \+ Flow1 \+ CD: not rendered \(skipped: missing flow model", md, re.MULTILINE)
    assert re.search(r"^\d+\. LM \+ CD: 1 test utterance\(s\) not scored: s3#003 \(no synthesized wav\)$", md, re.MULTILINE)


def test_a_metric_left_out_of_the_score_config_says_so(tmp_path):
    eval_dir = write_eval_dir(tmp_path, "[mcd_f0,per,singer_sim,singmos,sheet]")  # conf/score/tiny.yaml's
    assert report_bin.main(["--eval_dir", str(eval_dir)]) == 0
    md = (eval_dir / "RESULTS.md").read_text()
    rows = {r[0].split(" [")[0]: r[1:] for r in table(md, "## Table 2")[2:] if not r[0].startswith("*")}
    scored = [cells for name, cells in rows.items() if name != "LM + Flow1 + CD"]  # that one was not rendered
    refs = {re.fullmatch(r"n/a \[(\d+)\]", cells[-1]).group(1) for cells in scored}
    assert len(scored) == 3 and len(refs) == 1  # one note for every row
    assert re.search(rf"^{refs.pop()}\. DNSMOS: not scored \(not in the score config's `metrics`\)$", md, re.MULTILINE)


def test_published_rows_are_marked_and_ours_are_not(reported):
    md = (reported / "RESULTS.md").read_text()
    t1 = {r[0]: r[1:] for r in table(md, "## Table 1")[2:]}
    visinger = next(k for k in t1 if k.startswith("*VISinger2"))
    tag = re.search(r"published (\[P\d\]), dtw: true", visinger).group(1)
    assert t1[visinger][2] == "*5.76*" and t1[visinger][3] == "–"  # PER not published: a dash, not n/a
    assert "LM + Flow1 + Voc (ours)" in t1 and "Ground truth (ours)" in t1  # the paper's system is Flow1 + Voc
    assert f"- {tag} {PUBLISHED[-1].source}" in md


def test_the_papers_rows_are_shown_as_published_beside_ours_in_its_order(reported):
    """arXiv 2512.14657's Table 1 and Table 2 as printed (/work/shared/paper_tables.md), PER in %."""
    md = (reported / "RESULTS.md").read_text()
    t1 = [r for r in table(md, "## Table 1")[2:]]
    labels = [r[0] for r in t1]
    paper = [i for i, label in enumerate(labels) if "dtw: false" in label and label.startswith("*")]
    assert [labels[i].split(" (published")[0] for i in paper] == ["*XiaoiceSing", "*TokSing", "*LM + Flow1 + Voc"]
    assert labels[paper[-1] + 1] == "LM + Flow1 + Voc (ours)"  # ours right after the paper's row of it
    xiaoice = t1[paper[0]][1:]
    assert xiaoice[:4] == ["*71.67*", "*0.62*", "*11.47*", "*9*"]  # as printed; PER 0.09 -> 9 %
    assert xiaoice[4] == "–"  # Table 1 has no Singer-Sim
    t2 = table(md, "## Table 2")[2:]
    names = [r[0].split(" [")[0] for r in t2]
    published2 = [n for n in names if n.startswith("*")]
    assert [n.split(" (published")[0] for n in published2] == [
        "*CD Resynthesis", "*LM + CD", "*LM + Flow1 + CD", "*LM + Flow1 + Voc", "*LM + Flow2 + Voc"]
    i = names.index("LM + CD")  # each published row follows our row of the same condition
    assert names[i + 1].startswith("*LM + CD (published") and "2512.14657" not in names[i + 1]
    flow2 = t2[names.index(next(n for n in names if n.startswith("*LM + Flow2 + Voc")))][1:]
    assert flow2[:5] == ["*62.52*", "*0.62*", "*7.66*", "*42*", "*0.56*"]
    assert flow2[5:7] == ["*3.95*", "*3.55*"]
    assert "arXiv 2512.14657, Table 1" in md and "arXiv 2512.14657, Table 2" in md
    assert "PER printed as a fraction in the paper, shown here in %" in md


def test_provenance_lists_configs_checkpoints_and_rtf(reported):
    md = (reported / "RESULTS.md").read_text()
    prov = md.split("## How these rows were made")[1]
    assert "`conf/infer/tiny.yaml`" in prov
    assert "- MCD (dB, `dtw: false`): VERSA mcd_f0" in prov and "- PER (%): ctc ASR" in prov
    line = next(l for l in prov.splitlines() if l.startswith("| LM + Flow2 + Voc"))
    assert "`tiny_flow2_mel`, 10, 0.7, 0" in line and "generator.pth` (missing)" in line and "0.250" in line


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("audio", "img") and a.get("src"):
            self.links.append(a["src"])


def test_html_report_references_existing_files(reported):
    page = reported / "report" / "index.html"
    parser = _Links()
    parser.feed(page.read_text())
    audio = [l for l in parser.links if l.endswith(".wav")]
    images = [l for l in parser.links if l.endswith(".png")]
    assert len(audio) == len(UTTS) * 3 and len(images) == len(UTTS)
    assert all("%23" in l and "#" not in l for l in audio)  # '#' in ids escaped, else it starts a fragment
    for link in parser.links:
        assert (page.parent / unquote(link)).is_file(), link
    assert f'title="{SINGMOS_NA}"' in page.read_text()  # per-utterance n/a carries its reason


def test_figures_are_kept_until_a_wav_changes(reported):
    figures = sorted((reported / "report" / "img").glob("*.png"))
    before = [f.stat().st_mtime_ns for f in figures]
    assert report_bin.main(["--eval_dir", str(reported)]) == 0
    assert [f.stat().st_mtime_ns for f in figures] == before


def test_metrics_beyond_the_paper_get_their_own_table(reported):
    md = (reported / "RESULTS.md").read_text()
    other = table(md, "Other metrics computed")
    assert "DNSMOS_SIG" in other[0] and len(other) == 2 + 3  # header, rule, ground truth + 2 conditions


def test_report_without_manifest_fails_clearly(tmp_path, capsys):
    assert report_bin.main(["--eval_dir", str(tmp_path)]) == 1
    assert "manifest.json not found: run `python -m svslm.bin.infer`" in capsys.readouterr().err


def test_figures_drawn_by_two_processes_equal_one_and_a_bad_wav_costs_only_its_figure(tmp_path, capsys):
    one = write_eval_dir(tmp_path / "one")
    two = write_eval_dir(tmp_path / "two")
    (two / "wav" / "lm_cd" / f"{UTTS[1]}.wav").write_bytes(b"not a wav")
    assert report_bin.main(["--eval_dir", str(one)]) == 0
    assert report_bin.main(["--eval_dir", str(two), "--nj", "2"]) == 0
    drawn = {p.name: p.read_bytes() for p in (two / "report" / "img").glob("*.png")}
    serial = {p.name: p.read_bytes() for p in (one / "report" / "img").glob("*.png")}
    assert len(serial) == len(UTTS) and set(drawn) == set(serial) - {f for f in serial if "002" in f}
    assert all(drawn[name] == serial[name] for name in drawn)  # the same pixels from a worker process
    assert f"{UTTS[1]}: no figure (AudioError" in capsys.readouterr().err
    assert UTTS[1] in (two / "report" / "index.html").read_text()  # its section (players, scores) stays


def test_the_f0_panel_shows_the_notes_range_whatever_a_system_sings():
    import matplotlib.pyplot as plt

    from svslm.report.plots import utterance_figure

    t = np.arange(16000) / 16000
    notes = [{"start": 0.1, "end": 0.5, "midi": 64}, {"start": 0.5, "end": 0.9, "midi": 67}]
    sung = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)  # E4 = MIDI 64
    octave_down = (0.3 * np.sin(2 * np.pi * 82.5 * t)).astype(np.float32)  # MIDI 40: two octaves below
    fig = utterance_figure("u", [("Ground truth", sung), ("LM + CD", octave_down)], notes)
    low, high = fig.axes[-1].get_ylim()
    plt.close(fig)
    assert 58 <= low <= 64 and 67 <= high <= 73  # the notes fill the panel; MIDI 40 falls off it
