"""`sing`: a user's score -> a wav sung by a trained recipe run (LM -> flow -> vocoder).

    score file --read_score--> phones --split_phrases--> phrase phones
        --Synthesizer.synthesize (LM decode, flow, vocoder; svslm/infer/pipeline.py)--> phrase wavs
        --join_phrases--> song wav (--write_ds: and the sung phrases with their F0 as a DiffSinger .ds)

The trained parts are found where the recipe's stages wrote them for run `tag` under
`recipe_dir` (docs/formats.md); the score is read and checked, and the voice chosen, before any
model is loaded, so a bad score or singer fails in a second.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from svslm.infer.conditions import get_condition
from svslm.infer.config import load_infer_config
from svslm.sing.diffsinger_ds import F0_CEIL, F0_FLOOR, F0_TIMESTEP, save_ds
from svslm.sing.durations import read_consonant_table, training_consonant_table
from svslm.sing.phrases import join_phrases, split_phrases
from svslm.sing.prompt import prompt_length, recording_prompt, singer_prompt
from svslm.sing.reader import read_score
from svslm.sing.score import ScoreConfig
from svslm.utils.audio import FRAME_RATE, SAMPLE_RATE, save_wav
from svslm.utils.config import load_config

log = logging.getLogger(__name__)

SVSLM_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding conf/


@dataclass
class SingConfig:
    """conf/sing/*.yaml."""

    infer_config: str = "conf/infer/tiny.yaml"  # stage 6 config: each condition's flow directory (sampling: the flow's own; svs_lb layout: stage 2's)
    max_phrase_seconds: float = 8.0  # longer scores are cut inside silences into phrases at most this long
    crossfade_seconds: float = 0.04  # consecutive phrases overlap this long inside the silence they are cut in
    pitch_margin: int = 0  # semitones the model may sing beyond the pitch range of its training scores
    consonants_from_training: bool = True  # initials last their median duration in the training scores (svslm.sing.durations)
    score: ScoreConfig = field(default_factory=ScoreConfig)  # how notes become phones


def resolve_conf_path(path: str | Path) -> Path:
    """A config path as given, else relative to the svslm checkout (so `conf/...` works from a recipe dir)."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return SVSLM_ROOT / path


def training_pitch_range(utts: list[dict], margin: int) -> tuple[int, int]:
    """Lowest and highest sung MIDI pitch of score.json entries (the training split's), widened
    by `margin` semitones: the pitches the model has learnt."""
    pitches = [n["midi"] for u in utts for n in u["notes"] if n["midi"] > 0]
    return min(pitches) - margin, max(pitches) + margin


def model_phones(token_list: Path) -> set[str] | None:
    """Phones with an `svs_<phn>` token in stage 2's svs_lb token list: the only ones the model
    can be given (a corpus without some syllable has no token for its final). None, with a
    warning, when the list is absent."""
    if not token_list.is_file():
        log.warning("%s not found: phones are not checked against the model's vocabulary", token_list)
        return None
    tokens = (line.strip() for line in token_list.read_text(encoding="utf-8").splitlines())
    return {t[len("svs_"):] for t in tokens if t.startswith("svs_") and not t[len("svs_"):].isdigit()}


def sing(
    score_path: str | Path,
    singer: str | None = None,
    out: str | Path | None = "out.wav",
    recipe_dir: str | Path = ".",
    tag: str = "mini",
    condition: str = "LM + Flow2 + Voc",
    reference_wav: str | Path | None = None,
    key_shift: int = 0,
    tempo_scale: float = 1.0,
    flow_steps: int | None = None,
    seed: int = 0,
    config: SingConfig | str | Path | None = None,
    lyrics: str | Path | None = None,
    utt: str | None = None,
    durations: str | Path | None = None,
    part: int | None = None,
    write_ds: str | Path | None = None,
    synthesizer=None,
) -> np.ndarray:
    """Sing `score_path` (MusicXML, MIDI, an Opencpop transcription line, OpenUtau USTX, UTAU UST
    or DiffSinger .ds) and write `out`.

    The voice is training singer `singer` or the recording `reference_wav` (exactly one).
    `key_shift`: semitones; `tempo_scale`: > 1 faster; `flow_steps`: Euler steps of the flow
    (default: the infer config's); `lyrics`: a lyric text for a MIDI file; `utt`: the line of a
    transcriptions.txt; `durations`: a table of initial durations (svslm.sing.durations); `part`:
    the voice part of a USTX project (1-based); `write_ds`: also write the sung phrases (phones,
    durations, notes, the F0 of the audio) as a DiffSinger .ds; `synthesizer`: an already loaded
    `svslm.infer.pipeline.Synthesizer` (default: loaded from the recipe run). Returns the float32
    16 kHz waveform (also written to `out` unless it is None), of the score's length:
    round(end * 50) * 320 samples.
    """
    if (singer is None) == (reference_wav is None):
        raise ValueError("give exactly one voice: a training singer id or a reference recording")
    if not isinstance(config, SingConfig):
        config = load_config(resolve_conf_path(config or "conf/sing/tiny.yaml"), SingConfig)
    recipe_dir = Path(recipe_dir)
    data_dir, dump_dir = recipe_dir / "data", recipe_dir / "dump"
    cond = get_condition(condition)

    train_score = data_dir / "train" / "score.json"
    pitch_range = consonant_table = None
    if train_score.is_file():
        training_utts = list(json.loads(train_score.read_text(encoding="utf-8"))["utts"].values())
        pitch_range = training_pitch_range(training_utts, config.pitch_margin)
        if config.consonants_from_training:
            consonant_table = training_consonant_table(training_utts)
    else:
        log.warning("%s not found: pitches are not checked against the model's range", train_score)
    if durations is not None:
        consonant_table = read_consonant_table(durations)
    phones = model_phones(dump_dir / "token_list" / "svs_lb.txt")
    score = read_score(score_path, config.score, key_shift, tempo_scale, pitch_range, lyrics, utt, consonant_table,
                       phones, part)
    overlap = max(1, round(config.crossfade_seconds * FRAME_RATE))
    phrases = split_phrases(score["phones"], config.max_phrase_seconds, overlap)
    log.info("%s: %d notes, %.2f s, %d phrase(s)", score_path, len(score["notes"]), score["phones"][-1]["end"], len(phrases))
    prompt = singer_prompt(singer, data_dir, dump_dir) if singer is not None else None

    # The model code is imported only here: reading and checking scores needs no torch.
    if synthesizer is None:
        from svslm.infer.pipeline import RecipePaths, Synthesizer

        infer_config = load_infer_config(resolve_conf_path(config.infer_config))
        exp = recipe_dir / "exp"
        paths = RecipePaths(dump_dir, exp / "lm" / tag, exp / "flow" / tag, exp / "vocoder" / tag)
        synthesizer = Synthesizer.from_recipe(paths, infer_config, [cond.name], need_lm_model=True)
    if prompt is None:
        from svslm.tokenize.ssl import load_ssl_tokenizer

        ssl = load_ssl_tokenizer(dump_dir / "tokenizers" / "ssl")
        prompt = recording_prompt(reference_wav, synthesizer.codec, ssl, prompt_length(dump_dir))
    log.info("voice: %s (prompt of %d frames)", prompt.source, len(prompt.tokens))

    wavs = [synthesizer.synthesize(phrase.phones, prompt.tokens, cond.name, n_flow_steps=flow_steps, seed=seed,
                                   prompt_audio=prompt.audio)
            for phrase in tqdm(phrases, desc="phrases", unit="phrase", disable=len(phrases) == 1)]
    song = join_phrases(phrases, wavs, overlap)
    if out is not None:
        save_wav(out, song, SAMPLE_RATE)
        log.info("wrote %s (%.2f s)", out, len(song) / SAMPLE_RATE)
    if write_ds is not None:
        from svslm.utils.f0 import dio_f0  # pyworld, only when it is needed

        f0, _ = dio_f0(song, SAMPLE_RATE, 1000 * F0_TIMESTEP, F0_FLOOR, F0_CEIL)
        starts = [p.start for p in phrases]
        save_ds(write_ds, score, list(zip(starts, [*starts[1:], phrases[-1].end])), f0)
        log.info("wrote %s (%d sentence(s))", write_ds, len(phrases))
    return song

