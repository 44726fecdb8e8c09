"""The original Opencpop release (one female singer, 100 songs).

    segments/transcriptions.txt   utt|text|phones|note_pitches|note_durations|phone_durations|slurs
    segments/wavs/<utt>.wav
    segments/train.txt, segments/test.txt   the same lines (or bare utt ids) for each split

Every field but `text` has one entry per phone: a note's pitch (`C#4/Db4`, `rest`) and duration
are repeated on each phone sung on it, and `slurs` marks with 1 a phone that repeats the previous
final on a new note (melisma). The song is the first 4 digits of the utt id; the test split is
5 held-out songs.
"""
from __future__ import annotations

from itertools import accumulate
from pathlib import Path

import librosa

from svslm.data.phonemes import is_initial, is_rest
from svslm.data.utterance import AudioRef, Note, Phone, Utterance

SPEAKER = "opencpop"


def _pitch_to_midi(name: str) -> int | None:
    if name == "rest":
        return 0
    try:
        return int(librosa.note_to_midi(name.split("/")[0]))
    except librosa.util.exceptions.ParameterError:  # not a note name
        return None


def parse_line(line: str, where: str, db_root: Path, split: str) -> Utterance:
    """One transcription line as an Utterance; problems are recorded on it, never raised."""
    fields = line.rstrip("\n").split("|")
    uid = fields[0].strip()
    utt = Utterance(
        f"{SPEAKER}#{uid}", SPEAKER, uid[:4], split, [], [],
        AudioRef(path=str(db_root / "segments" / "wavs" / f"{uid}.wav")), where,
    )
    if len(fields) != 7:
        utt.problems.append(f"expected 7 '|'-separated fields, found {len(fields)}")
        return utt
    text = fields[1].strip()
    phns, pitches, note_durs, phn_durs, slurs = (f.split() for f in fields[2:])
    lengths = {"phones": len(phns), "note_pitches": len(pitches), "note_durations": len(note_durs),
               "phone_durations": len(phn_durs), "slurs": len(slurs)}
    if len(set(lengths.values())) != 1:
        utt.problems.append(f"fields of different lengths: {lengths}")
        return utt
    try:
        note_dur = [float(d) for d in note_durs]
        phn_dur = [float(d) for d in phn_durs]
    except ValueError as err:
        utt.problems.append(f"duration is not a number ({err})")
        return utt
    if any(s not in ("0", "1") for s in slurs):
        utt.problems.append(f"slur flags must be 0 or 1: {sorted(set(slurs) - {'0', '1'})}")
        return utt
    midis = [_pitch_to_midi(p) for p in pitches]
    for k in (k for k, m in enumerate(midis) if m is None):
        utt.problems.append(f"phone {k}: unreadable note pitch {pitches[k]!r}")
    if utt.problems:
        return utt

    # Group phones into notes: an initial opens a syllable that its final joins; a slurred
    # phone is a note of its own; a rest or a lone final is a note of one phone.
    groups: list[list[int]] = []
    k = 0
    while k < len(phns):
        joins_next = (
            slurs[k] == "0" and is_initial(phns[k]) and k + 1 < len(phns)
            and slurs[k + 1] == "0" and not is_initial(phns[k + 1]) and not is_rest(phns[k + 1])
        )
        groups.append([k, k + 1] if joins_next else [k])
        k += len(groups[-1])
    note_starts = [0.0, *accumulate(note_dur[g[0]] for g in groups)]
    phone_ends = list(accumulate(phn_dur))
    chars = [c for c in text if not c.isspace()]
    syllable_groups = [g for g in groups if slurs[g[0]] == "0" and not is_rest(phns[g[0]])]
    lyric_of = dict(zip(map(tuple, syllable_groups), chars)) if len(chars) == len(syllable_groups) else {}
    for i, g in enumerate(groups):
        if len(g) == 2 and (pitches[g[0]] != pitches[g[1]] or note_durs[g[0]] != note_durs[g[1]]):
            utt.problems.append(f"phones {g[0]} and {g[1]} of one syllable disagree on note pitch or duration")
        note_phns = [phns[j] for j in g]
        slur = slurs[g[0]] == "1"
        if slur:
            lyric = "-"
        elif is_rest(note_phns[0]):
            lyric = note_phns[0]
        else:
            lyric = lyric_of.get(tuple(g), "".join(note_phns))
        utt.notes.append(Note(note_starts[i], note_starts[i + 1], midis[g[0]], lyric, note_phns, slur))
        for j in g:
            utt.phones.append(Phone(phns[j], phone_ends[j] - phn_dur[j], phone_ends[j], i))
    return utt


def _read_split_ids(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.split("|", 1)[0].strip() for line in f if line.strip()]


def read_opencpop(db_root: str | Path) -> list[Utterance]:
    """All utterances of the corpus at `db_root`, split by `segments/{train,test}.txt`."""
    db_root = Path(db_root)
    seg = db_root / "segments"
    transcriptions = seg / "transcriptions.txt"
    for path in (transcriptions, seg / "train.txt", seg / "test.txt"):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (Opencpop layout: segments/transcriptions.txt, train.txt, test.txt)")
    split_of = {uid: "train" for uid in _read_split_ids(seg / "train.txt")}
    split_of.update({uid: "test" for uid in _read_split_ids(seg / "test.txt")})
    utts = []
    with open(transcriptions, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            uid = line.split("|", 1)[0].strip()
            if uid not in split_of:
                continue  # in neither list, as ESPnet's recipe leaves it out
            utts.append(parse_line(line, f"{transcriptions}:{lineno}", db_root, split_of[uid]))
    return utts
