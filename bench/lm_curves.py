"""Learning curves of LM trainings: validation accuracy per stream against minutes of training, and
(from bench/lm_follow.py's JSON lines) LM + CD F0_CORR against the same minutes.

    python bench/lm_curves.py --run pretraining=exp/mini_zoo/slm/train.log \\
        --run "fine-tuning (pretrained)=exp/lm/mini/train.log" --run "fine-tuning (scratch)=exp/lm/mini_scratch/train.log" \\
        --follow pretraining=follow.jsonl --out bench/results/lm_curves.png

Minutes are wall-clock from a run's first logged line, so they include validation and checkpoint
saving, and depend on the machine's load (say which in the results).
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ \(\w+:\d+\) INFO: ")
VALID = re.compile(r"validation at step (\d+) \(epoch \d+\): loss ([\d.]+), per-stream acc \[([\d. ]+)\]")


def read_validations(log: Path) -> tuple[datetime.datetime, list[dict]]:
    """(first timestamp, [{step, minutes, loss, acc: [per stream]}]) from an lm_train log."""
    text = log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
    start, rows = None, []
    for m in STAMP.finditer(text):
        when = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
        start = start or when
        v = VALID.match(text, m.end())
        if v:
            rows.append({"step": int(v.group(1)), "minutes": (when - start).total_seconds() / 60,
                         "loss": float(v.group(2)), "acc": [float(a) for a in v.group(3).split()]})
    if start is None:
        raise SystemExit(f"{log}: no timestamped log lines")
    return start, rows


def labelled(items: list[str], what: str) -> list[tuple[str, Path]]:
    out = []
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--{what} {item!r}: expected LABEL=PATH")
        label, path = item.split("=", 1)
        out.append((label, Path(path)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", default=[], help="LABEL=lm_train log (train.log)")
    parser.add_argument("--follow", action="append", default=[], help="LABEL=bench/lm_follow.py JSON lines of that run")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    runs = {label: read_validations(path) for label, path in labelled(args.run, "run")}

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for label, (_, rows) in runs.items():
        minutes = [r["minutes"] for r in rows]
        axes[0].plot(minutes, [r["acc"][0] for r in rows], marker="o", label=f"{label}: SSL (stream 0)")
        axes[0].plot(minutes, [r["acc"][1] for r in rows], marker="s", ls="--", label=f"{label}: codebook 1")
        axes[1].plot(minutes, [r["loss"] for r in rows], marker="o", label=label)
    axes[0].set(xlabel="training minutes", ylabel="validation accuracy", title="teacher-forced accuracy per stream")
    axes[1].set(xlabel="training minutes", ylabel="validation loss", title="validation loss")
    for label, path in labelled(args.follow, "follow"):
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        steps_to_minutes = {r["step"]: r["minutes"] for r in runs.get(label, (None, []))[1]}
        # A line's own "minutes" (lm_follow.py --minutes) wins over its step's place in the run's log.
        points = sorted((r["minutes"] if r.get("minutes") is not None else steps_to_minutes.get(r["step"], float("nan")),
                         r["F0_CORR"]) for r in lines)
        axes[2].plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    axes[2].axhline(0.5, color="grey", ls=":", label="target (issue 17)")
    axes[2].set(xlabel="training minutes (of --follow's run)", ylabel="F0_CORR (Pearson r)", title="LM + CD F0_CORR (decoded, scored)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
