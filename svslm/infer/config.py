"""Stage 6 inference config (`conf/infer/*.yaml`): which conditions to render and how.

Each knob has one home. The flow's sampling (solver, Euler steps, guidance) belongs to the flow
model: its YAML's `model.sampling` (conf/flow/*.yaml, saved with the model in
exp/flow/<tag>/<flow_tag>/config.yaml). The `svs_lb` layout belongs to stage 2 (conf/tokenize,
recorded in dump/<split>/data.json). An infer YAML that sets either is an error saying where the
knob lives.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from svslm.infer.conditions import CONDITIONS, ConditionName
from svslm.utils.config import ConfigError, load_config

# Keys that used to live here too, and where each one lives now.
MOVED = {
    "n_steps": "the flow YAML's model.sampling.n_steps (conf/flow/<flow_tag>.yaml; run.sh --flow_args "
               "\"--override model.sampling.n_steps=N\")",
    "guidance": "the flow YAML's model.sampling.guidance (conf/flow/<flow_tag>.yaml)",
    "svs_lb_layout": "stage 2's svs_lb.layout (conf/tokenize/*.yaml), read back from dump/<split>/data.json",
}


@dataclass
class ConditionConfig:
    name: ConditionName  # the paper's row name, e.g. "LM + Flow2 + Voc"
    flow_tag: str = ""  # the flow model's directory under --flow_root = the basename of its conf/flow/*.yaml (conditions with a flow only)
    seed: int | None = None  # flow noise seed; null = InferConfig.seed
    optional: bool = False  # true: a missing component skips this condition (logged, in the manifest) instead of failing


def _default_conditions() -> list[ConditionConfig]:
    flow_tags = {"LM + Flow1 + CD": "flow1_codec", "LM + Flow1 + Voc": "flow1_mel", "LM + Flow2 + Voc": "flow2_mel"}
    return [ConditionConfig(name=c.name, flow_tag=flow_tags.get(c.name, "")) for c in CONDITIONS]  # type: ignore[arg-type]


@dataclass
class InferConfig:
    conditions: list[ConditionConfig] = field(default_factory=_default_conditions)  # rendered in this order
    seed: int = 0  # flow noise seed of each batch
    batch_size: int = 8  # utterances per flow/vocoder batch (sorted by length, so padding stays small)
    decode_config: str = ""  # LM decoding YAML for new scores (`synthesize`); "" = the LM's defaults
    device: str = "auto"  # torch device of the flow, the vocoder and the LM (svslm.utils.device: auto = CUDA when present)

    def __post_init__(self) -> None:
        names = [c.name for c in self.conditions]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"conditions listed twice: {dup}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size ({self.batch_size}) must be >= 1")

    def condition(self, name: str) -> ConditionConfig:
        """The entry of condition `name` (defaults when the config does not list it)."""
        return next((cc for cc in self.conditions if cc.name == name), ConditionConfig(name=name))  # type: ignore[arg-type]

    def seed_of(self, name: str) -> int:
        """The flow noise seed of condition `name`: its own, else the config's."""
        cc = self.condition(name)
        return self.seed if cc.seed is None else cc.seed


def select_conditions(config: InferConfig, names: list[str], where: str) -> InferConfig:
    """`config` with only the conditions `names` (paper names or slugs), in the config's order."""
    from dataclasses import replace

    from svslm.infer.conditions import get_condition

    wanted = {get_condition(n).name for n in names}
    missing = sorted(wanted - {cc.name for cc in config.conditions})
    if missing:
        raise ValueError(f"conditions {missing} are not in {where}")
    return replace(config, conditions=[cc for cc in config.conditions if cc.name in wanted])


def check_moved_keys(data: dict, where: str) -> None:
    """An infer YAML (or override) that sets a knob whose home is elsewhere: say where it lives."""
    found = [(k, where) for k in data if k in MOVED]
    for i, cond in enumerate(data.get("conditions") or []):
        if isinstance(cond, dict):
            found += [(k, f"{where}: conditions[{i}]") for k in cond if k in MOVED]
    if found:
        raise ConfigError("; ".join(f"{w}: '{k}' is not an inference setting; it lives in {MOVED[k]}" for k, w in found))


def load_infer_config(path: str | Path, overrides: list[str] | None = None) -> InferConfig:
    """`load_config` for InferConfig, with a pointer to the right file for moved knobs."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if Path(path).is_file() else {}
    check_moved_keys(raw if isinstance(raw, dict) else {}, str(path))
    check_moved_keys({item.split("=", 1)[0].split(".")[0]: None for item in overrides or []}, "--override")
    return load_config(path, InferConfig, overrides)
