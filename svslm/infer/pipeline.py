"""Render any condition of the paper's Table 2 from `codec_ssl` tokens, and new scores end to end.

`Synthesizer` holds the trained parts of a recipe (codec tokenizer, LM, flow models, vocoder) and
routes each condition through the ones it needs (svslm/infer/conditions.py):

    tokens [T, 9] -> codec columns [T, 8] -> codec.decode                         (CD Resynthesis, LM + CD)
                  -> codec.embed [B, T, D] -> flow.sample -> [B, T, D] -> codec.decode_embedding  (LM + Flow1 + CD)
                  -> codec.embed [B, T, D] (+ frame MIDI [B, T]) -> flow.sample -> mel [B, n_mels, T]
                     -> vocoder -> [B, T * 320]                                   (LM + Flow1/Flow2 + Voc)
    reference wav -> mel [n_mels, T] -> vocoder                                   (GT mel + Voc)

`from_recipe` loads the parts from the directories the stages wrote (docs/formats.md); a part that
is not there is an error naming the file and the stage that makes it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from svslm.infer.conditions import Condition, get_condition
from svslm.infer.config import ConditionConfig, InferConfig
from svslm.tokenize.svs_lb import phones_to_frames, score_to_tokens
from svslm.utils.audio import HOP_LENGTH
from svslm.utils.config import load_config
from svslm.utils.device import resolve_device
from svslm.utils.mel import MelConfig, check_same_mel, mel_spectrogram

log = logging.getLogger(__name__)

N_STREAMS = 9  # codec_ssl: column 0 SSL, columns 1..8 codec


class MissingComponentError(FileNotFoundError):
    """A condition needs a trained part that is not on disk."""


@dataclass
class RecipePaths:
    """Where the stages put the parts inference uses (docs/formats.md)."""

    dump_dir: Path
    lm_dir: Path  # exp/lm/<tag>
    flow_root: Path  # exp/flow/<tag>; one directory per flow config
    vocoder_dir: Path  # exp/vocoder/<tag>
    lm_scratch_dir: Path | None = None  # exp/lm/<tag>_scratch: the LM fine-tuned from random weights (LM from scratch + CD)

    @property
    def codec_dir(self) -> Path:
        return self.dump_dir / "tokenizers" / "codec"

    @property
    def lm_model_dir(self) -> Path:
        return self.lm_dir / "best"

    def flow_dir(self, flow_tag: str) -> Path:
        return self.flow_root / flow_tag

    def svs_lb_layout(self) -> str:
        """The `svs_lb` layout stage 2 tokenized with (the LM was trained on it), from dump/<split>/data.json."""
        found = {}
        for path in sorted(self.dump_dir.glob("*/data.json")):
            layout = json.loads(path.read_text(encoding="utf-8")).get("svs_lb_layout")
            if layout is not None:
                found[str(path)] = layout
        if not found:
            raise MissingComponentError(f"no {self.dump_dir}/<split>/data.json with svs_lb_layout (stage 2 writes it)")
        if len(set(found.values())) > 1:
            raise ValueError("stage 2's splits disagree on the svs_lb layout: "
                             + ", ".join(f"{p}: {v}" for p, v in found.items()) + " (re-run stage 2)")
        return next(iter(found.values()))

    def missing(self, cond: Condition, cc: ConditionConfig, need_lm_model: bool = False) -> list[str]:
        """What `cond` needs and is absent, each with the stage that writes it."""
        out = []
        needs_codec = cond.decoder == "codec" or cond.tokens != "none"
        if needs_codec and not (self.codec_dir / "config.yaml").is_file():
            out.append(f"codec tokenizer {self.codec_dir}/config.yaml (stage 2)")
        if cond.uses_flow:
            if not cc.flow_tag:
                out.append("flow_tag (set it in the infer config for this condition)")
            else:
                out += [f"flow model {self.flow_dir(cc.flow_tag)}/{name} (stage 4, conf/flow/{cc.flow_tag}.yaml)"
                        for name in ("config.yaml", "best.pth") if not (self.flow_dir(cc.flow_tag) / name).is_file()]
        if cond.decoder == "vocoder":
            out += [f"vocoder {self.vocoder_dir}/{name} (stage 5)"
                    for name in ("config.yaml", "generator.pth") if not (self.vocoder_dir / name).is_file()]
        if need_lm_model and cond.tokens == "lm":
            for name in ("config.yaml", "model.pth"):
                if not (self.lm_model_dir / name).is_file():
                    out.append(f"LM checkpoint {self.lm_model_dir}/{name} (stage 3)")
        return out


def component_mel_config(component: Any, where: str) -> MelConfig:
    """The `MelConfig` a flow (mel output) or vocoder was built with (their `mel_config`)."""
    mel = getattr(component, "mel_config", None)
    if not isinstance(mel, MelConfig):
        raise TypeError(f"{where}: the loaded model exposes no MelConfig (mel_config attribute)")
    return mel


def check_flow_fits(flow: Any, cond: Condition) -> None:
    """A flow model given for `cond` must produce its output space and use pitch exactly when it does.

    Loaded flows say so themselves (`output`, `needs_pitch`: svslm.flow.model.FlowModel)."""
    space = getattr(flow, "output", None)
    if space != cond.flow_output:
        raise ValueError(f"'{cond.name}' needs a flow with output {cond.flow_output}, the given one outputs {space}")
    if bool(getattr(flow, "needs_pitch", False)) != cond.uses_pitch:
        raise ValueError(
            f"'{cond.name}' needs a flow {'with' if cond.uses_pitch else 'without'} pitch conditioning "
            f"(Flow{'2' if cond.uses_pitch else '1'}); the given one is the other kind"
        )


def pad_stack(arrays: list[np.ndarray], value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad arrays [T_i, ...] to [B, T_max, ...]; also the valid-frame mask [B, T_max]."""
    t_max = max(len(a) for a in arrays)
    out = np.full((len(arrays), t_max) + arrays[0].shape[1:], value, dtype=arrays[0].dtype)
    mask = np.zeros((len(arrays), t_max), dtype=bool)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
        mask[i, : len(a)] = True
    return out, mask


class Synthesizer:
    """The trained parts of one recipe run, and the routes of every condition through them.

    codec: `svslm.tokenize.codec.CodecTokenizer`; flows: condition name -> loaded flow model;
    vocoder: module mel [B, n_mels, T] -> wav [B, T * 320]; lm: (model, vocab) for new scores.
    Each part may be None when no selected condition needs it.
    """

    def __init__(
        self,
        codec: Any = None,
        flows: dict[str, Any] | None = None,
        vocoder: Any = None,
        lm: tuple[Any, Any] | None = None,
        config: InferConfig | None = None,
        decode_conf: Any = None,
        svs_lb_layout: str | None = None,
    ):
        self.codec = codec
        self.flows = dict(flows or {})
        self.vocoder = vocoder
        self.lm = lm
        self.config = config or InferConfig()
        self.decode_conf = decode_conf
        self.svs_lb_layout = svs_lb_layout  # stage 2's, for new scores (RecipePaths.svs_lb_layout)
        self.device = resolve_device(self.config.device)
        self.vocoder_mel = component_mel_config(vocoder, "vocoder") if vocoder is not None else None
        for name, flow in self.flows.items():
            check_flow_fits(flow, get_condition(name))
            codec_dim = getattr(flow, "codec_dim", None)
            if codec is not None and codec_dim is not None and codec_dim != codec.embed_dim:
                raise ValueError(f"the flow of '{name}' was trained on {codec_dim}-d codec embeddings, "
                                 f"the codec gives {codec.embed_dim}-d: a flow of another codec?")
            if flow.output == "mel" and vocoder is not None:
                check_same_mel(component_mel_config(flow, f"flow of '{name}'"), self.vocoder_mel,
                               f"flow of '{name}'", "vocoder")

    # ---- loading --------------------------------------------------------------------------------
    @classmethod
    def from_recipe(
        cls,
        paths: RecipePaths,
        config: InferConfig,
        conditions: list[str] | None = None,
        need_lm_model: bool = False,
    ) -> Synthesizer:
        """Load what the selected conditions (default: all of `config`) need.

        Every missing part of every selected condition is listed in one MissingComponentError.
        `need_lm_model`: also load the LM checkpoint (for `synthesize` on new scores).
        """
        selected = [cc for cc in config.conditions if conditions is None or cc.name in conditions]
        unknown = set(conditions or []) - {cc.name for cc in selected}
        if unknown:
            raise ValueError(f"conditions {sorted(unknown)} are not in the infer config")
        missing = [
            f"'{cc.name}' needs {item}"
            for cc in selected
            for item in paths.missing(get_condition(cc.name), cc, need_lm_model)
        ]
        if missing:
            raise MissingComponentError("missing components:\n  " + "\n  ".join(missing))
        conds = [get_condition(cc.name) for cc in selected]

        codec = vocoder = lm = decode_conf = layout = None
        device = str(resolve_device(config.device))
        if any(c.tokens != "none" or c.decoder == "codec" for c in conds):
            from svslm.tokenize.codec import load_codec

            codec = load_codec(paths.codec_dir)
        flows: dict[str, Any] = {}
        if any(c.uses_flow for c in conds):
            from svslm.flow.inference import load_flow

            loaded: dict[str, Any] = {}  # two conditions may share one flow directory
            for cc, cond in zip(selected, conds):
                if cond.uses_flow:
                    if cc.flow_tag not in loaded:
                        loaded[cc.flow_tag] = load_flow(paths.flow_dir(cc.flow_tag), device=device)
                    flows[cc.name] = loaded[cc.flow_tag]
        if any(c.decoder == "vocoder" for c in conds):
            from svslm.vocoder.inference import load_vocoder

            mel_flows = [f for n, f in flows.items() if get_condition(n).flow_output == "mel"]
            mel = component_mel_config(mel_flows[0], "flow") if mel_flows else None
            # The vocoder refuses a mel definition other than its own: pass the flow's.
            vocoder = load_vocoder(paths.vocoder_dir, device=device, mel_config=mel)
        if need_lm_model and any(c.tokens == "lm" for c in conds):
            from svslm.lm import inference as lm_inference

            lm = lm_inference.load_lm(paths.lm_model_dir, device=device)
            layout = paths.svs_lb_layout()
            decode_conf = (load_config(config.decode_config, lm_inference.DecodeConfig) if config.decode_config
                           else lm_inference.DecodeConfig())
        return cls(codec=codec, flows=flows, vocoder=vocoder, lm=lm, config=config, decode_conf=decode_conf,
                   svs_lb_layout=layout)

    # ---- rendering ------------------------------------------------------------------------------
    def sampling_settings(
        self, condition: str, n_steps: int | None = None, guidance: float | None = None, seed: int | None = None
    ) -> tuple[int | None, float | None, int]:
        """Flow steps and guidance: the call's, else None = the flow's own `model.sampling` (their one
        home); seed: the call's, else the condition's, else the config's."""
        return n_steps, guidance, self.config.seed_of(get_condition(condition).name) if seed is None else seed

    @torch.no_grad()
    def render(
        self,
        condition: str,
        tokens: list[np.ndarray] | None = None,
        frame_midi: list[np.ndarray] | None = None,
        reference: list[np.ndarray] | None = None,
        prompt_audio: list[np.ndarray] | None = None,
        n_steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        utt_ids: list[str] | None = None,
    ) -> list[np.ndarray]:
        """One batch of one condition -> float32 16 kHz waveforms, utterance i of T_i frames -> T_i * 320.

        tokens: codec_ssl int [T_i, 9] per utterance (all conditions but GT mel + Voc);
        frame_midi: int [T_i] per utterance (Flow2); reference: float32 [N_i] audio (GT mel + Voc);
        prompt_audio: float32 audio of another utterance of each singer, for a flow trained with a
        speaker prompt (`use_prompt`).
        """
        cond = get_condition(condition)
        names = utt_ids or [f"item {i}" for i in range(len(tokens if tokens is not None else reference or []))]
        if cond.tokens == "none":
            if reference is None:
                raise ValueError(f"'{cond.name}' renders from the reference audio; none given")
            mel_cfg = self._need(self.vocoder_mel, "vocoder", cond)
            return self._vocode([mel_spectrogram(np.asarray(w, dtype=np.float32), mel_cfg).numpy() for w in reference])
        if tokens is None:
            raise ValueError(f"'{cond.name}' renders from codec_ssl tokens; none given")
        for name, t in zip(names, tokens):
            if t.ndim != 2 or t.shape[1] != N_STREAMS or len(t) == 0:
                raise ValueError(f"{name}: codec_ssl tokens must be [T > 0, {N_STREAMS}], got {t.shape}")
        codes = [np.asarray(t[:, 1:], dtype=np.int64) for t in tokens]  # drop the SSL column: [T, 8]
        codec = self._need(self.codec, "codec tokenizer", cond)
        if not cond.uses_flow:
            return [np.asarray(codec.decode(c), dtype=np.float32) for c in codes]

        flow = self._need(self.flows.get(cond.name), "flow model", cond)
        lengths = [len(c) for c in codes]
        padded, mask = pad_stack(codes)  # [B, T, 8], [B, T]
        emb = codec.embed(torch.from_numpy(padded)).float().to(self.device)  # [B, T, D]
        pitch = None
        if cond.uses_pitch:
            if frame_midi is None:
                raise ValueError(f"'{cond.name}' needs the score's frame MIDI")
            for name, m, n in zip(names, frame_midi, lengths):
                if len(m) != n:
                    raise ValueError(f"{name}: frame MIDI has {len(m)} frames, tokens have {n}")
            pitch = torch.from_numpy(pad_stack([np.asarray(m, dtype=np.float32) for m in frame_midi])[0]).to(self.device)
        prompt_mel = None
        if getattr(flow, "needs_prompt", False):
            if prompt_audio is None:
                raise ValueError(f"the flow of '{cond.name}' is conditioned on a speaker prompt: pass prompt audio")
            prompt_mel = torch.stack([self._prompt_mel(flow, a) for a in prompt_audio]).to(self.device)  # [B, n_mels, P]
        n_steps, guidance, seed = self.sampling_settings(cond.name, n_steps, guidance, seed)
        out = flow.sample(emb, pitch, torch.from_numpy(mask).to(self.device), n_steps=n_steps, guidance=guidance,
                          seed=seed, prompt_mel=prompt_mel)
        if cond.flow_output == "codec_emb":  # [B, T, D]
            return [np.asarray(codec.decode_embedding(out[i, :n].cpu()), dtype=np.float32) for i, n in enumerate(lengths)]
        return self._vocode([out[i, :, :n].cpu().numpy() for i, n in enumerate(lengths)])  # [B, n_mels, T]

    @staticmethod
    def _prompt_mel(flow: Any, audio: np.ndarray) -> torch.Tensor:
        """The flow's speaker prompt, made as in its training data (svslm.flow.data)."""
        from svslm.flow.data import tile_to

        mel = mel_spectrogram(np.asarray(audio, dtype=np.float32), flow.mel_config).numpy()
        return torch.from_numpy(tile_to(mel, flow.cfg.prompt_frames))

    def _vocode(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """Mels [n_mels, T_i] -> waveforms [T_i * 320], batched with silence padding."""
        vocoder = self._need(self.vocoder, "vocoder", None)
        mel_cfg = self.vocoder_mel
        silence = 10.0 * np.log10(mel_cfg.floor**2) if mel_cfg.log_scale == "db_power" else np.log(mel_cfg.floor)
        lengths = [m.shape[1] for m in mels]
        batch, _ = pad_stack([m.T.astype(np.float32) for m in mels], value=float(silence))  # [B, T, n_mels]
        wav = vocoder(torch.from_numpy(batch).transpose(1, 2).to(self.device))  # [B, n_mels, T] -> [B, T * 320]
        wav = wav.reshape(len(mels), -1).cpu().numpy()
        return [wav[i, : n * HOP_LENGTH].astype(np.float32) for i, n in enumerate(lengths)]

    @staticmethod
    def _need(part: Any, what: str, cond: Condition | None) -> Any:
        if part is None:
            raise MissingComponentError(f"{what} not loaded" + (f" (needed by '{cond.name}')" if cond else ""))
        return part

    # ---- new scores -----------------------------------------------------------------------------
    def synthesize(
        self,
        phones: list[dict],
        prompt: np.ndarray,
        condition: str = "LM + Flow2 + Voc",
        n_flow_steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        prompt_audio: np.ndarray | None = None,
    ) -> np.ndarray:
        """A new score (score.json `phones` entries) sung by the singer of `prompt` (int32 [P, 9]
        codec_ssl frames) -> float32 16 kHz waveform of the score's length (frames * 320).

        `prompt_audio`: the prompt's recording, for a flow trained with a speaker prompt; without
        it such a flow gets the codec's decoding of `prompt`."""
        cond = get_condition(condition)
        if cond.tokens != "lm":
            raise ValueError(f"'{cond.name}' needs ground-truth audio; a new score can use only the LM conditions")
        if self.lm is None:
            raise MissingComponentError("LM not loaded (Synthesizer.from_recipe(..., need_lm_model=True))")
        from svslm.lm.inference import DecodeConfig, decode

        if self.svs_lb_layout is None:
            raise ValueError("the svs_lb layout the LM was trained on is unknown: load the Synthesizer with "
                             "from_recipe(..., need_lm_model=True), which reads it from dump/<split>/data.json")
        svs_lb = score_to_tokens(phones, None, layout=self.svs_lb_layout, where="new score")
        _, midi = phones_to_frames(phones, where="new score")
        model, vocab = self.lm
        # n_frames: the drift-free frame count, also when the fork layout rounds each phone on its own.
        tokens = decode(model, vocab, [svs_lb], [np.asarray(prompt, dtype=np.int32)],
                        self.decode_conf or DecodeConfig(), seed, n_frames=[len(midi)])[0]
        tokens = np.asarray(tokens)
        if len(tokens) != len(midi):
            raise RuntimeError(f"LM decoded {len(tokens)} frames for a score of {len(midi)}")
        if prompt_audio is None and getattr(self.flows.get(cond.name), "needs_prompt", False):
            prompt_audio = self.codec.decode(np.asarray(prompt)[:, 1:])
        return self.render(cond.name, [tokens], [midi], prompt_audio=None if prompt_audio is None else [prompt_audio],
                           n_steps=n_flow_steps, guidance=guidance, seed=seed)[0]
