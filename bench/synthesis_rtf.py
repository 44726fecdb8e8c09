"""Synthesis real-time factor per condition of a trained recipe run, on this machine's CPU.

    python bench/synthesis_rtf.py --recipe_dir . --tag mini --threads 2 \\
        --config conf/infer/tiny.yaml --out bench/results/synthesis.md

Two measurements for each condition, over the first --n_utts test utterances:
- render: stage 6 as run.sh runs it, from tokens already on disk (LM decodes of stage 3), so the LM
  is not timed. Compute seconds / seconds of audio, models loaded beforehand.
- from score: `Synthesizer.synthesize` on each test score and its speaker prompt, so the LM decode
  is timed too (LM conditions only). This is what `svslm sing` costs.
RTF < 1 is faster than real time. One utterance is rendered before timing (first-call costs);
the wavs go to a temporary directory and are deleted.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import kaldiio
import numpy as np
import torch

from svslm.infer.conditions import get_condition
from svslm.infer.config import load_infer_config
from svslm.infer.pipeline import RecipePaths, Synthesizer
from svslm.infer.run import flow_needs_prompt, item_for, read_split_inputs, render_batch
from svslm.utils.audio import SAMPLE_RATE
from svslm.utils.fileio import atomic_write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe_dir", default=".", help="directory holding data/, dump/, exp/")
    parser.add_argument("--tag", default="mini", help="the run's name under exp/")
    parser.add_argument("--config", default="conf/infer/tiny.yaml")
    parser.add_argument("--n_utts", type=int, default=8, help="test utterances timed per condition")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine's 2 cores)")
    parser.add_argument("--out", default="bench/results/synthesis.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # explicit: MKL/OMP variables of the shell may say otherwise

    root = Path(args.recipe_dir)
    config = load_infer_config(args.config)
    paths = RecipePaths(root / "dump", root / "exp/lm" / args.tag, root / "exp/flow" / args.tag,
                        root / "exp/vocoder" / args.tag)
    data_dir = root / "data/test"
    inputs = read_split_inputs(data_dir, paths.dump_dir, paths.lm_dir)
    utts = inputs.utts[: args.n_utts]
    rows, skipped = [], []
    load_before = os.getloadavg()[0]
    for cc in config.conditions:
        cond = get_condition(cc.name)
        missing = paths.missing(cond, cc)
        if missing:
            skipped.append(f"{cond.name}: missing {'; '.join(missing)}")
            continue
        lm_missing = paths.missing(cond, cc, need_lm_model=True)  # "from score" needs the LM checkpoint too
        with_lm = cond.tokens == "lm" and not lm_missing
        if cond.tokens == "lm" and lm_missing:
            skipped.append(f"{cond.name}, from score: missing {'; '.join(lm_missing)}")
        t0 = time.perf_counter()
        synth = Synthesizer.from_recipe(paths, config, [cond.name], need_lm_model=with_lm)
        load_s = time.perf_counter() - t0
        needs_prompt = cond.uses_flow and flow_needs_prompt(paths, cc)
        items = [it for it in (item_for(cond, u, inputs, needs_prompt) for u in utts) if not isinstance(it, str)]
        written = seconds = audio = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            render_batch(synth, cond.name, items[:1], Path(tmp) / "warmup")  # first-call costs (JIT, allocations) not timed
            for i in range(0, len(items), config.batch_size):  # stage 6's batches
                res = render_batch(synth, cond.name, items[i : i + config.batch_size], Path(tmp))
                written, seconds, audio = written + len(res.written), seconds + res.seconds, audio + res.audio_seconds
        row = {"name": cond.name, "n": int(written), "audio_s": audio, "load_s": load_s,
               "render_rtf": seconds / audio if audio else None}
        if with_lm:
            prompts = kaldiio.load_scp(str(paths.dump_dir / "test" / "prompt.scp"))
            seconds = audio = 0.0
            for it in items:
                phones = inputs.phones[it.utt]
                prompt_audio = None
                if needs_prompt:
                    from svslm.utils.audio import load_wav

                    prompt_audio = load_wav(it.prompt, SAMPLE_RATE)
                t0 = time.perf_counter()
                wav = synth.synthesize(phones, np.asarray(prompts[it.utt]), cond.name, prompt_audio=prompt_audio)
                seconds += time.perf_counter() - t0
                audio += len(wav) / SAMPLE_RATE
            row["score_rtf"] = seconds / audio if audio else None
        rows.append(row)
        print(f"{cond.name}: {row}", file=sys.stderr)

    def fmt(x):
        return "–" if x is None else f"{x:.3f}"

    lines = [
        "# Synthesis real-time factor (stage 6, mini configs)",
        "",
        (f"Measured {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')} by "
         f"`{' '.join(['python', 'bench/synthesis_rtf.py'] + (argv if argv is not None else sys.argv[1:]))}`."),
        (f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} with "
         f"{torch.get_num_threads()} threads, Python {platform.python_version()}; 1-min load average "
         f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after (other jobs share the cores)."),
        (f"Run: `{root / 'exp'}` tag `{args.tag}`, config `{args.config}` (flow sampling: each flow's "
         f"model.sampling, batches of {config.batch_size}); the first {len(utts)} test utterances."),
        "",
        "RTF = compute seconds / seconds of audio (lower is faster; < 1 is faster than real time).",
        ("*render*: from tokens already on disk, as `svslm.bin.infer` runs (the LM decode of stage 3 not "
         "timed). *from score*: `Synthesizer.synthesize` on each score, LM decode included (what `svslm sing` costs)."),
        "",
        "| condition | utterances | audio (s) | model load (s) | RTF render | RTF from score |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['n']} | {r['audio_s']:.1f} | {r['load_s']:.1f} | {fmt(r['render_rtf'])} | "
                     f"{fmt(r.get('score_rtf'))} |")
    if skipped:
        lines += ["", "Not measured:", ""] + [f"- {s}" for s in skipped]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
