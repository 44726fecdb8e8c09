"""The stage 6 scoring YAML (conf/score/*.yaml): which metric groups `svslm.evaluate.scorer` computes
and each one's settings (declared beside its code: mcd_f0.py, per.py, singer_sim.py, mos.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from svslm.evaluate.mcd_f0 import McdF0Config
from svslm.evaluate.mos import MosConfig
from svslm.evaluate.per import PerConfig
from svslm.evaluate.singer_sim import SingerSimConfig
from svslm.utils.audio import SAMPLE_RATE

MetricGroup = Literal["mcd_f0", "per", "singer_sim", "dnsmos", "singmos", "sheet"]
ALL_GROUPS: tuple[str, ...] = ("mcd_f0", "per", "singer_sim", "dnsmos", "singmos", "sheet")


@dataclass
class MetricsConfig:
    sample_rate: int = SAMPLE_RATE  # Hz; every wav is resampled to this before scoring (the one rate of every metric)
    metrics: list[MetricGroup] = field(default_factory=lambda: list(ALL_GROUPS))  # metric groups to compute
    mcd_f0: McdF0Config = field(default_factory=McdF0Config)
    per: PerConfig = field(default_factory=PerConfig)
    singer_sim: SingerSimConfig = field(default_factory=SingerSimConfig)
    mos: MosConfig = field(default_factory=MosConfig)

    def __post_init__(self) -> None:
        others = [m for m in self.metrics if m != "mcd_f0"]
        if self.sample_rate != SAMPLE_RATE and others:
            raise ValueError(f"sample_rate {self.sample_rate}: the models behind {others} take 16 kHz audio; "
                             "only mcd_f0 can score at another rate (metrics: [mcd_f0])")
