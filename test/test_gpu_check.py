"""bench/gpu_check.sh without a GPU: its dry run prints commands that this tree accepts (options run.sh
declares, overrides the configs take), and the LM probe and the report run on CPU."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from svslm.flow.config import FlowConfig
from svslm.infer.config import InferConfig
from svslm.lm.config import LMRecipeConfig
from svslm.utils.config import load_config
from svslm.vocoder.config import VocoderConfig

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["check_cuda", "check_deepspeed", "nvidia_smi", "torch_adam_json", "recipe_stage1_2", "recipe_stage3",
         "recipe_stage4", "recipe_stage5", "recipe_stage6", "lm_probe", "report"]


def dry_run(tmp_path: Path) -> list[tuple[str, list[str]]]:
    done = subprocess.run([str(ROOT / "bench/gpu_check.sh"), "--dry_run", "--torch_adam", "true",
                           "--work_dir", str(tmp_path / "work")], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    steps = []
    for line in done.stdout.splitlines():
        m = re.fullmatch(r"\+ (.*)  # (\w+)", line)
        assert m, line
        steps.append((m.group(2), shlex.split(m.group(1))))
    return steps


def overrides(args: list[str], option: str) -> list[str]:
    words = shlex.split(args[args.index(option) + 1])
    assert words[0] == "--override", words
    return words[1:]


def test_the_dry_run_prints_every_step_and_runs_none(tmp_path):
    steps = dry_run(tmp_path)
    assert [name for name, _ in steps] == STEPS
    assert not (tmp_path / "work").exists()  # nothing was run, nothing written
    commands = dict(steps)

    declared = set(re.findall(r"^([a-z_]+)=", (ROOT / "run.sh").read_text(), re.MULTILINE))
    stages = []
    for name in STEPS[4:9]:
        args = commands[name]
        assert args[:3] == ["env", "-C", str(tmp_path / "work")] and args[3] == str(ROOT / "run.sh")
        options = [a[2:] for a in args[4::2]]
        assert set(options) <= declared, set(options) - declared
        stages.append((int(args[args.index("--stage") + 1]), int(args[args.index("--stop_stage") + 1])))
    assert stages == [(1, 2), (3, 3), (4, 4), (5, 5), (6, 6)]

    # Every override is a key of the config it goes to, with a value its type takes.
    stage3, stage4, stage5, stage6 = (commands[f"recipe_stage{n}"] for n in (3, 4, 5, 6))
    ds_json = tmp_path / "work" / "paper_zero2_fp16_torch_adam.json"
    assert overrides(stage3, "--lm_args") == [f"train.deepspeed_config={ds_json}"]
    load_config(ROOT / "conf/lm/tiny.yaml", LMRecipeConfig, overrides(stage3, "--lm_args"))
    assert shlex.split(stage3[stage3.index("--decode_args") + 1]) == ["--device", "cuda"]
    assert "--gpus" in stage3 and "--gpus" in stage4 and "--gpus" in stage5  # deepspeed / torchrun launchers
    for flow in sorted((ROOT / "conf/flow").glob("tiny_*.yaml")):
        cfg = load_config(flow, FlowConfig, overrides(stage4, "--flow_args"))
        assert (cfg.train.device, cfg.train.precision) == ("cuda", "bf16")
    voc = load_config(ROOT / "conf/vocoder/tiny.yaml", VocoderConfig, overrides(stage5, "--vocoder_args"))
    assert (voc.train.device, voc.train.precision, voc.train.max_steps) == ("cuda", "bf16", 1600)
    assert load_config(ROOT / "conf/infer/tiny.yaml", InferConfig, overrides(stage6, "--infer_args")).device == "cuda"
    probe = commands["lm_probe"]
    load_config(ROOT / "conf/lm/paper.yaml", LMRecipeConfig, [probe[probe.index("--override") + 1]])

    # The JSON step, run for real: the paper's JSON with torch's Adam, nothing else changed.
    snippet = commands["torch_adam_json"]
    assert snippet[-1] == str(ds_json)
    subprocess.run([sys.executable, "-c", snippet[2], snippet[3], str(tmp_path / "ds.json")], check=True)
    paper = json.loads((ROOT / "conf/deepspeed/paper_zero2_fp16.json").read_text())
    paper["optimizer"]["params"]["torch_adam"] = True
    assert json.loads((tmp_path / "ds.json").read_text()) == paper


@pytest.mark.slow
def test_the_lm_probe_and_the_report_run_on_cpu(tmp_path):
    work = tmp_path / "work"
    (work / "logs").mkdir(parents=True)
    probe = subprocess.run(
        [sys.executable, str(ROOT / "bench/gpu_lm_probe.py"), "--config", str(ROOT / "conf/lm/tiny.yaml"),
         "--override", "train.grad_accum=2", "train.batch_bins=200", "--ssl_vocab", "128", "--codebook_size", "256",
         "--n_text", "32", "--frames", "20", "30", "--prompt_frames", "10", "--utts", "12", "--steps", "2",
         "--decode_frames", "12", "--decode_batch", "1", "3", "--out", str(work / "probe.json")],
        capture_output=True, text=True, check=False, timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    result = json.loads((work / "probe.json").read_text())
    assert result["grad_accum"] == 2 and result["train_step_seconds"] > 0
    assert [d["batch"] for d in result["decode"]] == [1, 3] and [d["frames"] for d in result["decode"]] == [12, 36]

    (work / "timings.tsv").write_text("recipe_stage1_2\t12\nlm_probe\t30\n")
    (work / "logs" / "nvidia_smi.log").write_text("NVIDIA H200, 143771 MiB, 570.00\n")
    results = work / "exp" / "eval" / "mini" / "RESULTS.md"
    results.parent.mkdir(parents=True)
    results.write_text("| Condition | MCD |\n|---|---|\n| GT mel + Voc | 5.0 |\n")
    out = tmp_path / "gpu.md"
    subprocess.run([sys.executable, str(ROOT / "bench/gpu_report.py"), "--work_dir", str(work),
                    "--ds_json", str(ROOT / "conf/deepspeed/paper_zero2_fp16.json"), "--out", str(out)], check=True)
    text = out.read_text()
    assert "NVIDIA H200, 143771 MiB" in text and "| recipe_stage1_2 | 12 |" in text and "| total | 42 |" in text
    assert "KV-cache decoding, batch 3" in text and "| GT mel + Voc | 5.0 |" in text
