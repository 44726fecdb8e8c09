"""Does the LM follow the score? LM + CD quality of LM weights against training time.

For each weights file (lm_train's snapshots/step<N>.pth, or checkpoint dirs), decode the first
`--n_utts` utterances of a dump split with the decoding config, turn the tokens into audio with the
dump's codec decoder (the paper's LM + CD), and score them against the reference recordings with
the recipe's F0/MCD scorer (VERSA's mcd_f0, dtw: false). Writes one JSON line per weights file and,
with --plot, F0_CORR and MCD against the training step.

    python bench/lm_follow.py --init_dir exp/mini_zoo/slm_init --weights exp/mini_zoo/slm/snapshots/step*.pth \\
        --dump_dir exp/mini_zoo/speech/dump --data_dir exp/mini_zoo/speech/data --split dev --out out.jsonl

`--init_dir` gives config.yaml and hf_config/ for bare snapshot files (the token list they were
trained with); a checkpoint directory in --weights carries its own.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svslm.evaluate.mcd_f0 import McdF0Config, mcd_f0
from svslm.lm.checkpoint import HF_CONFIG_DIR
from svslm.lm.data import read_data_json
from svslm.lm.inference import DecodeConfig, decode, load_lm
from svslm.tokenize.codec import load_codec
from svslm.utils.audio import SAMPLE_RATE, load_wav
from svslm.utils.config import load_config
from svslm.utils.fileio import append_jsonl, read_kaldi_map


def model_dir(weights: Path, init_dir: Path | None, scratch: Path) -> Path:
    if weights.is_dir():
        return weights
    if init_dir is None:
        raise SystemExit(f"{weights}: a bare weights file needs --init_dir (config.yaml + hf_config/)")
    d = scratch / weights.stem
    d.mkdir()
    shutil.copyfile(init_dir / "config.yaml", d / "config.yaml")
    shutil.copytree(init_dir / HF_CONFIG_DIR, d / HF_CONFIG_DIR)
    (d / "model.pth").symlink_to(weights.resolve())
    return d


def step_of(path: Path) -> int | None:
    m = re.search(r"step(\d+)", path.name)
    return int(m.group(1)) if m else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", type=Path, required=True, help="snapshot files or checkpoint dirs")
    parser.add_argument("--init_dir", type=Path, help="config.yaml + hf_config/ for bare snapshot files")
    parser.add_argument("--dump_dir", type=Path, required=True, help="stage 2 dump (tokenizers/codec, <split>/data.json)")
    parser.add_argument("--data_dir", type=Path, required=True, help="stage 1 data (<split>/wav.scp)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--n_utts", type=int, default=8)
    parser.add_argument("--decode_config", type=Path, default=Path(__file__).resolve().parents[1] / "conf/decode/tiny.yaml")
    parser.add_argument("--label", default="", help="written into every line (e.g. the run's name)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="training minutes behind these weights, written into the line for bench/lm_curves.py "
                             "(e.g. the speech pretraining a fine-tuned LM started from)")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    args = parser.parse_args(argv)

    conf = load_config(args.decode_config, DecodeConfig)
    split = read_data_json(args.dump_dir / args.split / "data.json", need_targets=False)
    utts = sorted(split.utt_ids)[: args.n_utts]
    codec = load_codec(args.dump_dir / "tokenizers" / "codec")
    wavs = read_kaldi_map(args.data_dir / args.split / "wav.scp")
    refs = {u: load_wav(wavs[u], SAMPLE_RATE) for u in utts}
    metric_cfg = McdF0Config()
    with tempfile.TemporaryDirectory() as scratch:
        for weights in sorted(args.weights, key=lambda p: (step_of(p) or 0, str(p))):
            start = time.time()
            model, vocab = load_lm(model_dir(weights, args.init_dir, Path(scratch)), "cpu")
            tokens = decode(model, vocab, [split.svs_lb[u] for u in utts], [split.prompt(u) for u in utts], conf, seed=conf.seed)
            rows = []
            for u, t in zip(utts, tokens):
                hyp = codec.decode(t[:, 1:].astype(np.int64))
                rows.append(mcd_f0(hyp, refs[u], metric_cfg))
            mean = {k: float(np.mean([r[k] for r in rows if isinstance(r[k], float)])) for k in ("F0_CORR", "F0_RMSE", "MCD")}
            line = {"label": args.label, "weights": str(weights), "step": step_of(weights), "minutes": args.minutes,
                    "split": args.split,
                    "n_utts": len(utts), **mean, "seconds": round(time.time() - start, 1)}
            print(json.dumps(line), flush=True)
            append_jsonl(args.out, line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
