"""What is this checkpoint? Geometry, vocabulary blocks, what loading tolerated; optionally the
`svs` sequence, logits, loss and greedy decode of one example (before spending GPU hours on it).

    svslm lm-probe exp/opuslm_1.7b --out_dir probe/
    svslm lm-probe extended/model.pth --config example/config.yaml --out_dir probe/ \
        --inputs example/inputs.json --greedy_frames 12

MODEL is a checkpoint directory or a weights file; `--config` replaces the config.yaml beside it
and `--override key=value` edits it (e.g. speaker_prompt_length=12). With `--inputs` (the format of
ESPnet fixture's inputs.json: `label`, `prompt_local`, `target_local`) it writes
    O/sequence.npy  int64 [L, nq]: the undelayed sequence (global ids)
    O/logits.npy    float32 [L-1, nq, V]: logits for its delayed input
    O/probe.json    {"loss": ..., "greedy_frames_global": [[nq ids], ...]} (N greedy frames from the
                    prefix, undelayed; N = --greedy_frames, default the target's frame count)
With `--delayed_input X.npy` (int [L-1, nq]), O/logits.npy holds the logits for that tensor instead.
"""
from __future__ import annotations

import argparse
import sys

from svslm.lm.probe import probe
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="checkpoint directory or weights file")
    parser.add_argument("--config", default=None, help="config.yaml to use instead of the one beside MODEL")
    parser.add_argument("--out_dir", required=True, help="output directory")
    parser.add_argument("--inputs", default=None, help="one svs example (inputs.json format)")
    parser.add_argument("--delayed_input", default=None, help="int [L-1, nq] .npy: write its logits")
    parser.add_argument("--greedy_frames", type=int, default=None, help="frames of greedy decoding (with --inputs)")
    parser.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="edit a config.yaml value, e.g. speaker_prompt_length=12 (repeatable)")
    args = parser.parse_args(argv)
    setup_logging()
    return probe(args.model, args.out_dir, args.config, args.override, args.inputs, args.delayed_input, args.greedy_frames)


if __name__ == "__main__":
    sys.exit(main())
