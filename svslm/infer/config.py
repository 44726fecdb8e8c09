"""Stage 6 inference config (`conf/infer/*.yaml`): which conditions to render and how."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from svslm.infer.conditions import CONDITIONS, ConditionName


@dataclass
class ConditionConfig:
    name: ConditionName  # the paper's row name, e.g. "LM + Flow2 + Voc"
    flow_tag: str = ""  # the flow model's directory under --flow_root (conditions with a flow only)
    n_steps: int | None = None  # Euler steps of the flow ODE; null = InferConfig.n_steps
    guidance: float | None = None  # classifier-free guidance scale; null = InferConfig.guidance
    seed: int | None = None  # flow noise seed; null = InferConfig.seed
    optional: bool = False  # true: a missing component skips this condition (logged, in the manifest) instead of failing


def _default_conditions() -> list[ConditionConfig]:
    flow_tags = {"LM + Flow1 + CD": "flow1_codec", "LM + Flow1 + Voc": "flow1_mel", "LM + Flow2 + Voc": "flow2_mel"}
    return [ConditionConfig(name=c.name, flow_tag=flow_tags.get(c.name, "")) for c in CONDITIONS]  # type: ignore[arg-type]


@dataclass
class InferConfig:
    conditions: list[ConditionConfig] = field(default_factory=_default_conditions)  # rendered in this order
    n_steps: int = 10  # Euler steps of the flow ODE (the paper: 10)
    guidance: float = 0.7  # classifier-free guidance scale (the paper: 0.7)
    seed: int = 0  # flow noise seed of each batch
    batch_size: int = 8  # utterances per flow/vocoder batch (sorted by length, so padding stays small)
    svs_lb_layout: Literal["frame", "fork"] = "frame"  # svs_lb layout the LM was trained on (stage 2's svs_lb.layout); new scores only
    decode_config: str = ""  # LM decoding YAML for new scores (`synthesize`); "" = the LM's defaults
    device: str = "cpu"  # torch device of the flow and the vocoder

    def __post_init__(self) -> None:
        names = [c.name for c in self.conditions]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"conditions listed twice: {dup}")
        if self.batch_size < 1 or self.n_steps < 1:
            raise ValueError(f"batch_size ({self.batch_size}) and n_steps ({self.n_steps}) must be >= 1")

    def condition(self, name: str) -> ConditionConfig:
        """The entry of condition `name` (defaults when the config does not list it)."""
        return next((cc for cc in self.conditions if cc.name == name), ConditionConfig(name=name))  # type: ignore[arg-type]

    def sampling(self, name: str) -> tuple[int, float, int]:
        """Flow steps, guidance and seed of condition `name`: its own, else the config's."""
        cc = self.condition(name)
        return (self.n_steps if cc.n_steps is None else cc.n_steps,
                self.guidance if cc.guidance is None else cc.guidance,
                self.seed if cc.seed is None else cc.seed)
