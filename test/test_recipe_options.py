"""run.sh's option handling, without running a stage (--stage past the last): which flows stage 4
trains, where relative config paths are found, and where logs go."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_sh(cwd: Path, *args: str, script: Path = ROOT / "run.sh") -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([str(script), "--stage", "9", "--stop_stage", "9", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def trained_flows(stderr: str) -> list[str]:
    line = next(line for line in stderr.splitlines() if "stage 4 trains:" in line)
    return [Path(p).stem for p in line.split("stage 4 trains:")[1].split(";")[0].split()]


@pytest.mark.slow
def test_stage_4_trains_exactly_the_flows_the_infer_conditions_render(tmp_path):
    proc = run_sh(tmp_path, "--corpus", "ace_opencpop", "--db_root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    # conf/flow/paper_*.yaml once held a flow no condition renders (Flow2 + codec output).
    assert trained_flows(proc.stderr) == ["paper_flow1_codec", "paper_flow1_mel", "paper_flow2_mel"]
    proc = run_sh(tmp_path, "--conditions", "lm_flow2_voc lm_cd")
    assert proc.returncode == 0, proc.stderr
    assert trained_flows(proc.stderr) == ["tiny_flow2_mel"]


@pytest.mark.slow
def test_a_flow_config_no_condition_renders_is_an_error(tmp_path):
    proc = run_sh(tmp_path, "--conditions", "lm_flow1_voc", "--flow_configs", "conf/flow/tiny_flow2_mel.yaml")
    assert proc.returncode != 0
    assert "no selected condition" in proc.stderr and "tiny_flow1_mel" in proc.stderr


@pytest.mark.slow
def test_readme_ablation_command_from_the_corpus_directory():
    """README: `cd egs2/ace_opencpop/svslm1 && ./run.sh ... --flow_configs "conf/flow/..."`."""
    egs = ROOT / "egs2/ace_opencpop/svslm1"
    request_cleanup = not (egs / "exp").exists()  # run.sh makes exp/logs/ there: leave no trace of the test
    try:
        _ablation_from(egs)
    finally:
        if request_cleanup:
            shutil.rmtree(egs / "exp", ignore_errors=True)


def _ablation_from(egs: Path) -> None:
    proc = run_sh(egs, "--db_root", "/nonexistent", "--conditions", "lm_flow1_voc lm_flow2_voc",
                  "--flow_configs", "conf/flow/paper_flow1_mel.yaml conf/flow/paper_flow2_mel.yaml",
                  script=egs / "run.sh")
    assert proc.returncode == 0, proc.stderr
    assert trained_flows(proc.stderr) == ["paper_flow1_mel", "paper_flow2_mel"]
    proc = run_sh(egs, "--db_root", "/nonexistent", "--flow_configs", "conf/flow/nonexistent.yaml", script=egs / "run.sh")
    assert proc.returncode != 0 and "config not found: conf/flow/nonexistent.yaml" in proc.stderr


@pytest.mark.slow
def test_logs_go_under_the_runs_tag(tmp_path):
    for tag in ("first", "second"):
        assert run_sh(tmp_path, "--tag", tag).returncode == 0
    assert sorted(p.name for p in (tmp_path / "exp/logs").iterdir()) == ["first", "second"]


@pytest.mark.slow
def test_stage_4_flows_run_side_by_side_on_cpu_and_one_after_another_on_gpus(tmp_path):
    """Stage 4 without stage 3's decodes: every flow fails. On CPU the three run side by side, so
    all three start and fail, and the run stops naming them; with --gpus each takes all the
    GPUs, so the first failure stops the run before the next flow starts."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [str(ROOT / "run.sh"), "--stage", "4", "--stop_stage", "4"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    logs = sorted(p.stem for p in (tmp_path / "exp/logs/mini").glob("stage4_flow_*.log"))
    assert logs == ["stage4_flow_tiny_flow1_codec", "stage4_flow_tiny_flow1_mel", "stage4_flow_tiny_flow2_mel"]
    assert all(f"FAILED: {name}" in proc.stderr for name in logs)
    assert "FAILED: a step run beside others" in proc.stderr

    proc = subprocess.run([*cmd, "--gpus", "1", "--tag", "gpu"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode != 0
    assert [p.stem for p in (tmp_path / "exp/logs/gpu").glob("stage4_flow_*.log")] == ["stage4_flow_tiny_flow1_codec"]


@pytest.mark.slow
def test_the_scratch_row_trains_a_second_lm_only_when_the_main_one_is_pretrained(tmp_path):
    """With the zoo SLM, "LM from scratch + CD" is a second fine-tuning from random weights; with
    --pretrained_lm none the main LM is that same random LM, so the row reads it instead."""
    proc = run_sh(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "LM from scratch row: exp/lm/mini_scratch, beside the main LM" in proc.stderr
    proc = run_sh(tmp_path, "--pretrained_lm", "none", "--tag", "none")
    assert proc.returncode == 0, proc.stderr
    assert "LM from scratch row: the main LM (no pretrained LM)" in proc.stderr
    proc = run_sh(tmp_path, "--conditions", "lm_cd", "--tag", "no_row")
    assert proc.returncode == 0, proc.stderr
    assert "LM from scratch row" not in proc.stderr
