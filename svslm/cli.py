"""`svslm <command> ...`: one console entry point for the user-facing commands.

Each command is the module `svslm.bin.<module>` with a `main(argv)` function, the same code the
recipe stages call through `python -m svslm.bin.<module>`.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "score": ("score", "score a directory of synthesized wavs against references"),
    "sing": ("sing", "synthesize a song from a MusicXML, MIDI or Opencpop score"),
    "prepare-data": ("prepare_data", "stage 1: corpus -> Kaldi-style data directories"),
    "tokenize": ("tokenize", "stage 2: scores and audio -> svs_lb and codec_ssl tokens"),
    "report": ("report", "stage 6: RESULTS.md and the HTML report of an evaluation directory"),
    "lm-probe": ("lm_probe", "what an ESPnet-SpeechLM checkpoint is: geometry, vocabulary, logits of one example"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: svslm <command> [options]\n\ncommands:")
        for name, (_, doc) in COMMANDS.items():
            print(f"  {name:14s} {doc}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"svslm: unknown command '{name}'; known: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"svslm.bin.{COMMANDS[name][0]}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
