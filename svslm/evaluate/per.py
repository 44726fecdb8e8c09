"""PER: phoneme error rate of an ASR transcription against the score's phones.

PER (%) = 100 * (substitutions + deletions + insertions) / (phones in the reference), the
Levenshtein distance over phone symbols (editdistance). VERSA has no PER; this is the paper's
metric computed from the score, not from a transcript of the reference audio.

Rule for rests: `SP` (silence) and `AP` (breath) are removed from both sides before the edit
distance. They are pauses, not sung phonemes: a word recogniser never writes them, and counting
them would reward silence detection instead of intelligibility.

Backends (`AsrBackendConfig.kind`), each from a local path, each `n/a` with the reason when absent:
- `ctc`: the recipe's own phoneme CTC recogniser (svslm.evaluate.ctc_asr), trained by
  `svslm.bin.asr_train` on the training audio; the only one available offline.
- `whisper`: a Whisper checkpoint in Hugging Face transformers format; its Chinese characters are
  turned into phones through pypinyin and the Opencpop syllable table (svslm.data.phonemes).
- `owsm`: an ESPnet OWSM model directory (`config.yaml` + `model.pth`), with ESPnet installed
  (`./install.sh --espnet`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import editdistance
import numpy as np

from svslm.data.phonemes import PinyinError, is_rest, syllable_to_phones
from svslm.evaluate.na import MetricUnavailable

logger = logging.getLogger(__name__)


@dataclass
class AsrBackendConfig:
    kind: Literal["ctc", "whisper", "owsm"] = "ctc"  # which recogniser (see the module docstring)
    # Local model directory. Empty for `ctc`: the entry point's --asr_dir (run.sh passes exp/asr/<tag>).
    model_dir: str = ""
    language: str = "zh"  # language given to Whisper / OWSM


@dataclass
class PerConfig:
    # The first backend fills the PER column; any further one is reported as `PER_<kind>`.
    backends: list[AsrBackendConfig] = field(default_factory=lambda: [AsrBackendConfig()])


def sung_phones(phones: list[str]) -> list[str]:
    """The phones PER is counted over: rests (`SP`, `AP`) removed."""
    return [p for p in phones if not is_rest(p)]


@dataclass
class PhoneErrors:
    edits: int  # substitutions + deletions + insertions
    ref_len: int  # sung phones in the reference

    @property
    def per(self) -> float:
        """Percent; more than 100 when the transcript inserts many phones."""
        return 100.0 * self.edits / self.ref_len


def phone_errors(hyp: list[str], ref: list[str]) -> PhoneErrors:
    """Edit distance of two phone lists after removing rests; an empty reference is an error."""
    hyp, ref = sung_phones(hyp), sung_phones(ref)
    if not ref:
        raise ValueError("the reference has no sung phone, so PER is undefined")
    return PhoneErrors(edits=int(editdistance.eval(hyp, ref)), ref_len=len(ref))


def text_to_phones(text: str) -> list[str]:
    """Chinese text -> Opencpop phones via pypinyin; characters with no Mandarin reading are dropped."""
    from pypinyin import Style, lazy_pinyin

    phones: list[str] = []
    for syllable in lazy_pinyin(text, style=Style.NORMAL, errors="ignore"):
        try:
            phones.extend(syllable_to_phones(syllable))
        except PinyinError:
            # Interjections such as `hm` or `ng` are outside Opencpop's inventory: no phone to compare.
            logger.debug("no Opencpop phones for syllable %r in %r", syllable, text)
    return phones


class PhoneRecognizer(Protocol):
    name: str

    def recognize(self, wav: np.ndarray) -> list[str]:
        """16 kHz float waveform -> phone list."""


class WhisperRecognizer:
    name = "whisper"

    def __init__(self, model_dir: Path, language: str):
        from transformers import pipeline

        self.pipe = pipeline("automatic-speech-recognition", model=str(model_dir), device="cpu")
        self.language = language

    def recognize(self, wav: np.ndarray) -> list[str]:
        out = self.pipe(
            {"raw": np.asarray(wav, dtype=np.float32), "sampling_rate": 16000},
            generate_kwargs={"language": self.language, "task": "transcribe"},
        )
        return text_to_phones(out["text"])


class OwsmRecognizer:
    """ESPnet's OWSM through `espnet2.bin.s2t_inference.Speech2Text` (ESPnet 202511).

    Speech2Text's best hypothesis is (text, tokens, token ids, text_nospecial, hyp); `text` starts
    with the prompt's tags (`<zho><asr><notimestamps>`) and may hold timestamps, `text_nospecial`
    is the transcript alone, which is what is scored."""

    name = "owsm"

    def __init__(self, model_dir: Path, language: str):
        try:
            from espnet2.bin.s2t_inference import Speech2Text
        except ImportError as err:
            raise ImportError(f"the owsm recogniser needs ESPnet (install it with ./install.sh --espnet): {err}") from err

        # OWSM writes ISO 639-3 language symbols (<zho>); Whisper takes ISO 639-1 (zh).
        lang = {"zh": "zho", "en": "eng", "ja": "jpn"}.get(language, language)
        self.model = Speech2Text(
            s2t_train_config=str(model_dir / "config.yaml"), s2t_model_file=str(model_dir / "model.pth"),
            device="cpu", lang_sym=f"<{lang}>", task_sym="<asr>", beam_size=5,
        )

    def transcribe(self, wav: np.ndarray) -> str:
        """16 kHz float waveform -> the best hypothesis's text without tags or timestamps."""
        return self.model(np.asarray(wav, dtype=np.float32))[0][3]

    def recognize(self, wav: np.ndarray) -> list[str]:
        return text_to_phones(self.transcribe(wav))


def load_recognizer(cfg: AsrBackendConfig) -> PhoneRecognizer:
    """The configured recogniser, or `MetricUnavailable` saying why it cannot be loaded."""
    if not cfg.model_dir:
        raise MetricUnavailable(f"no model directory configured for the {cfg.kind} recogniser")
    model_dir = Path(cfg.model_dir)
    if not model_dir.is_dir():
        raise MetricUnavailable(f"{cfg.kind} recogniser not found: {model_dir} does not exist")
    try:
        if cfg.kind == "ctc":
            from svslm.evaluate.ctc_asr import load_ctc_recognizer

            return load_ctc_recognizer(model_dir)
        if cfg.kind == "whisper":
            return WhisperRecognizer(model_dir, cfg.language)
        return OwsmRecognizer(model_dir, cfg.language)
    except Exception as err:  # noqa: BLE001 - a missing optional package or an incomplete model directory
        raise MetricUnavailable(f"{cfg.kind} recogniser at {model_dir} cannot be loaded ({type(err).__name__}: {err})")


def metric_name(index: int, cfg: AsrBackendConfig) -> str:
    return "PER" if index == 0 else f"PER_{cfg.kind}"
