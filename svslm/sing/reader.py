"""Read any supported score file into a score.json entry, the reader chosen by the file's extension."""
from __future__ import annotations

from pathlib import Path

from svslm.sing.diffsinger_ds import read_ds
from svslm.sing.midi import read_midi
from svslm.sing.musicxml import read_musicxml
from svslm.sing.opencpop_line import read_opencpop_line
from svslm.sing.score import ScoreConfig, ScoreError, build_score
from svslm.sing.ust import read_ust
from svslm.sing.ustx import read_ustx

MUSICXML_SUFFIXES = (".musicxml", ".xml", ".mxl")
MIDI_SUFFIXES = (".mid", ".midi", ".kar")
OPENCPOP_SUFFIXES = (".txt",)
USTX_SUFFIXES = (".ustx",)
UST_SUFFIXES = (".ust",)
DS_SUFFIXES = (".ds",)


def read_score(
    path: str | Path,
    config: ScoreConfig | None = None,
    key_shift: int = 0,
    tempo_scale: float = 1.0,
    pitch_range: tuple[int, int] | None = None,
    lyrics: str | Path | None = None,
    utt: str | None = None,
    consonant_table: dict[str, float] | None = None,
    model_phones: set[str] | None = None,
    part: int | None = None,
) -> dict:
    """`{"notes": [...], "phones": [...]}` (one score.json entry) of a MusicXML, MIDI, Opencpop
    transcription, OpenUtau (USTX), UTAU (UST) or DiffSinger (.ds) file; every problem of the
    score is raised together as a ScoreError.

    `lyrics`: a lyric text for a MIDI file (one syllable per note); `utt`: the line of a
    transcriptions.txt to sing when it holds several; `consonant_table`: seconds per initial
    (svslm.sing.durations; an Opencpop line and a .ds have their own phone durations);
    `model_phones`: the phones the model has tokens for (None: not checked); `part`: the voice
    part of a USTX project to sing (1-based; default the first with lyrics).
    """
    path = Path(path)
    if not path.is_file():
        raise ScoreError(str(path), ["file not found"])
    suffix = path.suffix.lower()
    if lyrics is not None and suffix not in MIDI_SUFFIXES:
        raise ScoreError(str(path), ["a separate lyric text is only read with a MIDI file"])
    if part is not None and suffix not in USTX_SUFFIXES:
        raise ScoreError(str(path), ["a voice part is only chosen in an OpenUtau project (.ustx)"])
    if suffix in OPENCPOP_SUFFIXES:
        return read_opencpop_line(path, utt, key_shift, tempo_scale, pitch_range, model_phones)
    if suffix in DS_SUFFIXES:
        return read_ds(path, key_shift, tempo_scale, pitch_range, model_phones)
    if suffix in MUSICXML_SUFFIXES:
        notes, problems = read_musicxml(path)
    elif suffix in MIDI_SUFFIXES:
        notes, problems = read_midi(path, lyrics, config)
    elif suffix in USTX_SUFFIXES:
        notes, problems = read_ustx(path, part)
    elif suffix in UST_SUFFIXES:
        notes, problems = read_ust(path)
    else:
        known = ", ".join(MUSICXML_SUFFIXES + MIDI_SUFFIXES + OPENCPOP_SUFFIXES + USTX_SUFFIXES + UST_SUFFIXES
                          + DS_SUFFIXES)
        raise ScoreError(str(path), [f"unknown score format {suffix!r} (known: {known})"])
    return build_score(notes, str(path), config, problems, key_shift, tempo_scale, pitch_range, consonant_table,
                       model_phones)
