"""The synthesis conditions of the paper's Table 2, and what each one is made of.

A condition is a route from `codec_ssl` tokens to a waveform: which tokens (ground truth or the
LM's decodes), whether a flow model refines them and in which output space, and which decoder
(the codec's or the HiFi-GAN vocoder) makes the audio. The names are the paper's, so tables and
reports read like it; the slugs name directories (`wav/<slug>/`, `scores/<slug>.json`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ConditionName = Literal[
    "CD Resynthesis", "LM + CD", "LM from scratch + CD", "LM + Flow1 + CD", "LM + Flow1 + Voc", "LM + Flow2 + Voc", "GT mel + Voc",
]


@dataclass(frozen=True)
class Condition:
    name: str  # the paper's row name
    slug: str  # directory-safe name
    # codec_ssl source: dump/<split> (gt), the LM's decodes (lm), the decodes of the same fine-tuning
    # started from random weights (lm_scratch), or the reference audio (none)
    tokens: Literal["gt", "lm", "lm_scratch", "none"]
    flow_output: Literal["", "codec_emb", "mel"]  # "" = no flow
    uses_pitch: bool  # the flow is conditioned on the score's frame MIDI too (Flow2)
    decoder: Literal["codec", "vocoder"]  # what turns the last representation into audio
    description: str  # one line for reports

    @property
    def uses_flow(self) -> bool:
        return bool(self.flow_output)


# In the paper's order: Table 2's rows (with the LM from scratch beside LM + CD), then the vocoder's
# own ceiling (neither is in the paper).
CONDITIONS: tuple[Condition, ...] = (
    Condition("CD Resynthesis", "cd_resynthesis", "gt", "", False, "codec",
              "ground-truth codec tokens through the codec decoder (the codec's ceiling)"),
    Condition("LM + CD", "lm_cd", "lm", "", False, "codec",
              "LM-predicted codec tokens through the codec decoder"),
    Condition("LM from scratch + CD", "lm_scratch_cd", "lm_scratch", "", False, "codec",
              "LM + CD, the LM fine-tuned from random weights instead of the pretrained SLM: what pretraining buys "
              "(not in the paper)"),
    Condition("LM + Flow1 + CD", "lm_flow1_cd", "lm", "codec_emb", False, "codec",
              "flow (codec condition) to codec embeddings, then the codec decoder"),
    Condition("LM + Flow1 + Voc", "lm_flow1_voc", "lm", "mel", False, "vocoder",
              "flow (codec condition) to mel, then the vocoder"),
    Condition("LM + Flow2 + Voc", "lm_flow2_voc", "lm", "mel", True, "vocoder",
              "flow (codec + score pitch condition) to mel, then the vocoder"),
    Condition("GT mel + Voc", "gt_mel_voc", "none", "", False, "vocoder",
              "ground-truth mel through the vocoder (the vocoder's ceiling)"),
)
BY_NAME = {c.name: c for c in CONDITIONS}
BY_SLUG = {c.slug: c for c in CONDITIONS}
REFERENCE_SLUG = "reference"  # wav/reference/: the ground-truth recordings


def get_condition(name_or_slug: str) -> Condition:
    """A condition by its paper name or its slug; an unknown one is an error listing the known."""
    cond = BY_NAME.get(name_or_slug) or BY_SLUG.get(name_or_slug)
    if cond is None:
        known = ", ".join(f"'{c.name}' ({c.slug})" for c in CONDITIONS)
        raise ValueError(f"unknown condition {name_or_slug!r}; known: {known}")
    return cond
