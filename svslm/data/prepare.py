"""Stage 1: a corpus on disk -> validated `data/{train,dev,test}/` directories.

1. The corpus's parser reads the annotation (no audio) into `Utterance`s.
2. Splits: the corpus's train and test; dev is the corpus's validation split, or, when it has
   none, the last `dev_size` good utterances of sorted train (ESPnet's egs2 rule), chosen after
   the bad ones are left out (step 4), so `skip_bad` cannot empty dev while good ones remain. A
   train split with no more than `dev_size` good utterances gives a tenth of them (at least one)
   to dev instead, and the stage says so. A song in test must not appear in train or dev.
3. Each utterance's score is checked; its audio is read, checked, resampled to `fs` and cut
   to the label's end, in `nj` processes. Every problem of every utterance is collected.
4. Bad utterances fail the stage (listed in full) or, with `skip_bad`, are left out and listed
   in `data/skipped.txt`. Each split directory is built under a temporary name and renamed.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from svslm.data.ace_opencpop import find_shards, iter_shard_audio, read_ace_opencpop
from svslm.data.opencpop import read_opencpop
from svslm.data.utterance import Utterance
from svslm.data.validate import Tolerances, check_score, fit_to_audio, normalize_times
from svslm.data.writer import write_split
from svslm.utils.audio import resample, save_wav
from svslm.utils.config import to_dict
from svslm.utils.fileio import atomic_dir, atomic_write_json, atomic_write_text
from svslm.utils.workers import process_pool

log = logging.getLogger("svslm")

READERS: dict[str, Callable[[str | Path], list[Utterance]]] = {
    "ace_opencpop": read_ace_opencpop,
    "opencpop": read_opencpop,
}
SPLIT_NAMES = {"train": "train", "validation": "dev", "test": "test"}  # corpus split -> data/<split>
OUTPUT_SPLITS = ("train", "dev", "test")


@dataclass
class PrepareConfig:
    dev_size: int = 50  # dev = last N of sorted train, used only when the corpus has no validation split
    contiguity_tolerance: float = 0.001  # s: largest gap or overlap between consecutive phones
    note_phone_tolerance: float = 0.02  # s: largest distance between a note boundary and its phones'
    label_audio_tolerance: float = 0.1  # s: largest label-end vs audio-length difference (beyond trailing rests)
    allow_upsampling: bool = False  # accept audio recorded below --fs (its top band would stay empty)
    allow_shared_songs: bool = False  # accept test songs that also occur in train/dev (leaks the test set)

    def tolerances(self) -> Tolerances:
        return Tolerances(self.contiguity_tolerance, self.note_phone_tolerance, self.label_audio_tolerance)


class PrepareError(RuntimeError):
    """The corpus has bad utterances (listed) or cannot be split without leaking test songs."""


@dataclass
class _Task:
    utt: Utterance
    score_ok: bool
    audio_bytes: bytes | None
    audio_path: str | None
    wav_out: str  # where to write the prepared wav (inside the temporary split directory)


@dataclass
class _Result:
    utt_id: str
    utt: Utterance | None  # the fitted utterance, None when bad
    n_samples: int
    problems: list[str]


def _read_audio(task: _Task) -> tuple[np.ndarray, int]:
    """Samples [N, channels] and rate; raises ValueError with the reason."""
    source = io.BytesIO(task.audio_bytes) if task.audio_bytes is not None else task.audio_path
    if source is None:
        raise ValueError("no audio (neither bytes nor path)")
    try:
        wav, sr = sf.read(source, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several error types for unreadable data
        raise ValueError(f"unreadable ({err})") from err
    return wav, sr


def _process(task: _Task, fs: int, cfg: PrepareConfig) -> _Result:
    """Check one utterance's audio against its label and write it at `fs` (worker process)."""
    utt, problems = task.utt, []
    source = task.audio_path if task.audio_bytes is None else "bytes"  # the place is in the report
    try:
        wav, sr = _read_audio(task)
    except ValueError as err:
        return _Result(utt.utt_id, None, 0, [f"audio {source}: {err}"])
    if wav.shape[1] != 1:
        problems.append(f"audio {source}: {wav.shape[1]} channels, expected mono")
    if wav.shape[0] == 0:
        problems.append(f"audio {source}: empty")
    elif not np.all(np.isfinite(wav)):
        problems.append(f"audio {source}: contains NaN or Inf samples")
    if sr <= 0:
        problems.append(f"audio {source}: invalid sample rate {sr} Hz")
    elif sr < fs and not cfg.allow_upsampling:
        problems.append(f"audio {source}: sample rate {sr} Hz is below the target {fs} Hz (allow_upsampling: false)")
    if problems or not task.score_ok:
        return _Result(utt.utt_id, None, 0, problems)
    fitted, problem = fit_to_audio(utt, wav.shape[0] / sr, cfg.tolerances())
    if problem:
        return _Result(utt.utt_id, None, 0, [problem])
    fitted = normalize_times(fitted)
    audio = resample(wav[:, 0], sr, fs, where=source)
    n = round(fitted.end * fs)
    audio = np.pad(audio[:n], (0, max(0, n - audio.shape[0])))  # cut, or pad under a shortened rest
    save_wav(task.wav_out, audio, fs)
    return _Result(utt.utt_id, fitted, n, [])


def _process_star(args: tuple[_Task, int, PrepareConfig]) -> _Result:
    return _process(*args)


def assign_splits(utts: list[Utterance]) -> dict[str, str]:
    """utt id -> output split as the corpus has it (dev = its validation split; `choose_dev` may
    move train utterances to dev later)."""
    return {u.utt_id: SPLIT_NAMES[u.corpus_split] for u in utts}


def choose_dev(good_train: list[str], dev_size: int) -> tuple[list[str], str]:
    """The dev utterances taken out of a corpus without a validation split, and the rule applied.

    ESPnet's rule: the last `dev_size` of sorted train. When train has no more than `dev_size`
    good utterances, that would leave train empty: a tenth of them (at least one) instead."""
    ids = sorted(good_train)
    if dev_size <= 0:
        return [], "dev_size 0: no dev utterances"
    if len(ids) > dev_size:
        return ids[-dev_size:], f"dev = the last {dev_size} of {len(ids)} good train utterances (sorted)"
    if len(ids) < 2:
        raise PrepareError(f"train has {len(ids)} good utterance(s): too few to hold out a dev set "
                           "(the corpus has no validation split)")
    k = max(1, len(ids) // 10)
    return ids[-k:], (f"train has only {len(ids)} good utterances, not more than dev_size={dev_size}: "
                      f"dev = the last {k} (a tenth, at least one), train keeps {len(ids) - k}")


def check_song_leak(utts: list[Utterance], split_of: dict[str, str]) -> list[str]:
    """Songs that occur both in test and in train/dev."""
    test_songs = {u.song for u in utts if split_of[u.utt_id] == "test"}
    return sorted({u.song for u in utts if split_of[u.utt_id] != "test"} & test_songs)


def _batched(items: Iterator, n: int) -> Iterator[list]:
    while batch := list(itertools.islice(items, n)):
        yield batch


def _tasks(utts: list[Utterance], score_ok: dict[str, bool], wav_out: dict[str, str]) -> Iterator[_Task]:
    """Tasks in the corpus's storage order; parquet audio is streamed a few rows at a time."""
    by_ref = {(u.audio.shard, u.audio.row): u for u in utts if u.audio.shard is not None}
    for shard in sorted({u.audio.shard for u in utts if u.audio.shard is not None}):
        for row, data, path in iter_shard_audio(shard):
            utt = by_ref.get((shard, row))
            if utt is not None:
                if data is None and path is not None and not Path(path).is_absolute():
                    path = str(Path(shard).parent / path)
                yield _Task(utt, score_ok[utt.utt_id], data, path, wav_out[utt.utt_id])
    for u in utts:
        if u.audio.path is not None:
            yield _Task(u, score_ok[u.utt_id], None, u.audio.path, wav_out[u.utt_id])


def _done_marker(data_dir: Path) -> Path:
    return data_dir / "prepare.json"


def _corpus_fingerprint(fmt: str, db_root: Path) -> str:
    """Size and modification time of the corpus's annotation files: a changed corpus is prepared again."""
    if fmt == "ace_opencpop":
        files = [p for paths in find_shards(db_root).values() for p in paths]
    else:
        files = [db_root / "segments" / n for n in ("transcriptions.txt", "train.txt", "test.txt")]
    digest = hashlib.sha256()
    for f in files:
        if f.is_file():
            stat = f.stat()
            digest.update(f"{f.relative_to(db_root)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _annotation_problems(utts: list[Utterance], tol: Tolerances) -> dict[str, list[str]]:
    """utt id -> problems of its annotation: parse errors, repeated ids, score checks."""
    problems: dict[str, list[str]] = {}
    first_seen: dict[str, str] = {}
    for u in utts:
        if u.utt_id in first_seen:
            problems.setdefault(u.utt_id, []).append(f"utterance id repeated (also at {first_seen[u.utt_id]})")
        first_seen.setdefault(u.utt_id, u.where)
        found = u.problems or check_score(u, tol)
        if found:
            problems.setdefault(u.utt_id, []).extend(found)
    return problems


def _process_audio(utts: list[Utterance], problems: dict[str, list[str]], wav_out: dict[str, str], fs: int,
                   nj: int, cfg: PrepareConfig) -> dict[str, _Result]:
    """Check, resample and write every utterance's audio in `nj` processes; adds to `problems`."""
    score_ok = {u.utt_id: u.utt_id not in problems for u in utts}
    results: dict[str, _Result] = {}
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(process_pool(nj, threads=None)) if nj > 1 else None  # no torch here
        bar = stack.enter_context(tqdm(total=len(utts), desc="stage 1: audio", unit="utt", mininterval=5))
        # Bounded batches: the parquet audio is read only as fast as the workers use it.
        for batch in _batched(_tasks(utts, score_ok, wav_out), max(1, nj) * 8):
            args = [(t, fs, cfg) for t in batch]
            for res in pool.map(_process_star, args) if pool else map(_process_star, args):
                results[res.utt_id] = res
                if res.problems:
                    problems.setdefault(res.utt_id, []).extend(res.problems)
            bar.update(len(batch))
    for u in utts:
        if u.utt_id not in results:
            problems.setdefault(u.utt_id, []).append("no audio found for this utterance")
    return results


def prepare(
    fmt: str, db_root: str | Path, data_dir: str | Path, fs: int, nj: int, skip_bad: bool, cfg: PrepareConfig
) -> dict:
    """Run stage 1; returns a summary (utterance counts). Raises PrepareError on bad input."""
    data_dir = Path(data_dir)
    options = {"format": fmt, "db_root": str(Path(db_root).resolve()), "fs": fs, "skip_bad": skip_bad,
               "config": to_dict(cfg), "corpus": _corpus_fingerprint(fmt, Path(db_root))}
    marker = _done_marker(data_dir)
    if marker.is_file() and all((data_dir / s / "score.json").is_file() for s in OUTPUT_SPLITS):
        done = json.loads(marker.read_text(encoding="utf-8"))
        if done.get("options") == options:
            log.info("%s: already prepared with these options; nothing to do", data_dir)
            return done
    utts = READERS[fmt](db_root)
    log.info("%s: %d utterances in the annotation", db_root, len(utts))
    problems = _annotation_problems(utts, cfg.tolerances())
    where = {u.utt_id: u.where for u in reversed(utts)}  # the first place an id occurs
    unique = list({u.utt_id: u for u in utts}.values())
    split_of = assign_splits(unique)
    has_validation = any(u.corpus_split == "validation" for u in unique)
    leaked = check_song_leak(unique, split_of)
    if leaked and not cfg.allow_shared_songs:
        raise PrepareError(
            f"{db_root}: test songs also in train/dev: {', '.join(leaked)} (the test set would leak; "
            "set allow_shared_songs: true to accept)"
        )
    marker.unlink(missing_ok=True)  # from here on, the old output no longer matches a marker
    with contextlib.ExitStack() as stack:
        tmp_dirs = {s: stack.enter_context(atomic_dir(data_dir / s)) for s in OUTPUT_SPLITS}
        for tmp in tmp_dirs.values():
            (tmp / "wav").mkdir()
        wav_out = {u.utt_id: str(tmp_dirs[split_of[u.utt_id]] / "wav" / f"{u.utt_id}.wav") for u in unique}
        results = _process_audio(unique, problems, wav_out, fs, nj, cfg)
        report = "".join(f"{i} {where[i]}: {'; '.join(reasons)}\n" for i, reasons in sorted(problems.items()))
        if problems and not skip_bad:
            for line in report.splitlines():
                log.error("bad utterance: %s", line)
            raise PrepareError(
                f"{len(problems)} of {len(unique)} utterances are bad (listed above); fix the corpus or "
                "run with --skip_bad true to leave them out"
            )
        dev_rule = "dev = the corpus's validation split"
        if not has_validation:  # dev from the good train utterances: move their wavs over
            good_train = [u.utt_id for u in unique if split_of[u.utt_id] == "train" and u.utt_id not in problems]
            dev_ids, dev_rule = choose_dev(good_train, cfg.dev_size)
            for utt_id in dev_ids:
                split_of[utt_id] = "dev"
                moved = str(tmp_dirs["dev"] / "wav" / f"{utt_id}.wav")
                os.replace(wav_out[utt_id], moved)
                wav_out[utt_id] = moved
            (log.warning if "only" in dev_rule else log.info)("%s", dev_rule)
        counts = {}
        for split in OUTPUT_SPLITS:
            good = [results[u.utt_id].utt for u in unique if split_of[u.utt_id] == split and u.utt_id not in problems]
            if not good:
                raise PrepareError(f"{db_root}: no usable utterance left in split '{split}'")
            n_samples = {u.utt_id: results[u.utt_id].n_samples for u in good}
            wav_paths = {u.utt_id: str(data_dir / split / "wav" / f"{u.utt_id}.wav") for u in good}
            write_split(tmp_dirs[split], good, wav_paths, n_samples, fs)
            counts[split] = {"utts": len(good), "hours": round(sum(n_samples.values()) / fs / 3600, 4),
                             "speakers": len({u.speaker for u in good})}
    skipped = data_dir / "skipped.txt"
    if problems:
        atomic_write_text(skipped, report)
        log.warning("skipped %d bad utterances, listed in %s", len(problems), skipped)
    else:
        skipped.unlink(missing_ok=True)
    summary = {"options": options, "splits": counts, "skipped": len(problems), "dev_rule": dev_rule}
    atomic_write_json(marker, summary)
    for split, c in counts.items():
        log.info("%s/%s: %d utterances, %.3f h, %d singers", data_dir, split, c["utts"], c["hours"], c["speakers"])
    return summary
