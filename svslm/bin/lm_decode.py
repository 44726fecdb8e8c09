"""Stage 3: decode codec_ssl tokens for a split with the fine-tuned LM (resumable by chunk).

    python -m svslm.bin.lm_decode --config conf/decode/tiny.yaml --model_dir exp/lm/mini/best \
        --data_json dump/test/data.json --out_dir exp/lm/mini/decode/test

Writes out_dir/codec_ssl.scp + out_dir/data/chunk*.ark: int32 [T, 9] local ids per utterance
(docs/formats.md), T = the score's frame count. Chunks whose .scp exists are skipped on a re-run.
As a job array (run.sh --num_jobs N): `--job JOB --num_jobs N` decodes every N-th chunk and does
not merge; a last run without --job merges (and decodes any chunk a killed job left).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import kaldiio
from tqdm import tqdm

from svslm.bin.args import add_override
from svslm.lm.data import load_split
from svslm.lm.inference import DecodeConfig, decode, load_lm
from svslm.utils.config import load_config
from svslm.utils.device import resolve_device
from svslm.utils.fileio import atomic_path, atomic_write_text, read_kaldi_map
from svslm.utils.jobs import add_job_args, job_from_args
from svslm.utils.logging import setup_logging

CHUNK_BATCHES = 4  # batches per resumable chunk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="decoding YAML (conf/decode/*.yaml)")
    parser.add_argument("--model_dir", required=True, help="checkpoint: directory (config.yaml + weights) or weights file")
    parser.add_argument("--data_json", required=True, help="dump/<split>/data.json")
    parser.add_argument("--out_dir", required=True, help="output directory")
    parser.add_argument("--device", default="auto", help="torch device: auto (CUDA when present), cpu, cuda, cuda:1, ...")
    add_job_args(parser)
    add_override(parser)
    args = parser.parse_args(argv)
    log = setup_logging()

    job = job_from_args(args)
    conf = load_config(args.config, DecodeConfig, args.override)
    device = str(resolve_device(args.device))  # a device this machine lacks fails before any work
    model = vocab = None  # loaded when a chunk is left to decode (a merging run may have none)
    split = load_split(args.data_json, need_targets=False)
    out_dir = Path(args.out_dir)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    utts = sorted(split.utt_ids)
    size = conf.batch_size * CHUNK_BATCHES
    chunks = [utts[i : i + size] for i in range(0, len(utts), size)]
    for c, chunk in enumerate(tqdm(chunks, desc="decode chunks")):
        scp = out_dir / "data" / f"chunk{c}.scp"
        if scp.is_file() or (job is not None and not job.owns(c)):
            continue
        if model is None:
            model, vocab = load_lm(args.model_dir, device)
        # One seed per chunk: a resumed run gives the same tokens as an uninterrupted one.
        tokens = decode(model, vocab, [split.svs_lb[u] for u in chunk], [split.prompt(u) for u in chunk],
                        conf, seed=conf.seed + c)
        ark = out_dir / "data" / f"chunk{c}.ark"
        with atomic_path(scp) as tmp_scp, kaldiio.WriteHelper(f"ark,scp:{ark},{tmp_scp}", write_function="numpy") as writer:
            for utt, arr in zip(chunk, tokens):
                writer(utt, arr)
    if job is not None:
        log.info("%s: decoded its chunks of %d", job, len(chunks))
        return 0
    lines: dict[str, str] = {}
    for c in range(len(chunks)):
        lines.update(read_kaldi_map(out_dir / "data" / f"chunk{c}.scp"))
    atomic_write_text(out_dir / "codec_ssl.scp", "".join(f"{u} {lines[u]}\n" for u in sorted(lines)))
    log.info("wrote %s: %d utterances", out_dir / "codec_ssl.scp", len(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
