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
import hashlib
import io
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from local.mini.melody import Phrase, degree_to_semitones, make_song
from local.mini.voice import SingerConfig, SungNote, sing
from svslm.utils.config import load_config, to_dict
from svslm.utils.fileio import atomic_path, atomic_write_text
from svslm.utils.logging import setup_logging

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
    # Number of the first song (Opencpop numbers its songs 2001..2100); the zoo corpus
    # (local/mini_zoo) numbers its own songs apart, so that the two share no song.
    first_song: int = 2001
    sample_rate: int = 24000  # Hz of the generated audio; stage 1 resamples it to --fs
    train_songs: int = 6  # songs whose phrases go to train (and dev)
    test_songs: int = 2  # held-out songs whose phrases form the test split
    phrases_per_train_song: int = 2
    phrases_per_test_song: int = 1
    dev_utts: int = 4  # last N utterances of sorted train moved to the validation split
    min_phrase_seconds: float = 3.0
    max_phrase_seconds: float = 6.0
    slur_probability: float = 0.2  # chance that a note of a beat or longer ends in a melisma
    breath_probability: float = 0.4  # chance that a phrase has a breath (AP) in its middle
    tonic_midi: int = 60  # key of the written songs; each singer transposes into their range
    singers: list[SingerConfig] = field(default_factory=lambda: [SingerConfig()])  # the voices


def _transpose(phrase: Phrase, singer: SingerConfig, tonic: int) -> list[int]:
    """MIDI per note: the song's melody moved by whole semitones to the middle of the singer's range."""
    sung = [degree_to_semitones(n.degree) for n in phrase.notes if n.degree is not None]
    shift = round((singer.low_midi + singer.high_midi) / 2 - (tonic + (min(sung) + max(sung)) / 2))
    return [0 if n.degree is None else tonic + degree_to_semitones(n.degree) + shift for n in phrase.notes]


def _row(phrase: Phrase, singer: SingerConfig, cfg: MiniCorpusConfig) -> dict:
    uid = f"{phrase.song}{phrase.index:06d}"
    segment_id = f"acesinger_{singer.singer}#{uid}"
    midis = _transpose(phrase, singer, cfg.tonic_midi)
    notes = [SungNote(n.start, n.end, m, n.phns, n.phone_ends, n.slur) for n, m in zip(phrase.notes, midis)]
    rng = np.random.default_rng([cfg.seed, phrase.song, phrase.index, singer.singer])
    wav = sing(notes, singer, cfg.sample_rate, rng)
    buf = io.BytesIO()
    sf.write(buf, wav, cfg.sample_rate, subtype="PCM_16", format="WAV")
    phones = [(p, st, et) for n in phrase.notes for p, st, et in zip(n.phns, [n.start, *n.phone_ends[:-1]], n.phone_ends)]
    return {
        "audio": {"bytes": buf.getvalue(), "path": f"{segment_id}.wav"},
        "segment_id": segment_id,
        "transcription": " ".join(p for p, _, _ in phones),
        "singer": singer.singer,
        "label": " ".join(f"{st:.3f} {et:.3f} {p}" for p, st, et in phones),
        "tempo": phrase.tempo,
        "note_midi": [float(m) for m in midis],
        "note_phns": ["_".join(n.phns) for n in phrase.notes],
        "note_lyrics": [n.lyric for n in phrase.notes],
        "note_start_times": [n.start for n in phrase.notes],
        "note_end_times": [n.end for n in phrase.notes],
        "phn": [p for p, _, _ in phones],
        "phn_start_time": [st for _, st, _ in phones],
        "phn_end_time": [et for _, _, et in phones],
    }


def make_corpus(cfg: MiniCorpusConfig, out_dir: str | Path) -> dict[str, int]:
    """Write the corpus to `out_dir`; returns utterances per split."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(cfg.seed)
    songs = {}
    for k in range(cfg.train_songs + cfg.test_songs):
        n_phrases = cfg.phrases_per_train_song if k < cfg.train_songs else cfg.phrases_per_test_song
        songs[cfg.first_song + k] = make_song(rng, cfg.first_song + k, n_phrases, cfg.min_phrase_seconds,
                                          cfg.max_phrase_seconds, cfg.slur_probability, cfg.breath_probability)
    test_songs = set(list(songs)[cfg.train_songs:])
    rows: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for song, phrases in songs.items():
        for phrase in phrases:
            for singer in cfg.singers:
                rows["test" if song in test_songs else "train"].append(_row(phrase, singer, cfg))
    rows["train"].sort(key=lambda r: r["segment_id"])
    if cfg.dev_utts:
        rows["train"], rows["validation"] = rows["train"][:-cfg.dev_utts], rows["train"][-cfg.dev_utts:]
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
    for name in ("make_corpus.py", "melody.py", "voice.py"):
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
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_config(args.config, MiniCorpusConfig, args.override)
    if is_complete(args.out_dir, cfg):
        log.info("%s: mini corpus already complete", args.out_dir)
        return 0
    start = time.perf_counter()
    counts = make_corpus(cfg, args.out_dir)
    log.info("%s: mini corpus %s generated in %.1f s", args.out_dir, counts, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
