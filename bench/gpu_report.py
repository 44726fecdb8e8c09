"""bench/results/gpu.md from a bench/gpu_check.sh run: the GPU, each step's wall time, the LM probe
and the mini recipe's RESULTS.md.

    python bench/gpu_report.py --work_dir bench/gpu_work --ds_json conf/deepspeed/paper_zero2_fp16.json \
        --out bench/results/gpu.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path


def first_line(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip().splitlines()[0] if path.is_file() else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", required=True, help="gpu_check.sh's work directory")
    parser.add_argument("--ds_json", required=True, help="the DeepSpeed JSON stage 3 and the probe used")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    work = Path(args.work_dir)
    logs = work / "logs"
    timings = [line.split("\t") for line in (work / "timings.tsv").read_text().splitlines() if line]
    ds = json.loads(Path(args.ds_json).read_text())
    torch_adam = bool(ds.get("optimizer", {}).get("params", {}).get("torch_adam"))
    lines = [
        "# The recipe's CUDA paths on one GPU (`bench/gpu_check.sh`)",
        "",
        (f"Run {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC. GPU: {first_line(logs / 'nvidia_smi.log')}; "
         f"torch / CUDA: {first_line(logs / 'check_cuda.log')}; deepspeed {first_line(logs / 'check_deepspeed.log')}."),
        "DeepSpeed JSON: conf/deepspeed/paper_zero2_fp16.json"
        + (' with "torch_adam": true (no nvcc for FusedAdam).' if torch_adam else "."),
        ("Flow and vocoder: `train.device=cuda train.precision=bf16`, one process under torchrun "
         "(the DDP/NCCL path needs 2 GPUs; the gloo tests cover its logic); the vocoder ran 1600 of its 3200 steps."),
        "",
        "| step | wall time (s) |",
        "|---|---|",
        *(f"| {name} | {seconds} |" for name, seconds in timings),
        f"| total | {sum(int(s) for _, s in timings)} |",
        "",
    ]
    probe_path = work / "probe.json"
    if probe_path.is_file():
        p = json.loads(probe_path.read_text())
        v = p["vocab_parts"]
        lines += [
            "## Paper-size LM probe (`bench/gpu_lm_probe.py`)",
            "",
            (f"{p['params_M']:.0f}M parameters, vocabulary {p['vocab_size']} ({v['ssl']} SSL + {v['codec']} codec + "
             f"{v['text']} text BPE + specials + svs_lb: OpusLM's own token list is not on this machine), "
             f"batch_bins {p['batch_bins']}, grad_accum {p['grad_accum']}, activation checkpointing "
             f"{p['activation_checkpointing']}; DeepSpeed {json.dumps(p['deepspeed'].get('zero_optimization'))}, "
             f"fp16 {json.dumps(p['deepspeed'].get('fp16'))}; {p['device']}."),
            "",
            "| measurement | value |",
            "|---|---|",
            f"| optimizer step ({p['grad_accum']} micro-batches) | {p['train_step_seconds']:.2f} s |",
            f"| training positions / s | {p['train_positions_per_second']:.0f} |",
            f"| peak GPU memory | {p['peak_memory_GB']:.1f} GB |" if p.get("peak_memory_GB") is not None else "| peak GPU memory | n/a (CPU) |",
            *(f"| KV-cache decoding, batch {d['batch']} | {d['frames_per_second']:.0f} frames/s ({d['frames']} frames in {d['seconds']:.1f} s) |"
              for d in p["decode"]),
            f"| set-up (model made, written, loaded) | {p['setup_seconds']:.0f} s |",
            "",
        ]
    results = work / "exp" / "eval" / "mini" / "RESULTS.md"
    if results.is_file():
        lines += ["## The mini recipe's RESULTS.md (run on the GPU)", "", results.read_text(encoding="utf-8").strip(), ""]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
