"""Generate the embedded mini corpus in ACE-Opencpop's own on-disk format.

    python local/mini/make_corpus.py --config conf/data/mini_corpus.yaml --out_dir downloads/mini [--override dev_utts=2]

writes `data/{train,validation,test}-00000-of-00001.parquet` with the columns of the hub's
`espnet/ace-opencpop-segments` (see svslm/data/ace_opencpop.py), so stage 1 runs the real
ACE-Opencpop parser on it. Like ACE-Opencpop, every singer sings the same songs to the same
label; test = the phrases of held-out songs (all singers); validation = the last `dev_utts` of
sorted train, as ESPnet's recipe holds out its dev set. Deterministic from the seed; the file
`COMPLETE` (config + a hash of this generator's code) is written last, so a directory without it,
or made from another config or code, is generated again.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from local.mini.melody import Phrase, SyllableDeck, make_song, phrase_semitones
from local.mini.speech import SpokenText, as_notes, make_text, note_midis, spoken_pitch
from local.mini.voice import SingerConfig, SungNote, sing, synthesize
from svslm.data.phonemes import PHONEMES
from svslm.utils.config import load_config, to_dict
from svslm.utils.fileio import atomic_path, atomic_write_text
from svslm.utils.logging import setup_logging
from svslm.utils.workers import process_pool

log = logging.getLogger("svslm")
COMPLETE = "COMPLETE"
FEATURES = {  # the hub's `datasets` features, stored in the parquet schema as the hub does
    "audio": {"_type": "Audio"}, "segment_id": {"dtype": "string", "_type": "Value"},
    "transcription": {"dtype": "string", "_type": "Value"}, "singer": {"dtype": "int64", "_type": "Value"},
    "label": {"dtype": "string", "_type": "Value"}, "tempo": {"dtype": "int64", "_type": "Value"},
    **{c: {"feature": {"dtype": "float64", "_type": "Value"}, "_type": "Sequence"}
       for c in ("note_midi", "note_start_times", "note_end_times", "phn_start_time", "phn_end_time")},
    **{c: {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"}
       for c in ("note_phns", "note_lyrics", "phn")},
}
SCHEMA = pa.schema(
    [("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("segment_id", pa.string()),
     ("transcription", pa.string()), ("singer", pa.int64()), ("label", pa.string()), ("tempo", pa.int64()),
     ("note_midi", pa.list_(pa.float64())), ("note_phns", pa.list_(pa.string())),
     ("note_lyrics", pa.list_(pa.string())), ("note_start_times", pa.list_(pa.float64())),
     ("note_end_times", pa.list_(pa.float64())), ("phn", pa.list_(pa.string())),
     ("phn_start_time", pa.list_(pa.float64())), ("phn_end_time", pa.list_(pa.float64()))],
    metadata={"huggingface": json.dumps({"info": {"features": FEATURES}})},
)


@dataclass
class MiniCorpusConfig:
    seed: int = 1234  # everything below is drawn from this seed
    # "singing": songs sung on melodies (the mini corpus, the zoo's singing corpus); "speech":
    # texts read at speaking rate on Mandarin-like tones (local/mini/speech.py; the zoo's speech
    # corpus). A song is then a text, a phrase an utterance, a singer a voice whose low..high_midi
    # is its speaking range.
    style: Literal["singing", "speech"] = "singing"
    # Number of the first song (Opencpop numbers its songs 2001..2100); the zoo corpora
    # (local/mini_zoo) number their own songs apart, so that no two corpora share a song.
    first_song: int = 2001
    sample_rate: int = 24000  # Hz of the generated audio; stage 1 resamples it to --fs
    train_songs: int = 6  # songs whose phrases go to train (and dev)
    test_songs: int = 2  # held-out songs whose phrases form the test split
    phrases_per_train_song: int = 2
    phrases_per_test_song: int = 1
    # Singers that sing each song, taken in turn from `singers` (song k: singers k*n, k*n+1, ...);
    # 0 = every singer sings every song, as in ACE-Opencpop.
    singers_per_song: int = 0
    dev_utts: int = 4  # last N utterances of sorted train moved to the validation split
    min_phrase_seconds: float = 3.0
    max_phrase_seconds: float = 6.0
    slur_probability: float = 0.2  # singing: chance that a note of a beat or longer ends in a melisma
    # singing: note values are drawn as 0.5-2 units of this many beats (at the song's 72-112 bpm);
    # below 1 a phrase of the same length holds more, shorter notes (the mini corpus: 0.4)
    note_value_scale: float = 1.0
    breath_probability: float = 0.4  # chance that a phrase (speech: a pause) is a breath (AP)
    tonic_midi: int = 60  # singing: key of the written songs; each singer transposes into their range
    # The train split (after dev is held out) must hold every Opencpop phone (initials, finals,
    # SP, AP) and, for singing, every MIDI note of the singers' ranges together; phrases are then
    # transposed so that it does, and a config too small for that is an error naming what is missing.
    full_coverage: bool = False
    singers: list[SingerConfig] = field(default_factory=lambda: [SingerConfig()])  # the voices


class CoverageError(ValueError):
    """A corpus config whose train split cannot hold the whole inventory (`full_coverage`)."""


@dataclass
class Planned:
    """One utterance of the corpus before synthesis."""

    phrase: Phrase | SpokenText
    singer: SingerConfig
    split: str  # train, validation or test
    midis: list[int] | None = None  # singing: MIDI per note after transposition (0 for rests)

    @property
    def segment_id(self) -> str:
        return f"acesinger_{self.singer.singer}#{self.phrase.song}{self.phrase.index:06d}"


def _shifts(written: list[int | None], singer: SingerConfig, tonic: int) -> tuple[list[int], int]:
    """Transpositions (semitones) that keep the written melody inside the singer's range, and the
    one that centres it there (the only one when the melody is wider than the range)."""
    sung = [tonic + w for w in written if w is not None]
    centre = round((singer.low_midi + singer.high_midi) / 2 - (min(sung) + max(sung)) / 2)
    fitting = list(range(singer.low_midi - min(sung), singer.high_midi - max(sung) + 1))
    return fitting or [centre], centre


def _transpose(plan: list[Planned], cfg: MiniCorpusConfig) -> None:
    """Set each singing row's MIDI: centred in the singer's range, or with `full_coverage` (train
    rows first) the fitting shift that adds most notes not yet sung in train, nearest the centre."""
    needed = {m for s in cfg.singers for m in range(s.low_midi, s.high_midi + 1)}
    sung: set[int] = set()
    for row in sorted(plan, key=lambda r: r.split != "train"):
        written = phrase_semitones(row.phrase)
        fitting, centre = _shifts(written, row.singer, cfg.tonic_midi)
        notes = {cfg.tonic_midi + w for w in written if w is not None}
        shift = centre
        if cfg.full_coverage and row.split == "train":
            shift = max(fitting, key=lambda k: (len({m + k for m in notes} & (needed - sung)), -abs(k - centre)))
            sung |= {m + shift for m in notes}
        row.midis = [0 if w is None else cfg.tonic_midi + w + shift for w in written]


def plan_corpus(cfg: MiniCorpusConfig, name: str = "corpus config") -> list[Planned]:
    """Every utterance of the corpus (texts, timings, singers, splits, singing MIDI), without audio.
    With `full_coverage`, raises CoverageError (naming `name`) when train misses a phone or note."""
    rng = np.random.default_rng(cfg.seed)
    deck = SyllableDeck(rng)
    plan: list[Planned] = []
    n_singers = cfg.singers_per_song or len(cfg.singers)
    if n_singers > len(cfg.singers):
        raise ValueError(f"{name}: singers_per_song={n_singers} but only {len(cfg.singers)} singers")
    if cfg.note_value_scale <= 0:
        raise ValueError(f"{name}: note_value_scale={cfg.note_value_scale}, but it must be > 0 (1 = as written)")
    last_song = cfg.first_song + cfg.train_songs + cfg.test_songs - 1
    if cfg.first_song < 1000 or last_song > 9999:  # segment names carry the song as its first 4 digits (Opencpop)
        raise ValueError(f"{name}: songs {cfg.first_song}..{last_song} (first_song + train_songs + test_songs - 1) "
                         f"do not all have 4 digits: stage 1 reads a segment's song from its first 4 digits")
    for k in range(cfg.train_songs + cfg.test_songs):
        song, train = cfg.first_song + k, k < cfg.train_songs
        n_phrases = cfg.phrases_per_train_song if train else cfg.phrases_per_test_song
        breathe = cfg.full_coverage and k == 0  # AP must be in train
        if cfg.style == "speech":
            phrases = [make_text(rng, deck, song, i + 1, float(rng.uniform(cfg.min_phrase_seconds, cfg.max_phrase_seconds)),
                                 cfg.breath_probability, breathe and i == 0) for i in range(n_phrases)]
        else:
            phrases = make_song(rng, deck, song, n_phrases, cfg.min_phrase_seconds, cfg.max_phrase_seconds,
                                cfg.slur_probability, cfg.breath_probability, breathe, cfg.note_value_scale)
        singers = [cfg.singers[(k * n_singers + j) % len(cfg.singers)] for j in range(n_singers)]
        plan += [Planned(p, s, "train" if train else "test") for p in phrases for s in singers]
    train = sorted((r for r in plan if r.split == "train"), key=lambda r: r.segment_id)
    for row in train[len(train) - cfg.dev_utts:] if cfg.dev_utts else []:
        row.split = "validation"
    if cfg.style == "singing":
        _transpose(plan, cfg)
    if cfg.full_coverage:
        missing = coverage_gaps(plan, cfg)
        if missing:
            raise CoverageError(f"{name}: full_coverage, but its train split ({sum(r.split == 'train' for r in plan)} "
                                f"utterances) lacks {'; '.join(missing)}: add songs or phrases")
    return plan


def coverage_gaps(plan: list[Planned], cfg: MiniCorpusConfig) -> list[str]:
    """What the train rows of `plan` lack of the inventory: phones, and singing MIDI notes."""
    train = [r for r in plan if r.split == "train"]
    phones = {p for r in train for n in _units(r.phrase) for p in n.phns}
    gaps = []
    if missing := [p for p in PHONEMES if p not in phones]:
        gaps.append(f"phones {' '.join(missing)}")
    if cfg.style == "singing":
        sung = {m for r in train for m in r.midis or []}
        needed = sorted({m for s in cfg.singers for m in range(s.low_midi, s.high_midi + 1)})
        if missing := [m for m in needed if m not in sung]:
            gaps.append(f"MIDI notes {' '.join(map(str, missing))} (of {needed[0]}..{needed[-1]})")
    return gaps


def _units(phrase: Phrase | SpokenText) -> list:
    """The notes of a song's phrase or the syllables (and rests) of a text."""
    return phrase.syllables if isinstance(phrase, SpokenText) else phrase.notes


def _row(row: Planned, cfg: MiniCorpusConfig) -> dict:
    phrase, singer = row.phrase, row.singer
    rng = np.random.default_rng([cfg.seed, phrase.song, phrase.index, singer.singer])
    if isinstance(phrase, SpokenText):
        semitones = spoken_pitch(phrase, singer, rng)
        midis = note_midis(phrase, semitones)
        wav = synthesize(as_notes(phrase, midis), semitones, singer, cfg.sample_rate,
                         rng.normal(0.0, 1.5, len(phrase.syllables)))
        tempo = phrase.rate
    else:
        midis = row.midis
        notes = [SungNote(n.start, n.end, m, n.phns, n.phone_ends, n.slur) for n, m in zip(phrase.notes, midis)]
        wav = sing(notes, singer, cfg.sample_rate, rng)
        tempo = phrase.tempo
    units = _units(phrase)
    buf = io.BytesIO()
    sf.write(buf, wav, cfg.sample_rate, subtype="PCM_16", format="WAV")
    phones = [(p, st, et) for n in units for p, st, et in zip(n.phns, [n.start, *n.phone_ends[:-1]], n.phone_ends)]
    return {
        "audio": {"bytes": buf.getvalue(), "path": f"{row.segment_id}.wav"},
        "segment_id": row.segment_id,
        "transcription": " ".join(p for p, _, _ in phones),
        "singer": singer.singer,
        "label": " ".join(f"{st:.3f} {et:.3f} {p}" for p, st, et in phones),
        "tempo": tempo,
        "note_midi": [float(m) for m in midis],
        "note_phns": ["_".join(n.phns) for n in units],
        "note_lyrics": [n.lyric for n in units],
        "note_start_times": [n.start for n in units],
        "note_end_times": [n.end for n in units],
        "phn": [p for p, _, _ in phones],
        "phn_start_time": [st for _, st, _ in phones],
        "phn_end_time": [et for _, _, et in phones],
    }


def make_corpus(cfg: MiniCorpusConfig, out_dir: str | Path, name: str = "corpus config", nj: int = 1) -> dict[str, int]:
    """Write the corpus to `out_dir`; returns utterances per split. `name` (the config file) is
    what a CoverageError names. `nj` processes render the audio; each utterance has its own random
    generator, so the corpus does not depend on `nj`."""
    out_dir = Path(out_dir)
    plan = sorted(plan_corpus(cfg, name), key=lambda r: r.segment_id)
    rows: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    render = functools.partial(_row, cfg=cfg)
    with contextlib.ExitStack() as stack:
        if nj > 1:
            rendered = stack.enter_context(process_pool(nj, threads=None)).imap(render, plan, chunksize=4)
        else:
            rendered = map(render, plan)
        for row, out in zip(plan, rendered):
            rows[row.split].append(out)
    for split, split_rows in rows.items():
        path = out_dir / "data" / f"{split}-00000-of-00001.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(pa.Table.from_pylist(split_rows, schema=SCHEMA), tmp, row_group_size=8)
    counts = {split: len(r) for split, r in rows.items()}
    marker = {"config": to_dict(cfg), "generator": generator_version(), "utts": counts}
    atomic_write_text(out_dir / COMPLETE, json.dumps(marker, indent=1) + "\n")
    return counts


def generator_version() -> str:
    """Hash of the generator's code: a corpus made by other code is made again."""
    digest = hashlib.sha256()
    for name in ("make_corpus.py", "melody.py", "speech.py", "voice.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:16]


def is_complete(out_dir: str | Path, cfg: MiniCorpusConfig) -> bool:
    """True when `out_dir` holds a corpus generated from exactly `cfg` by this code."""
    marker = Path(out_dir) / COMPLETE
    if not marker.is_file():
        return False
    done = json.loads(marker.read_text(encoding="utf-8"))
    return done.get("config") == to_dict(cfg) and done.get("generator") == generator_version()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML for MiniCorpusConfig")
    parser.add_argument("--out_dir", required=True, help="corpus directory to write")
    parser.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. train_songs=3 (repeatable; YAML values)")
    parser.add_argument("--nj", type=int, default=1, help="processes rendering the audio (the corpus is the same for any)")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_config(args.config, MiniCorpusConfig, args.override)
    if is_complete(args.out_dir, cfg):
        log.info("%s: mini corpus already complete", args.out_dir)
        return 0
    start = time.perf_counter()
    try:
        counts = make_corpus(cfg, args.out_dir, args.config, args.nj)
    except CoverageError as err:
        log.error("%s", err)
        return 1
    log.info("%s: mini corpus %s generated in %.1f s", args.out_dir, counts, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
