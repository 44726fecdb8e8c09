"""Write one split's Kaldi-style directory exactly as docs/formats.md (stage 1) describes."""
from __future__ import annotations

import json
from pathlib import Path

from svslm.data.utterance import Utterance
from svslm.utils.fileio import atomic_write_text, write_kaldi_map

SCORE_VERSION = 1


def _t(x: float) -> float:
    return round(x, 4)


def score_entry(utt: Utterance) -> dict:
    """The `score.json` value of one utterance: notes, and phones with their note's pitch."""
    notes = [
        {"start": _t(n.start), "end": _t(n.end), "midi": n.midi, "lyric": n.lyric,
         "phns": list(n.phns), "slur": n.slur}
        for n in utt.notes
    ]
    phones = [
        {"phn": p.phn, "start": _t(p.start), "end": _t(p.end), "midi": utt.notes[p.note].midi, "note": p.note}
        for p in utt.phones
    ]
    return {"notes": notes, "phones": phones}


def label_line(utt: Utterance) -> str:
    return " ".join(f"{p.start:.4f} {p.end:.4f} {p.phn}" for p in utt.phones)


def write_split(split_dir: Path, utts: list[Utterance], wav_paths: dict[str, str], n_samples: dict[str, int], fs: int) -> None:
    """Write the text files of a split into `split_dir` (the wavs are already there).

    `wav_paths`: the path each utterance's wav will have once the directory is in place;
    `n_samples`: its length at `fs`.
    """
    utts = sorted(utts, key=lambda u: u.utt_id)
    write_kaldi_map(split_dir / "wav.scp", {u.utt_id: wav_paths[u.utt_id] for u in utts})
    write_kaldi_map(split_dir / "utt2spk", {u.utt_id: u.speaker for u in utts})
    spk2utt: dict[str, list[str]] = {}
    for u in utts:
        spk2utt.setdefault(u.speaker, []).append(u.utt_id)
    write_kaldi_map(split_dir / "spk2utt", {s: " ".join(ids) for s, ids in spk2utt.items()})
    write_kaldi_map(split_dir / "utt2dur", {u.utt_id: f"{n_samples[u.utt_id] / fs:.6f}" for u in utts})
    write_kaldi_map(split_dir / "text", {u.utt_id: " ".join(p.phn for p in u.phones) for u in utts})
    write_kaldi_map(split_dir / "label", {u.utt_id: label_line(u) for u in utts})
    # One utterance per line: still one JSON object, but `head`/`grep` show whole utterances and
    # the file stays compact for a 100k-utterance split.
    entries = ",\n".join(
        f"{json.dumps(u.utt_id)}: {json.dumps(score_entry(u), ensure_ascii=False)}" for u in utts
    )
    atomic_write_text(split_dir / "score.json", f'{{"version": {SCORE_VERSION}, "utts": {{\n{entries}\n}}}}\n')
