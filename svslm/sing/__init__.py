"""Sing a user's own score: MusicXML, MIDI with lyrics, an Opencpop transcription line, an
OpenUtau (USTX) or UTAU (UST) project, or a DiffSinger .ds file.

`read_score` turns a score file into the structure stage 1 writes per utterance into
`score.json`; `sing` synthesizes it with a trained recipe run (docs/sing.md).
"""
from svslm.sing.reader import read_score
from svslm.sing.score import ScoreConfig, ScoreError
from svslm.sing.synthesize import SingConfig, sing

__all__ = ["ScoreConfig", "ScoreError", "SingConfig", "read_score", "sing"]
