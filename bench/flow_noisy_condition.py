"""Simulated LM decodes for measuring the flow before stage 3 has decoded anything.

    python bench/flow_noisy_condition.py --dump_dir dump --out_dir exp/flow_bench/noisy_decode --fraction 0.25

Copies `dump/<split>/codec_ssl.scp` for every split with the 8 codec columns of a random
`fraction` of frames replaced by uniform random codes (the SSL column untouched), in the layout
of `exp/lm/<tag>/decode/<split>/` (docs/formats.md), so that `--lm_decode_dir <out_dir>` trains
and benchmarks the flow on a condition that is wrong in known places. Not an LM: results on it
say whether the flow repairs corrupted frames, not how it does on real decodes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import kaldiio
import numpy as np

from svslm.tokenize.codec import load_codec
from svslm.utils.fileio import read_kaldi_map


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="codec_ssl with a fraction of frames' codec codes randomised")
    parser.add_argument("--dump_dir", required=True, type=Path)
    parser.add_argument("--out_dir", required=True, type=Path)
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    codebook_size = load_codec(args.dump_dir / "tokenizers" / "codec").codebook_size
    rng = np.random.default_rng(args.seed)
    for split in args.splits:
        out = args.out_dir / split
        out.mkdir(parents=True, exist_ok=True)
        scp = read_kaldi_map(args.dump_dir / split / "codec_ssl.scp")
        with kaldiio.WriteHelper(f"ark,scp:{out}/codec_ssl.ark,{out}/codec_ssl.scp", write_function="numpy") as writer:
            for utt, address in scp.items():
                tokens = np.array(kaldiio.load_mat(address))
                hit = rng.random(len(tokens)) < args.fraction
                tokens[hit, 1:] = rng.integers(0, codebook_size, size=(int(hit.sum()), tokens.shape[1] - 1))
                writer(utt, tokens)
        print(f"{split}: {len(scp)} utterances -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
