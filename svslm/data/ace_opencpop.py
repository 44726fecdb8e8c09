"""ACE-Opencpop as published on the Hugging Face hub (`espnet/ace-opencpop-segments`).

On disk (a `snapshot_download` of the dataset) it is parquet shards `data/<split>-XXXXX-of-YYYYY.parquet`
for the splits `train`, `validation` (the 50 utterances ESPnet's recipe holds out of train as
dev) and `test` (held-out songs), one row per segment with the columns

    segment_id        "acesinger_<singer>#<opencpop utt>", the song being the utt's first 4 digits
    singer            int
    note_midi         [float]   one per note, 0 for rests
    note_lyrics       [str]     syllable, "SP"/"AP" for rests, "—" for a slur (melisma)
    note_phns         [str]     phones of the note joined by "_": "g_an", "an", "SP"
    note_start_times, note_end_times   [float] seconds
    phn, phn_start_time, phn_end_time  the phone label, seconds
    audio             {bytes: wav/flac file, path: its name}

(also `transcription`, `label`, `tempo`, which repeat the above and are not read). The parquet
dumps the hub's viewer makes (`<split>/*.parquet`, `default/<split>/*.parquet`) are read too.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from svslm.data.phonemes import is_rest
from svslm.data.utterance import AudioRef, Note, Phone, Utterance

SPLITS = ("train", "validation", "test")
SLUR_LYRICS = frozenset({"—", "-", "–", "~"})  # ESPnet writes "—" (em dash) for a melisma note
ANNOTATION_COLUMNS = (
    "segment_id", "singer", "note_midi", "note_lyrics", "note_phns",
    "note_start_times", "note_end_times", "phn", "phn_start_time", "phn_end_time",
)
_SHARD_PATTERNS = ("data/{split}-*.parquet", "{split}/*.parquet", "default/{split}/*.parquet")


def find_shards(db_root: str | Path) -> dict[str, list[Path]]:
    """Parquet shards per split (absent splits map to [])."""
    db_root = Path(db_root)
    shards = {}
    for split in SPLITS:
        found: list[Path] = []
        for pattern in _SHARD_PATTERNS:
            found = sorted(db_root.glob(pattern.format(split=split)))
            if found:
                break
        shards[split] = found
    return shards


def song_of(utt_id: str) -> str:
    """Opencpop song id: the first 4 digits of the segment name after '#'."""
    return utt_id.rsplit("#", 1)[-1][:4]


def _utt_and_speaker(segment_id: str, singer) -> tuple[str, str]:
    if "#" in segment_id:
        return segment_id, segment_id.split("#", 1)[0]
    speaker = f"acesinger_{singer}"
    return f"{speaker}#{segment_id}", speaker


def _as_midi(value) -> int | None:
    """An integral MIDI number, or None when the value is not one."""
    try:
        midi = float(value)
    except (TypeError, ValueError):
        return None
    return round(midi) if abs(midi - round(midi)) < 0.01 else None


def row_to_utterance(row: dict, split: str, where: str, audio: AudioRef) -> Utterance:
    """One parquet row as an Utterance; annotation problems are recorded on it, never raised."""
    utt_id, speaker = _utt_and_speaker(str(row["segment_id"]), row["singer"])
    utt = Utterance(utt_id, speaker, song_of(utt_id), split, [], [], audio, where)
    note_cols = ("note_start_times", "note_end_times", "note_midi", "note_lyrics", "note_phns")
    phone_cols = ("phn", "phn_start_time", "phn_end_time")
    for cols in (note_cols, phone_cols):
        lengths = {c: len(row[c] or []) for c in cols}
        if len(set(lengths.values())) != 1:
            utt.problems.append(f"columns of different lengths: {lengths}")
            return utt
    for st, et, midi, lyric, phns in zip(*(row[c] for c in note_cols)):
        phn_list = str(phns).split("_") if phns else []
        midi_int = _as_midi(midi)
        if midi_int is None:
            utt.problems.append(f"note {len(utt.notes)}: MIDI pitch {midi!r} is not an integer")
            midi_int = -1
        slur = str(lyric).strip() in SLUR_LYRICS
        rest = len(phn_list) == 1 and is_rest(phn_list[0])
        lyric = "-" if slur else (phn_list[0] if rest else str(lyric))
        utt.notes.append(Note(float(st), float(et), midi_int, lyric, phn_list, slur))
    note_of_phone = [i for i, n in enumerate(utt.notes) for _ in n.phns]
    phns_from_notes = [p for n in utt.notes for p in n.phns]
    label_phns = [str(p) for p in row["phn"]]
    if phns_from_notes != label_phns:
        k = next((k for k, (a, b) in enumerate(zip(phns_from_notes, label_phns)) if a != b),
                 min(len(phns_from_notes), len(label_phns)))
        utt.problems.append(
            f"phones of the notes ({len(phns_from_notes)}) and of the label ({len(label_phns)}) "
            f"differ from phone {k}: {phns_from_notes[k:k + 3]} vs {label_phns[k:k + 3]}"
        )
        return utt
    utt.phones = [
        Phone(p, float(st), float(et), note)
        for p, st, et, note in zip(label_phns, row["phn_start_time"], row["phn_end_time"], note_of_phone)
    ]
    return utt


def read_ace_opencpop(db_root: str | Path) -> list[Utterance]:
    """All utterances of the corpus at `db_root` (annotation only; audio stays in the shards)."""
    shards = find_shards(db_root)
    if not shards["train"] or not shards["test"]:
        raise FileNotFoundError(
            f"{db_root}: no ACE-Opencpop parquet shards for train and test "
            f"(looked for {', '.join(p.format(split='<split>') for p in _SHARD_PATTERNS)})"
        )
    utts = []
    for split, paths in shards.items():
        for shard in paths:
            table = pq.read_table(shard, columns=list(ANNOTATION_COLUMNS))
            for i, row in enumerate(table.to_pylist()):
                audio = AudioRef(shard=str(shard), row=i)
                utts.append(row_to_utterance(row, split, f"{shard} row {i}", audio))
    return utts


def iter_shard_audio(shard: str | Path, batch_rows: int = 16) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(row, audio bytes, audio path) of a shard in row order, a few rows in memory at a time."""
    row = 0
    for batch in pq.ParquetFile(shard).iter_batches(batch_size=batch_rows, columns=["audio"]):
        for audio in batch.column(0).to_pylist():
            audio = audio or {}
            yield row, audio.get("bytes"), audio.get("path")
            row += 1
