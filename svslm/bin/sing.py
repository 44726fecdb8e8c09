"""Sing your own score with a trained recipe run.

    svslm sing song.musicxml --singer <singer id> --out song.wav
    svslm sing song.mid --lyrics song.txt --reference_wav me.wav --out song.wav --key_shift -2
    svslm sing transcriptions.txt --utt 2001000001 --singer <singer id> --out line.wav
    svslm sing song.ustx --part 2 --singer <singer id> --out song.wav --write_ds song.ds

Inputs: MusicXML (.musicxml .xml .mxl), MIDI with lyric events or a --lyrics text (.mid .midi
.kar), one line of an Opencpop transcriptions.txt (.txt), OpenUtau projects (.ustx), UTAU
projects (.ust), DiffSinger files (.ds). See docs/sing.md.
"""
from __future__ import annotations

import argparse
import sys

from svslm.infer.conditions import CONDITIONS
from svslm.sing.synthesize import sing
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="svslm sing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("score", help="MusicXML, MIDI, Opencpop transcriptions.txt, USTX, UST or .ds file")
    voice = parser.add_mutually_exclusive_group(required=True)
    voice.add_argument("--singer", help="a singer id of the training data (data/train/spk2utt)")
    voice.add_argument("--reference_wav", help="a recording whose voice to sing with (any rate; mono or mixed down)")
    parser.add_argument("--out", required=True, help="output wav (16 kHz)")
    parser.add_argument("--recipe_dir", default=".", help="directory the recipe ran in (holds data/, dump/, exp/)")
    parser.add_argument("--tag", default="mini", help="the run's name under exp/ (run.sh --tag; default the corpus)")
    parser.add_argument("--condition", default="LM + Flow2 + Voc",
                        help="synthesis route: " + ", ".join(repr(c.name) for c in CONDITIONS if c.tokens == "lm"))
    parser.add_argument("--config", default="conf/sing/tiny.yaml",
                        help="sing YAML (conf/sing/paper.yaml for a model trained on ACE-Opencpop)")
    parser.add_argument("--key_shift", type=int, default=0, help="semitones added to every note")
    parser.add_argument("--tempo_scale", type=float, default=1.0, help="> 1 sings faster (times are divided by it)")
    parser.add_argument("--flow_steps", type=int, default=None, help="Euler steps of the flow (default: the flow's own model.sampling.n_steps)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the LM sampling and the flow noise")
    parser.add_argument("--lyrics", default=None, help="MIDI only: lyric text, one syllable per note (characters or pinyin; '-' = melisma)")
    parser.add_argument("--durations", default=None,
                        help="table of initial (consonant) durations, lines '<initial> <seconds>' (default: medians of the training scores)")
    parser.add_argument("--utt", default=None, help="transcriptions.txt only: the utterance to sing when it has several lines")
    parser.add_argument("--part", type=int, default=None, help="USTX only: the voice part to sing (1-based; default the first with lyrics)")
    parser.add_argument("--write_ds", default=None, help="also write what was sung (phones, durations, notes, F0) as a DiffSinger .ds")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    if args.tempo_scale <= 0:
        parser.error("--tempo_scale must be positive")
    try:
        sing(args.score, args.singer, args.out, recipe_dir=args.recipe_dir, tag=args.tag, condition=args.condition,
             reference_wav=args.reference_wav, key_shift=args.key_shift, tempo_scale=args.tempo_scale,
             flow_steps=args.flow_steps, seed=args.seed, config=args.config, lyrics=args.lyrics, utt=args.utt,
             durations=args.durations, part=args.part, write_ds=args.write_ds)
    except (ValueError, FileNotFoundError) as err:  # bad score, singer, config, condition or missing model part
        if args.verbose:
            raise
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
