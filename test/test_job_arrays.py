"""Job arrays (cmd.sh): the runners, and stages 2, 3 (decoding) and 6 (synthesis) split into jobs:
N jobs write the files one run writes, and a re-run after a killed job redoes only its work."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from svslm.utils.config import save_config
from svslm.utils.jobs import JobSlice

ROOT = Path(__file__).resolve().parents[1]
RUN_LOCAL = ROOT / "utils" / "run_local.sh"
sys.path.insert(0, str(ROOT / "test"))


def test_job_slices_cover_the_units_once():
    units = list(range(7))
    shares = [JobSlice(j, 3).select(units) for j in (1, 2, 3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    with pytest.raises(ValueError, match="--job 4 is not in 1..3"):
        JobSlice(4, 3)


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


# ---- the runners ----

def test_local_runner_runs_an_array_with_a_log_per_job(tmp_path):
    done = run([str(RUN_LOCAL), "--max_jobs_run", "2", "JOB=1:3", "log/echo.JOB.log",
                "bash", "-c", "echo 'job JOB of 3'; [ JOB != 2 ]"], tmp_path)
    assert done.returncode == 1 and "1 of 3 jobs failed; logs: log/echo.2.log" in done.stderr
    for j in (1, 2, 3):
        lines = (tmp_path / f"log/echo.{j}.log").read_text().splitlines()
        assert lines[0].startswith(f"# bash -c echo 'job {j} of 3'")
        assert lines[2] == f"job {j} of 3" and lines[-1].endswith(f"status {int(j == 2)}")
    ok = run([str(RUN_LOCAL), "log/one.log", "echo", "a b"], tmp_path)
    assert ok.returncode == 0 and (tmp_path / "log/one.log").read_text().splitlines()[2] == "a b"


FAKE_SCHEDULERS = {  # run every task of the array here, as the scheduler would on its nodes
    "slurm": ("sbatch", """#!/usr/bin/env bash
echo "$@" >> "$SUBMITTED"
for a in "$@"; do case $a in --array=*) range=${a#--array=}; range=${range%%%*} ;; esac; done
script=${@: -1}; rc=0
for i in $(seq ${range%-*} ${range#*-}); do SLURM_ARRAY_TASK_ID=$i bash "$script" || rc=1; done
exit $rc
"""),
    "sge": ("qsub", """#!/usr/bin/env bash
echo "$@" >> "$SUBMITTED"
prev=; for a in "$@"; do [ "$prev" = -t ] && range=$a; prev=$a; done
script=${@: -1}; rc=0
for i in $(seq ${range%-*} ${range#*-}); do SGE_TASK_ID=$i bash "$script" || rc=1; done
exit $rc
"""),
}


@pytest.mark.parametrize("backend", ["slurm", "sge"])
def test_cluster_runner_submits_one_array_with_the_configs_options(tmp_path, backend):
    name, fake = FAKE_SCHEDULERS[backend]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / name).write_text(fake)
    (bin_dir / name).chmod(0o755)
    conf = ROOT / "conf" / ("slurm.conf" if backend == "slurm" else "queue.conf")
    wrapper = ROOT / "utils" / ("run_slurm.sh" if backend == "slurm" else "run_queue.sh")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SUBMITTED": str(tmp_path / "submitted")}
    done = run([str(wrapper), "--config", str(conf), "--gpu", "1", "--mem", "4G", "JOB=1:3", "exp/log/t.JOB.log",
                "bash", "-c", "echo task JOB; [ JOB != 3 ]"], tmp_path, env)
    submitted = (tmp_path / "submitted").read_text()
    assert submitted.count("\n") == 1  # one submission for the whole array
    if backend == "slurm":
        assert "--gres=gpu:1" in submitted and "--mem=4G" in submitted and "--array=1-3" in submitted
    else:
        assert "-l gpu=1" in submitted and "mem_free=4G" in submitted and "-t 1-3" in submitted
    assert done.returncode == 1 and "1 of 3 jobs failed" in done.stderr and "exp/log/t.3.log" in done.stderr
    for j in (1, 2, 3):
        lines = (tmp_path / f"exp/log/t.{j}.log").read_text().splitlines()
        assert f"task {j}" in lines and lines[-1].endswith(f"status {int(j == 3)}")


def test_cluster_runner_config_errors_name_the_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("command sbatch\noption colour=* --x=$0\n")
    done = run([sys.executable, str(ROOT / "utils" / "run_cluster.py"), "--backend", "slurm", "--config", str(conf),
                "log", "true"], tmp_path)
    assert done.returncode != 0 and "bad.conf:2" in done.stderr


# ---- stage 2 ----

def same_dump(a: Path, b: Path) -> None:
    """Every file of dump `a` is in dump `b` with the same content (tables by value, paths relative;
    the prompts' fingerprint hashes absolute paths, so only its presence is compared)."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.suffix != ".ark")
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.suffix != ".ark")
    for rel in files:
        if rel.name == "prompt.fingerprint":
            continue
        if rel.suffix == ".scp":
            x, y = kaldiio.load_scp(str(a / rel)), kaldiio.load_scp(str(b / rel))
            assert sorted(x) == sorted(y), rel
            assert all(np.array_equal(x[k], y[k]) for k in x), rel
        elif rel.suffix == ".npy":
            assert np.array_equal(np.load(a / rel), np.load(b / rel)), rel
        else:
            assert (a / rel).read_bytes().replace(str(a).encode(), b"DUMP") == \
                (b / rel).read_bytes().replace(str(b).encode(), b"DUMP"), rel


@pytest.mark.slow
def test_stage2_as_two_jobs_writes_what_one_run_writes_and_a_killed_job_reruns_alone(tmp_path):
    from test_tokenize_pipeline import make_corpus, tiny_config

    from svslm.tokenize.pipeline import run_tokenize

    make_corpus(tmp_path / "data", {"train": 2, "dev": 1, "test": 1})  # 4 + 2 + 2 utterances: 2 + 1 + 1 shards
    cfg = tiny_config()
    save_config(cfg, tmp_path / "tokenize.yaml")
    run_tokenize(cfg, tmp_path / "data", tmp_path / "one")

    with pytest.raises(ValueError, match="--part prepare"):
        run_tokenize(cfg, tmp_path / "data", tmp_path / "two", job=JobSlice(1, 2))
    run_tokenize(cfg, tmp_path / "data", tmp_path / "two", part="prepare")
    for j in (1, 2):
        assert run_tokenize(cfg, tmp_path / "data", tmp_path / "two", job=JobSlice(j, 2)) == {}
    assert not (tmp_path / "two" / "train" / "codec_ssl.scp").exists()  # the jobs do not merge
    shards = sorted((tmp_path / "two").glob("*/data/codec_ssl.*.scp"))
    assert len(shards) == 4
    run_tokenize(cfg, tmp_path / "data", tmp_path / "two")  # the merge
    same_dump(tmp_path / "one", tmp_path / "two")

    # Job 2 was killed: its last shard never got its scp (written last, it marks a shard done).
    # The array, re-run through the local runner and the entry point, redoes that shard only.
    killed = tmp_path / "two" / "test" / "data" / "codec_ssl.0.scp"  # unit 3 (train 0-1, dev 2): job 2's
    killed.unlink()
    before = {p: p.stat().st_mtime_ns for p in shards if p != killed}
    done = run([str(RUN_LOCAL), "JOB=1:2", "logs/tokenize.JOB.log", sys.executable, "-m", "svslm.bin.tokenize",
                "--config", "tokenize.yaml", "--data_dir", "data", "--dump_dir", str(tmp_path / "two"),
                "--job", "JOB", "--num_jobs", "2"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "job 1 of 2: 0 shards to tokenize (2 already done)" in (tmp_path / "logs/tokenize.1.log").read_text()
    assert "job 2 of 2: 1 shards to tokenize (1 already done)" in (tmp_path / "logs/tokenize.2.log").read_text()
    assert killed.is_file() and before == {p: p.stat().st_mtime_ns for p in before}
    run_tokenize(cfg, tmp_path / "data", tmp_path / "two")
    same_dump(tmp_path / "one", tmp_path / "two")


# ---- stage 3's decoding ----

def test_lm_decoding_as_two_jobs_equals_one_run(tmp_path):
    from svslm.bin import lm_decode
    from svslm.testing.lm import make_init_checkpoint, make_tiny_dump, tiny_lm_config

    paths = make_tiny_dump(tmp_path, n_train=1, n_dev=9, frames=(8, 12), prompt_len=6)
    make_init_checkpoint(tmp_path / "init", tiny_lm_config(), 16, 8, seed=3)
    conf = tmp_path / "decode.yaml"
    conf.write_text("top_k: 30\ntemperature: 0.8\nbatch_size: 1\nseed: 0\n")  # shards of 4: 3 shards

    def decode(out: str, *job: str) -> int:
        return lm_decode.main(["--config", str(conf), "--model_dir", str(tmp_path / "init"),
                               "--data_json", str(paths["dev"]), "--out_dir", str(tmp_path / out), *job])

    assert decode("one") == 0
    assert decode("two", "--job", "1", "--num_jobs", "2") == 0
    assert sorted(p.name for p in (tmp_path / "two/data").glob("*.scp")) == ["codec_ssl.0.scp", "codec_ssl.2.scp"]
    assert not (tmp_path / "two/codec_ssl.scp").exists()
    assert decode("two", "--job", "2", "--num_jobs", "2") == 0
    assert decode("two") == 0  # the merge: nothing left to decode
    one, two = (kaldiio.load_scp(str(tmp_path / d / "codec_ssl.scp")) for d in ("one", "two"))
    assert sorted(one) == sorted(two) and len(one) == 9
    assert all(np.array_equal(one[u], two[u]) for u in one)  # one seed per shard, whoever decodes it
    # --nj 2: the same shards as two jobs in worker processes, then the merge, in one call.
    assert decode("nj2", "--nj", "2") == 0
    assert len(list((tmp_path / "nj2/data").glob("codec_ssl.*.scp"))) == 3
    nj2 = kaldiio.load_scp(str(tmp_path / "nj2" / "codec_ssl.scp"))
    assert sorted(nj2) == sorted(one) and all(np.array_equal(one[u], nj2[u]) for u in one)


# ---- stage 6's synthesis ----

def test_synthesis_as_two_jobs_equals_one_run_and_a_killed_job_reruns_alone(tmp_path, monkeypatch):
    from test_infer_run import CONFIG

    from svslm.infer.pipeline import Synthesizer
    from svslm.infer.run import run_inference
    from svslm.testing.infer import UTTS, fake_parts, make_recipe

    synth = Synthesizer(**fake_parts(), config=CONFIG)
    rendered, real_render = [], synth.render
    synth.render = lambda condition, **kw: rendered.extend(kw["utt_ids"]) or real_render(condition, **kw)
    monkeypatch.setattr(Synthesizer, "from_recipe", classmethod(lambda cls, *a, **k: synth))
    one = make_recipe(tmp_path / "one")
    run_inference(CONFIG, "conf.yaml", **one)
    two = make_recipe(tmp_path / "two")
    utts = sorted(UTTS)
    for j in (1, 2):
        rendered.clear()
        assert run_inference(CONFIG, "conf.yaml", **two, job=JobSlice(j, 2)) == {}
        assert set(rendered) == set(JobSlice(j, 2).select(utts))
    assert not (two["out_dir"] / "manifest.json").exists()
    assert sorted(p.name for p in (two["out_dir"] / "jobs").iterdir()) == ["timing.1.json", "timing.2.json"]
    rendered.clear()
    manifest = run_inference(CONFIG, "conf.yaml", **two)
    assert rendered == [] and not list((two["out_dir"] / "jobs").iterdir())
    wavs = sorted(p.relative_to(one["out_dir"]) for p in (one["out_dir"] / "wav").rglob("*.wav"))
    assert wavs == sorted(p.relative_to(two["out_dir"]) for p in (two["out_dir"] / "wav").rglob("*.wav"))
    assert all((one["out_dir"] / w).read_bytes() == (two["out_dir"] / w).read_bytes() for w in wavs)
    reference = json.loads((one["out_dir"] / "manifest.json").read_text())
    for a, b in zip(reference["conditions"], manifest["conditions"]):
        assert a["timing"]["n_rendered"] == b["timing"]["n_rendered"] == len(UTTS)  # the jobs' timings counted
        assert a["timing"]["audio_seconds"] == pytest.approx(b["timing"]["audio_seconds"])

    # Job 2 killed before its last wav: re-run, it renders that one only; job 1 renders nothing.
    lost = two["out_dir"] / "wav" / "lm_cd" / f"{JobSlice(2, 2).select(utts)[0]}.wav"
    lost.unlink()
    rendered.clear()
    run_inference(CONFIG, "conf.yaml", **two, job=JobSlice(1, 2))
    run_inference(CONFIG, "conf.yaml", **two, job=JobSlice(2, 2))
    assert rendered == [lost.stem] and lost.read_bytes() == (one["out_dir"] / lost.relative_to(two["out_dir"])).read_bytes()
    lm_cd = next(c for c in run_inference(CONFIG, "conf.yaml", **two)["conditions"] if c["slug"] == "lm_cd")
    assert lm_cd["timing"]["n_rendered"] == len(UTTS) + 1  # the re-rendered wav counted once more

    # A job that runs twice before the merge (a failure, then its re-run) keeps both runs' timings.
    three = make_recipe(tmp_path / "three")
    run_inference(CONFIG, "conf.yaml", **three, job=JobSlice(1, 2))
    (three["out_dir"] / "wav" / "lm_cd" / f"{utts[0]}.wav").unlink()
    run_inference(CONFIG, "conf.yaml", **three, job=JobSlice(1, 2))
    run_inference(CONFIG, "conf.yaml", **three, job=JobSlice(2, 2))
    lm_cd = next(c for c in run_inference(CONFIG, "conf.yaml", **three)["conditions"] if c["slug"] == "lm_cd")
    assert lm_cd["timing"]["n_rendered"] == len(UTTS) + 1
