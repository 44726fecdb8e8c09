"""Stand-in components with the documented interfaces (docs/formats.md), and a tiny recipe
directory for them, for tests of stage 6.

Each one records how it was called and returns a constant signal that names it (codec decoder
0.1, codec-latent decoder 0.2, vocoder 0.3), so a test can tell which part made a waveform.
"""
from __future__ import annotations

import json
from pathlib import Path

import kaldiio
import numpy as np
import soundfile as sf
import torch

from svslm.utils.audio import FRAME_RATE, HOP_LENGTH, SAMPLE_RATE
from svslm.utils.fileio import write_kaldi_map
from svslm.utils.mel import MelConfig


class FakeCodec:
    sample_rate, frame_rate, n_codebooks = SAMPLE_RATE, FRAME_RATE, 8

    def __init__(self, codebook_size: int = 16, embed_dim: int = 4):
        self.codebook_size, self.embed_dim = codebook_size, embed_dim
        self.calls: list[tuple[str, tuple]] = []

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T, 8] -> [B, T, D]
        self.calls.append(("embed", tuple(tokens.shape)))
        return tokens[..., : self.embed_dim].float()

    def decode(self, tokens: np.ndarray) -> np.ndarray:  # [T, 8] -> [T * 320]
        tokens = np.asarray(tokens)
        assert tokens.shape[1] == 8, tokens.shape
        self.calls.append(("decode", tokens.copy()))
        return np.full(len(tokens) * HOP_LENGTH, 0.1, dtype=np.float32)

    def decode_embedding(self, z) -> np.ndarray:  # [T, D] -> [T * 320]
        z = np.asarray(z)
        assert z.shape[1] == self.embed_dim, z.shape
        self.calls.append(("decode_embedding", z.shape))
        return np.full(len(z) * HOP_LENGTH, 0.2, dtype=np.float32)


class FakeFlow:
    def __init__(self, output: str = "mel", needs_pitch: bool = False, mel_config: MelConfig | None = None,
                 embed_dim: int = 4, needs_prompt: bool = False):
        self.output, self.needs_pitch, self.needs_prompt = output, needs_pitch, needs_prompt
        self.mel_config = mel_config or MelConfig()
        self.embed_dim = embed_dim
        self.calls: list[dict] = []

    def sample(self, codec_emb, pitch, mask, n_steps, guidance, seed, prompt_mel=None):
        self.calls.append({"codec_emb": codec_emb, "pitch": pitch, "mask": mask, "n_steps": n_steps,
                           "guidance": guidance, "seed": seed, "prompt_mel": prompt_mel})
        b, t, _ = codec_emb.shape
        if self.output == "mel":
            return torch.zeros(b, self.mel_config.n_mels, t)
        return torch.zeros(b, t, self.embed_dim)


class FakeVocoder:
    def __init__(self, mel_config: MelConfig | None = None):
        self.mel_config = mel_config or MelConfig()
        self.calls: list[torch.Tensor] = []

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:  # [B, n_mels, T] -> [B, T * 320]
        assert mel.shape[1] == self.mel_config.n_mels, mel.shape
        self.calls.append(mel.clone())
        return torch.full((mel.shape[0], mel.shape[2] * HOP_LENGTH), 0.3)


def fake_parts() -> dict:
    """A codec, the three flows of Table 2 by condition name, and a vocoder."""
    return {
        "codec": FakeCodec(),
        "flows": {
            "LM + Flow1 + CD": FakeFlow("codec_emb"),
            "LM + Flow1 + Voc": FakeFlow("mel"),
            "LM + Flow2 + Voc": FakeFlow("mel", needs_pitch=True),
        },
        "vocoder": FakeVocoder(),
    }


UTTS = {"s1#001": 6, "s1#002": 4, "s2#003": 8}  # utterance -> frames of make_recipe's test split


def make_recipe(root: Path, lm_utts=tuple(UTTS), flow_tags=("f1c", "f1m", "f2m"), scratch_lm: bool = False) -> dict[str, Path]:
    """data/test, dump (codec dir + GT tokens), exp/lm decodes and placeholder checkpoints;
    `scratch_lm`: also the decodes of an LM from scratch (exp/lm/t_scratch, `lm_scratch_dir`)."""
    data, dump, lm, flow, voc = (root / p for p in ("data/test", "dump", "exp/lm/t", "exp/flow/t", "exp/vocoder/t"))
    (data / "wav").mkdir(parents=True)
    wavs, score = {}, {"version": 1, "utts": {}}
    for utt, n in UTTS.items():
        path = data / "wav" / f"{utt}.wav"
        sf.write(path, np.zeros(n * HOP_LENGTH, np.float32), SAMPLE_RATE, subtype="PCM_16")
        wavs[utt] = str(path)
        score["utts"][utt] = {"notes": [], "phones": [{"phn": "a", "start": 0.0, "end": n / FRAME_RATE, "midi": 60, "note": 0}]}
    write_kaldi_map(data / "wav.scp", wavs)
    write_kaldi_map(data / "utt2dur", {u: str(n / FRAME_RATE) for u, n in UTTS.items()})
    (data / "score.json").write_text(json.dumps(score))
    scratch = root / "exp/lm/t_scratch"
    for d, utts in ((dump / "test", UTTS), (lm / "decode/test", lm_utts), *(((scratch / "decode/test", UTTS),) if scratch_lm else ())):
        d.mkdir(parents=True)
        with kaldiio.WriteHelper(f"ark,scp:{d}/codec_ssl.ark,{d}/codec_ssl.scp", write_function="numpy") as w:
            for u in utts:
                w(u, np.ones((UTTS[u], 9), np.int32))
    for d, files in ((dump / "tokenizers/codec", ["config.yaml"]), (voc, ["config.yaml", "generator.pth"]),
                     *((flow / tag, ["config.yaml", "best.pth"]) for tag in flow_tags)):
        d.mkdir(parents=True, exist_ok=True)
        for f in files:
            (d / f).write_text("model: {}\n")
    for tag in flow_tags:  # the flow's own sampling settings, as stage 4 saves them
        (flow / tag / "config.yaml").write_text("model:\n  sampling: {solver: euler, n_steps: 10, guidance: 0.7}\n")
    (dump / "test" / "data.json").write_text(json.dumps({"svs_lb_layout": "frame"}))  # stage 2's layout
    return {"data_dir": data, "dump_dir": dump, "lm_dir": lm, "flow_root": flow, "vocoder_dir": voc,
            "out_dir": root / "exp/eval/t", **({"lm_scratch_dir": scratch} if scratch_lm else {})}
