"""Stage 6 inference: every selected condition for every utterance of a split, batched over --nj processes.

Writes `<out_dir>/wav/<condition slug>/<utt>.wav` (16 kHz), the ground truth as
`<out_dir>/wav/reference/<utt>.wav`, and `<out_dir>/manifest.json` (what made each condition, and
timings for the real-time factor). Tokens come from disk: the LM's stage 3 decodes
(`<lm_dir>/decode/<split>/codec_ssl.scp`) and the ground truth (`<dump_dir>/<split>/codec_ssl.scp`);
nothing is decoded again. A wav that exists is complete (written atomically) and is not redone,
unless a checkpoint, config or token file that made it is newer (a retrained vocoder, say).
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import time
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import torch
from tqdm import tqdm

from svslm.infer.conditions import REFERENCE_SLUG, Condition, get_condition
from svslm.infer.config import (
    ConditionConfig,
    InferConfig,
    load_infer_config,
    select_conditions,
)
from svslm.infer.pipeline import RecipePaths, Synthesizer
from svslm.tokenize.svs_lb import phones_to_frames
from svslm.utils.audio import SAMPLE_RATE, load_wav, save_wav
from svslm.utils.config import ConfigError, to_dict
from svslm.utils.fileio import atomic_path, atomic_write_json, read_kaldi_map
from svslm.utils.jobs import JobSlice
from svslm.utils.workers import process_executor

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1


@dataclass
class Item:
    """What one utterance of one condition is rendered from (paths and addresses, so it pickles small)."""

    utt: str
    tokens: str | None = None  # kaldiio address of codec_ssl int32 [T, 9]
    phones: list[dict] | None = None  # score.json phones (Flow2's frame MIDI)
    reference: str | None = None  # ground-truth wav (GT mel + Voc)
    prompt: str | None = None  # wav of the prompt utterance (flows with a speaker prompt)


@dataclass
class BatchResult:
    condition: str
    written: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (utt, message)
    seconds: float = 0.0  # synthesis compute time, I/O excluded
    audio_seconds: float = 0.0  # duration of the audio written


@dataclass
class SplitInputs:
    """The split's files that conditions are rendered from."""

    utts: list[str]
    wavs: dict[str, str]
    durations: dict[str, float]
    phones: dict[str, list[dict]]
    gt_tokens: dict[str, str]
    lm_tokens: dict[str, str]
    lm_scratch_tokens: dict[str, str]  # the decodes of the LM fine-tuned from random weights
    prompts: dict[str, str]  # utt -> prompt utterance


def read_split_inputs(data_dir: Path, dump_dir: Path, lm_dir: Path, lm_scratch_dir: Path | None = None) -> SplitInputs:
    split = data_dir.name
    wavs = read_kaldi_map(data_dir / "wav.scp")
    durations = {u: float(d) for u, d in read_kaldi_map(data_dir / "utt2dur").items()} if (data_dir / "utt2dur").is_file() else {}
    phones: dict[str, list[dict]] = {}
    if (data_dir / "score.json").is_file():
        phones = {u: v["phones"] for u, v in json.loads((data_dir / "score.json").read_text(encoding="utf-8"))["utts"].items()}

    def scp(path: Path) -> dict[str, str]:
        return read_kaldi_map(path) if path.is_file() else {}

    return SplitInputs(
        utts=sorted(wavs), wavs=wavs, durations=durations, phones=phones,
        gt_tokens=scp(dump_dir / split / "codec_ssl.scp"),
        lm_tokens=scp(lm_dir / "decode" / split / "codec_ssl.scp"),
        lm_scratch_tokens=scp(lm_scratch_dir / "decode" / split / "codec_ssl.scp") if lm_scratch_dir else {},
        prompts=scp(dump_dir / split / "utt2prompt"),
    )


def split_input_problems(cond: Condition, inputs: SplitInputs, paths: dict[str, Path], needs_prompt: bool) -> list[str]:
    """Split-level files `cond` needs that are absent (the per-utterance gaps are reported per utterance)."""
    out = []
    if cond.tokens == "gt" and not inputs.gt_tokens:
        out.append(f"ground-truth tokens {paths['gt_scp']} (stage 2)")
    if cond.tokens == "lm" and not inputs.lm_tokens:
        out.append(f"LM decodes {paths['lm_scp']} (stage 3 decoding)")
    if cond.tokens == "lm_scratch" and not inputs.lm_scratch_tokens:
        out.append(f"decodes of the LM from scratch {paths['lm_scratch_scp']} (stage 3, --lm_scratch_dir)")
    if cond.uses_pitch and not inputs.phones:
        out.append(f"score {paths['score']} (stage 1)")
    if needs_prompt and not inputs.prompts:
        out.append(f"speaker prompts {paths['utt2prompt']} (stage 2)")
    return out


def item_for(cond: Condition, utt: str, inputs: SplitInputs, needs_prompt: bool) -> Item | str:
    """The inputs of one utterance, or why it cannot be rendered."""
    item = Item(utt)
    if cond.tokens == "gt":
        item.tokens = inputs.gt_tokens.get(utt)
        if item.tokens is None:
            return "no ground-truth codec_ssl tokens in the dump"
    elif cond.tokens in ("lm", "lm_scratch"):
        item.tokens = (inputs.lm_tokens if cond.tokens == "lm" else inputs.lm_scratch_tokens).get(utt)
        if item.tokens is None:
            return "no LM decode"
    else:
        item.reference = inputs.wavs[utt]
    if cond.uses_pitch:
        item.phones = inputs.phones.get(utt)
        if item.phones is None:
            return "no score in score.json"
    if needs_prompt:
        prompt_utt = inputs.prompts.get(utt)
        if prompt_utt not in inputs.wavs:
            return f"prompt utterance {prompt_utt!r} has no audio in wav.scp"
        item.prompt = inputs.wavs[prompt_utt]
    return item


# ---- workers ---------------------------------------------------------------------------------------
_SYNTH: Synthesizer | None = None  # one per worker process, loaded once


def _init_worker(paths: RecipePaths, config: InferConfig, names: list[str]) -> None:
    global _SYNTH
    _SYNTH = Synthesizer.from_recipe(paths, config, names)


def _load_inputs(cond: Condition, item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if item.tokens is not None:
        out["tokens"] = np.asarray(kaldiio.load_mat(item.tokens))
    if item.phones is not None:
        out["frame_midi"] = phones_to_frames(item.phones, n_frames=len(out["tokens"]), where=item.utt)[1]
    if item.reference is not None:
        out["reference"] = load_wav(item.reference, SAMPLE_RATE)
    if item.prompt is not None:
        out["prompt_audio"] = load_wav(item.prompt, SAMPLE_RATE)
    return out


def render_batch(synth: Synthesizer, condition: str, items: list[Item], wav_dir: Path) -> BatchResult:
    """Render `items` and write their wavs; a failing batch is retried one utterance at a time so
    one bad utterance costs only itself."""
    cond = get_condition(condition)
    result = BatchResult(cond.name)
    loaded: list[tuple[Item, dict[str, Any]]] = []
    for item in items:
        try:
            loaded.append((item, _load_inputs(cond, item)))
        except Exception as err:  # noqa: BLE001 - any unreadable input: report it and keep the others
            result.errors.append((item.utt, f"{type(err).__name__}: {err}"))
    groups = [loaded] if loaded else []
    while groups:
        group = groups.pop(0)
        kwargs = {k: [inp[k] for _, inp in group] for k in group[0][1]}
        try:
            t0 = time.perf_counter()
            wavs = synth.render(cond.name, utt_ids=[it.utt for it, _ in group], **kwargs)
            result.seconds += time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001 - any failure of one batch: retry its utterances alone
            if len(group) > 1:
                log.warning("'%s': a batch of %d failed (%s); rendering its utterances one by one", cond.name, len(group), err)
                groups += [[x] for x in group]
            else:
                result.errors.append((group[0][0].utt, f"{type(err).__name__}: {err}"))
            continue
        for (item, _), wav in zip(group, wavs):
            save_wav(wav_dir / f"{item.utt}.wav", wav, SAMPLE_RATE)
            result.written.append(item.utt)
            result.audio_seconds += len(wav) / SAMPLE_RATE
    return result


def _worker_batch(condition: str, items: list[Item], wav_dir: Path) -> BatchResult:
    assert _SYNTH is not None, "worker not initialised"
    return render_batch(_SYNTH, condition, items, wav_dir)


# ---- reference audio -------------------------------------------------------------------------------
def link_references(inputs: SplitInputs, ref_dir: Path) -> list[tuple[str, str]]:
    """Hard-link (or copy, across file systems) each ground-truth wav to `ref_dir/<utt>.wav`, so the
    report and the scorer see every system under one layout. Returns (utt, error) pairs."""
    errors = []
    ref_dir.mkdir(parents=True, exist_ok=True)
    for utt in inputs.utts:
        dst = ref_dir / f"{utt}.wav"
        if dst.exists():
            continue
        src = Path(inputs.wavs[utt])
        try:
            with atomic_path(dst) as tmp:
                tmp.unlink()
                try:
                    os.link(src, tmp)
                except OSError:
                    shutil.copyfile(src, tmp)
        except OSError as err:
            errors.append((utt, f"cannot link/copy {src}: {err}"))
    return errors


# ---- provenance ------------------------------------------------------------------------------------
def _file_record(path: Path) -> dict[str, Any]:
    rec: dict[str, Any] = {"path": str(path)}
    if path.exists():
        rec["modified"] = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC).isoformat(timespec="seconds")
    else:
        rec["missing"] = True
    return rec


def components_of(cond: Condition, cc: ConditionConfig, paths: RecipePaths, scp: dict[str, Path]) -> dict[str, Any]:
    """The files that made a condition: configs and checkpoints, for RESULTS.md."""
    out: dict[str, Any] = {}
    if cond.tokens == "gt":
        out["tokens"] = _file_record(scp["gt_scp"])
    elif cond.tokens == "lm":
        out["tokens"] = _file_record(scp["lm_scp"])
        out["lm_checkpoint"] = _file_record(paths.lm_model_dir / "model.pth")
        out["lm_config"] = _file_record(paths.lm_model_dir / "config.yaml")
    elif cond.tokens == "lm_scratch":
        out["tokens"] = _file_record(scp["lm_scratch_scp"])
        if paths.lm_scratch_dir is not None:
            out["lm_checkpoint"] = _file_record(paths.lm_scratch_dir / "best" / "model.pth")
    if cond.tokens != "none" or cond.decoder == "codec":
        out["codec"] = _file_record(paths.codec_dir / "config.yaml")
    if cond.uses_flow:
        out["flow_config"] = _file_record(paths.flow_dir(cc.flow_tag) / "config.yaml")
        out["flow_checkpoint"] = _file_record(paths.flow_dir(cc.flow_tag) / "best.pth")
    if cond.decoder == "vocoder":
        out["vocoder_config"] = _file_record(paths.vocoder_dir / "config.yaml")
        out["vocoder_checkpoint"] = _file_record(paths.vocoder_dir / "generator.pth")
    return out


def _flow_model_yaml(paths: RecipePaths, cc: ConditionConfig) -> dict[str, Any]:
    """The `model` section of a trained flow's config.yaml, read without loading the model ({} when absent)."""
    import yaml

    path = paths.flow_dir(cc.flow_tag) / "config.yaml"
    if not cc.flow_tag or not path.is_file():
        return {}
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("model") or {}


def flow_needs_prompt(paths: RecipePaths, cc: ConditionConfig) -> bool:
    return bool(_flow_model_yaml(paths, cc).get("use_prompt", False))


def flow_sampling(paths: RecipePaths, cc: ConditionConfig) -> dict[str, Any]:
    """The flow's own sampling settings (`model.sampling`: solver, n_steps, guidance), for the manifest."""
    return dict(_flow_model_yaml(paths, cc).get("sampling") or {})


# ---- the stage -------------------------------------------------------------------------------------
def plan_condition(
    cc: ConditionConfig, config: InferConfig, paths: RecipePaths, inputs: SplitInputs, scp: dict[str, Path],
    out_dir: Path,
) -> tuple[dict[str, Any], list[Item]]:
    """The manifest record of one condition and the utterances it still has to render.

    status: "failed" / "skipped" (optional) when a component or split file is missing, else "done"
    (per-utterance problems go to `errors`)."""
    cond = get_condition(cc.name)
    needs_prompt = cond.uses_flow and flow_needs_prompt(paths, cc)
    rec: dict[str, Any] = {
        "name": cond.name, "slug": cond.slug, "description": cond.description, "wav_dir": f"wav/{cond.slug}",
        "flow_tag": cc.flow_tag or None, "components": components_of(cond, cc, paths, scp), "errors": [],
    }
    if cond.uses_flow:
        sampling = flow_sampling(paths, cc)
        rec.update(n_steps=sampling.get("n_steps"), guidance=sampling.get("guidance"), seed=config.seed_of(cond.name),
                   batch_size=config.batch_size)
    missing = paths.missing(cond, cc) + split_input_problems(cond, inputs, scp, needs_prompt)
    if missing:
        rec.update(status="skipped" if cc.optional else "failed", reason="missing " + "; ".join(missing))
        if cc.optional:
            log.warning("'%s' skipped (optional): %s", cond.name, rec["reason"])
        return rec, []
    wav_dir = out_dir / "wav" / cond.slug
    newest_component = max((Path(c["path"]).stat().st_mtime for c in rec["components"].values()
                            if not c.get("missing")), default=0.0)
    items, stale = [], 0
    for utt in inputs.utts:
        wav = wav_dir / f"{utt}.wav"
        if wav.exists():  # complete (wavs are written atomically), unless a component is newer
            if wav.stat().st_mtime >= newest_component:
                continue
            stale += 1
        item = item_for(cond, utt, inputs, needs_prompt)
        if isinstance(item, str):
            rec["errors"].append({"utt": utt, "error": item})
        else:
            items.append(item)
    if stale:
        log.info("'%s': %d wavs are older than a checkpoint or config that made them: rendered again",
                 cond.name, stale)
    rec.update(status="done", n_utts=len(inputs.utts), n_existing=len(inputs.utts) - len(items) - len(rec["errors"]))
    return rec, items


def run_inference(
    config: InferConfig,
    config_path: str,
    data_dir: str | Path,
    dump_dir: str | Path,
    lm_dir: str | Path,
    flow_root: str | Path,
    vocoder_dir: str | Path,
    out_dir: str | Path,
    nj: int = 1,
    conditions: list[str] | None = None,
    job: JobSlice | None = None,
    lm_scratch_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Render the selected conditions (default: all of `config`); returns the manifest it wrote.
    `lm_scratch_dir`: the stage 3 run fine-tuned from random weights (LM from scratch + CD).

    `job` (job J of N of an array): only every N-th utterance, its timings to
    <out_dir>/jobs/timing.J.json and no manifest (returns {}); a last run without `job` finds the
    wavs written, adds the jobs' timings to the manifest and removes their files.

    Raises RuntimeError after writing everything that could be written when a non-optional
    condition misses a component or any utterance failed; the message lists every problem.
    """
    data_dir, dump_dir, out_dir = Path(data_dir), Path(dump_dir), Path(out_dir)
    paths = RecipePaths(dump_dir, Path(lm_dir), Path(flow_root), Path(vocoder_dir),
                        Path(lm_scratch_dir) if lm_scratch_dir else None)
    split = data_dir.name
    scp = {
        "gt_scp": dump_dir / split / "codec_ssl.scp", "lm_scp": paths.lm_dir / "decode" / split / "codec_ssl.scp",
        "lm_scratch_scp": (paths.lm_scratch_dir or Path("<--lm_scratch_dir>")) / "decode" / split / "codec_ssl.scp",
        "score": data_dir / "score.json", "utt2prompt": dump_dir / split / "utt2prompt",
    }
    inputs = read_split_inputs(data_dir, dump_dir, paths.lm_dir, paths.lm_scratch_dir)
    if not inputs.utts:
        raise RuntimeError(f"{data_dir}/wav.scp lists no utterance")
    wanted = [get_condition(c).name for c in conditions] if conditions else None
    selected = [cc for cc in config.conditions if wanted is None or cc.name in wanted]
    if wanted and len(selected) != len(wanted):
        raise ValueError(f"conditions {sorted(set(wanted) - {cc.name for cc in selected})} are not in {config_path}")

    problems: list[str] = []
    records: dict[str, dict[str, Any]] = {}
    tasks: list[tuple[str, list[Item]]] = []
    for cc in selected:
        rec, items = plan_condition(cc, config, paths, inputs, scp, out_dir)
        if job is not None:
            owned = set(job.select(sorted(inputs.utts)))
            items = [it for it in items if it.utt in owned]
        records[cc.name] = rec
        if rec["status"] == "failed":
            problems.append(f"'{cc.name}': {rec['reason']}")
        # Similar lengths share a batch, so padding stays small.
        items.sort(key=lambda it: (inputs.durations.get(it.utt, 0.0), it.utt))
        tasks += [(cc.name, items[i : i + config.batch_size]) for i in range(0, len(items), config.batch_size)]

    ref_errors = [] if job is not None else link_references(inputs, out_dir / "wav" / REFERENCE_SLUG)
    to_load = list(dict.fromkeys(name for name, _ in tasks))  # conditions with work left
    results = _execute(tasks, paths, config, to_load, out_dir, min(nj, len(tasks))) if tasks else []

    timing = {name: {"compute_seconds": 0.0, "audio_seconds": 0.0, "n_rendered": 0} for name in records}
    for res in results:
        rec = records[res.condition]
        rec["errors"] += [{"utt": u, "error": e} for u, e in res.errors]
        t = timing[res.condition]
        t["compute_seconds"] += res.seconds
        t["audio_seconds"] += res.audio_seconds
        t["n_rendered"] += len(res.written)
    for name, rec in records.items():
        if rec["errors"]:
            rec["status"] = "incomplete"
            problems += [f"'{name}' {e['utt']}: {e['error']}" for e in rec["errors"]]
    problems += [f"reference {u}: {e}" for u, e in ref_errors]
    job_files = sorted((out_dir / "jobs").glob("timing.*.json"))
    if job is not None:
        _add_job_timing(out_dir / "jobs" / f"timing.{job.job}.json", timing)
        if problems:
            raise RuntimeError(f"{job}: {len(problems)} problem(s); everything else was written:\n  "
                               + "\n  ".join(problems))
        return {}
    for path in job_files:  # the jobs' renderings, whose wavs this run found on disk
        _add_timing(timing, json.loads(path.read_text(encoding="utf-8")))

    manifest = _merge_manifest(out_dir / "manifest.json", {
        "version": MANIFEST_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "split": split,
        "paths": {"data_dir": str(data_dir), "dump_dir": str(dump_dir), "lm_dir": str(paths.lm_dir),
                  "lm_scratch_dir": str(paths.lm_scratch_dir) if paths.lm_scratch_dir else None,
                  "flow_root": str(paths.flow_root), "vocoder_dir": str(paths.vocoder_dir), "out_dir": str(out_dir)},
        "infer_config": {"path": str(config_path), "values": to_dict(config)},
        "nj": nj,
        "torch_threads_per_job": _threads_per_job(nj),
        "utterances": inputs.utts,
        "reference": {"name": "Ground truth", "slug": REFERENCE_SLUG, "wav_dir": f"wav/{REFERENCE_SLUG}"},
        "conditions": [records[cc.name] for cc in selected],
    }, timing)
    for path in job_files:  # counted in the manifest now
        path.unlink()
    if problems:
        raise RuntimeError(f"{len(problems)} problem(s); everything else was written:\n  " + "\n  ".join(problems))
    return manifest


def run_infer_stage(config_path: str, overrides: list[str] | None, conditions: list[str] | None,
                    data_dir: str | Path | None, split: str, dump_dir: str | Path | None, lm_dir: str | Path | None,
                    flow_root: str | Path | None, vocoder_dir: str | Path | None, out_dir: str | Path | None,
                    nj: int = 1, job: JobSlice | None = None, print_plan: bool = False,
                    lm_scratch_dir: str | Path | None = None) -> int:
    """Stage 6's rendering as `svslm.bin.infer` runs it; returns the exit status. The config
    (with `overrides`, cut to `conditions`) and any error are logged, not raised.
    `print_plan`: print one line per selected condition, its slug and the flow tag it renders
    with (`-` for none), and render nothing (the directories may then be None): run.sh reads from
    it which flows stage 4 trains and whether stage 3 also trains the LM from scratch."""
    try:
        config = load_infer_config(config_path, overrides)
        if conditions:
            config = select_conditions(config, conditions, config_path)
    except (ConfigError, ValueError) as err:
        log.error("%s: %s", config_path, err)
        return 1
    if print_plan:
        print("\n".join(f"{get_condition(cc.name).slug} {cc.flow_tag or '-'}" for cc in config.conditions))
        return 0
    try:
        manifest = run_inference(config, config_path, Path(data_dir) / split, dump_dir, lm_dir, flow_root,
                                 vocoder_dir, out_dir, nj=nj, job=job, lm_scratch_dir=lm_scratch_dir)
    except (RuntimeError, ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        return 1
    if job is not None:
        log.info("%s done; a run without --job writes the manifest", job)
        return 0
    for rec in manifest["conditions"]:
        t = rec.get("timing", {})
        rtf = f", RTF {t['rtf']:.3f}" if "rtf" in t else ""
        log.info("%-18s %s%s", rec["name"], rec["status"] + (f" ({rec['reason']})" if rec.get("reason") else ""), rtf)
    log.info("wrote %s/manifest.json", out_dir)
    return 0


def _add_timing(timing: dict[str, dict[str, float]], more: dict[str, dict[str, float]]) -> None:
    for name, t in more.items():
        if name in timing:
            for key, value in t.items():
                timing[name][key] += value


def _add_job_timing(path: Path, timing: dict[str, dict[str, float]]) -> None:
    """A job's timings, added to those of its earlier runs (a job re-run after a failure renders
    only what is missing; the merging run counts every run's wavs)."""
    total = {name: dict(t) for name, t in timing.items()}
    if path.is_file():
        _add_timing(total, json.loads(path.read_text(encoding="utf-8")))
    atomic_write_json(path, total)


def _threads_per_job(nj: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, nj)) if nj > 1 else torch.get_num_threads()


def _execute(tasks: list[tuple[str, list[Item]]], paths: RecipePaths, config: InferConfig, names: list[str],
             out_dir: Path, nj: int) -> list[BatchResult]:
    total = sum(len(items) for _, items in tasks)
    results: list[BatchResult] = []
    with tqdm(total=total, desc="synthesis", unit="utt") as bar:
        if nj <= 1:
            synth = Synthesizer.from_recipe(paths, config, names)
            for name, items in tasks:
                bar.set_postfix_str(name)
                results.append(render_batch(synth, name, items, out_dir / "wav" / get_condition(name).slug))
                bar.update(len(items))
            return results
        with process_executor(nj, _init_worker, (paths, config, names), threads=_threads_per_job(nj)) as pool:
            futures = {pool.submit(_worker_batch, name, items, out_dir / "wav" / get_condition(name).slug): (name, items)
                       for name, items in tasks}
            for fut in as_completed(futures):
                name, items = futures[fut]
                try:
                    results.append(fut.result())
                except Exception as err:  # noqa: BLE001 - a worker that died (e.g. loading failed): its utterances fail, others go on
                    results.append(BatchResult(name, errors=[(it.utt, f"{type(err).__name__}: {err}") for it in items]))
                bar.set_postfix_str(name)
                bar.update(len(items))
    return results


def _merge_manifest(path: Path, manifest: dict[str, Any], timing: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Add this run's timings to those of earlier runs that rendered the other wavs of a condition,
    so the real-time factor covers every wav on disk, and keep the records of conditions this run
    did not select (`--conditions`); then write atomically."""
    previous: dict[str, Any] = {}
    if path.is_file():
        try:
            previous = {c["name"]: c for c in json.loads(path.read_text(encoding="utf-8")).get("conditions", [])}
        except (json.JSONDecodeError, KeyError, TypeError):
            log.warning("%s unreadable; timings start afresh", path)
    for rec in manifest["conditions"]:
        t = dict(timing.get(rec["name"], {}))
        old = (previous.get(rec["name"]) or {}).get("timing")
        if old:
            for key in ("compute_seconds", "audio_seconds", "n_rendered"):
                t[key] = t.get(key, 0) + old.get(key, 0)
        if t.get("audio_seconds"):
            t["rtf"] = t["compute_seconds"] / t["audio_seconds"]
        if t:
            rec["timing"] = t
    manifest["conditions"] += [rec for name, rec in previous.items() if name not in timing]
    atomic_write_json(path, manifest)
    return manifest
