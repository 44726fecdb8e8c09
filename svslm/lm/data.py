"""Reading a split's `data.json` (docs/formats.md) and bucketing it into frame-budget batches.

`data.json` follows ESPnet-SpeechLM: `data_files` entries `"<path>,<name>,<type>"` name the svs_lb
text file (`svs_lb`), the speaker prompt ark index (`spk`) and the target ark index (`codec_ssl`);
`examples` lists the utterance ids. Arrays are read lazily through kaldiio, so a large corpus is
never held in memory.
"""
from __future__ import annotations

import json
import logging
import math
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np

from svslm.lm.sequence import SequenceConfig, build_example
from svslm.lm.vocab import Vocabulary
from svslm.utils.fileio import read_kaldi_map

log = logging.getLogger(__name__)


class DataError(ValueError):
    """A data.json or one of its files that does not follow docs/formats.md."""


def _resolve(path: str, json_path: Path) -> Path:
    """Paths in data.json are relative to the recipe directory; accept them beside the json too."""
    for cand in (Path(path), json_path.parent / Path(path).name):
        if cand.exists():
            return cand
    raise DataError(f"{json_path}: data file {path} not found")


@dataclass
class SplitData:
    """One split: svs_lb tokens per utterance, lazy prompt and target arrays, lengths."""

    name: str  # the data.json path, for messages
    utt_ids: list[str]
    svs_lb: dict[str, list[str]]
    prompts: dict | None  # utt -> int32 [P, 9] (lazy), None without a prompt file
    targets: dict | None  # utt -> int32 [T, 9] (lazy), None when decoding a split without targets
    num_frames: dict[str, int]  # T per utterance

    def prompt(self, utt: str) -> np.ndarray | None:
        return None if self.prompts is None else np.asarray(self.prompts[utt])

    def target(self, utt: str) -> np.ndarray:
        if self.targets is None:
            raise DataError(f"{self.name}: no codec_ssl target file")
        return np.asarray(self.targets[utt])


def read_data_json(data_json: str | Path, need_targets: bool = True) -> SplitData:
    data_json = Path(data_json)
    try:
        meta = json.loads(data_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{data_json}: cannot read: {err}") from err
    if meta.get("task") != "svs":
        raise DataError(f"{data_json}: task is {meta.get('task')!r}, expected 'svs'")
    files: dict[str, Path] = {}
    for entry in meta.get("data_files", []):
        parts = entry.split(",")
        if len(parts) != 3:
            raise DataError(f"{data_json}: data_files entry {entry!r} is not '<path>,<name>,<type>'")
        files[parts[1]] = _resolve(parts[0], data_json)
    if "svs_lb" not in files or (need_targets and "codec_ssl" not in files):
        raise DataError(f"{data_json}: data_files must name svs_lb and codec_ssl, got {sorted(files)}")
    utt_ids = [str(u) for u in meta.get("examples", [])]
    if not utt_ids:
        raise DataError(f"{data_json}: no examples")
    svs_lb = {u: v.split() for u, v in read_kaldi_map(files["svs_lb"]).items()}
    prompts = kaldiio.load_scp(str(files["spk"])) if "spk" in files else None
    targets = kaldiio.load_scp(str(files["codec_ssl"])) if "codec_ssl" in files else None
    missing = [
        f"{u} ({name})"
        for u in utt_ids
        for name, table in (("svs_lb", svs_lb), ("spk", prompts), ("codec_ssl", targets))
        if table is not None and u not in table
    ]
    if missing:
        raise DataError(f"{data_json}: {len(missing)} example(s) missing from their files: {missing[:20]}")
    n_frames_file = _resolve(meta["length_file"], data_json) if "length_file" in meta else data_json.parent / "utt2num_frames"
    if n_frames_file.is_file():
        num_frames = {u: int(v) for u, v in read_kaldi_map(n_frames_file).items()}
        absent = [u for u in utt_ids if u not in num_frames]
        if absent:
            raise DataError(f"{n_frames_file}: no frame count for {absent[:20]}")
    elif targets is not None:
        num_frames = {u: int(np.asarray(targets[u]).shape[0]) for u in utt_ids}
    else:
        raise DataError(f"{data_json}: neither utt2num_frames nor codec_ssl gives the frame counts")
    return SplitData(str(data_json), utt_ids, svs_lb, prompts, targets, num_frames)


class SVSDataset:
    """Training examples (delay not applied yet) and their sequence lengths.

    A prompt longer than `speaker_prompt_length` is cropped at a random start, as ESPnet does; the
    start depends only on (seed, utterance, epoch), so a resumed run sees the same crops."""

    def __init__(self, split: SplitData, vocab: Vocabulary, conf: SequenceConfig | None = None, seed: int = 0):
        self.split = split
        self.vocab = vocab
        self.conf = conf or SequenceConfig()
        self.seed = seed
        self.epoch = 0
        first_prompt = split.prompt(split.utt_ids[0])
        # Stage 2 tiles/crops every prompt to the same P frames, so one read gives all lengths.
        pad_rows = vocab.nq - 1
        if first_prompt is None:
            prompt_rows = 0
        else:
            P = self.conf.speaker_prompt_length
            P = P if len(first_prompt) > P or self.conf.pad_speaker_prompt else len(first_prompt)
            prompt_rows = 1 + P + pad_rows
        self.lengths = {
            u: 2 + 1 + len(split.svs_lb[u]) + pad_rows + prompt_rows + 1 + split.num_frames[u] + 1 + pad_rows
            for u in split.utt_ids
        }

    def check(self) -> None:
        """Build every example once, reporting every bad utterance (not just the first)."""
        errors = []
        for utt in self.split.utt_ids:
            try:
                self.example(utt)
            except ValueError as err:
                errors.append(str(err))
        if errors:
            raise DataError(f"{self.split.name}: {len(errors)} bad utterance(s):\n  " + "\n  ".join(errors))

    def example(self, utt: str) -> tuple[str, np.ndarray, np.ndarray]:
        where = f"{self.split.name} utterance {utt}"
        target = self.split.target(utt)
        if len(target) != self.split.num_frames[utt]:
            raise DataError(f"{where}: codec_ssl has {len(target)} frames, utt2num_frames says {self.split.num_frames[utt]}")
        rng = random.Random(zlib.crc32(f"{self.seed} {self.epoch} {utt}".encode()))
        seq, mask = build_example(self.vocab, self.split.svs_lb[utt], self.split.prompt(utt), target, where, self.conf, rng)
        return utt, seq, mask


def make_batches(lengths: dict[str, int], batch_bins: int, max_batch_size: int = 0) -> list[list[str]]:
    """Bucket utterances by length: each batch's padded size (count x longest) stays within
    `batch_bins` positions, like ESPnet's length-sorted batch_bins. Deterministic."""
    order = sorted(lengths, key=lambda u: (lengths[u], u))
    batches: list[list[str]] = []
    current: list[str] = []
    for utt in order:
        longest = max(lengths[utt], *(lengths[u] for u in current)) if current else lengths[utt]
        too_big = (len(current) + 1) * longest > batch_bins
        too_many = max_batch_size > 0 and len(current) >= max_batch_size
        if current and (too_big or too_many):
            batches.append(current)
            current = []
        current.append(utt)
    if current:
        batches.append(current)
    oversized = [b[0] for b in batches if len(b) == 1 and lengths[b[0]] > batch_bins]
    if oversized:
        log.warning("%d utterance(s) exceed batch_bins=%d alone and form their own batch: %s",
                    len(oversized), batch_bins, oversized[:5])
    return batches


def epoch_order(n_batches: int, seed: int, epoch: int) -> list[int]:
    """Batch order of an epoch: a shuffle that depends only on (seed, epoch), so a resumed run
    replays the same order from its saved position."""
    order = list(range(n_batches))
    random.Random(seed * 100003 + epoch).shuffle(order)
    return order


def steps_per_epoch(n_batches: int, grad_accum: int) -> int:
    """Optimizer steps per epoch; the last incomplete accumulation of an epoch is dropped."""
    return max(1, math.floor(n_batches / grad_accum))
