"""Published numbers shown beside ours, each with its source and metric mode.

Only numbers we could trace are here (docs/paper_results.md says what was searched and not
found): the paper's own Table 1/Table 2 values could not be retrieved offline, so none of them
is listed rather than any being guessed. Add a row here, with its source, when you have the paper.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedRow:
    system: str  # row label
    table: int  # 1 = system comparison, 2 = recipe ablation
    values: dict[str, float]  # metric (svslm.report.scores.METRICS names) -> published value
    mode: str  # the F0/MCD mode of the published scoring, e.g. "dtw: true"
    source: str  # where the number comes from
    note: str = ""  # anything a reader must know to compare


_VISINGER2_SOURCE = (
    "ESPnet VISinger2 on ACE-Opencpop (100 of 500 epochs), scored with VERSA (`dtw: true`), "
    "as recorded in the project's design notes (docs/paper_results.md)"
)

PUBLISHED: tuple[PublishedRow, ...] = (
    PublishedRow("VISinger2", 1, {"MCD": 5.76, "F0_RMSE": 59.3, "F0_CORR": 0.679, "SingMOS": 4.38},
                 "dtw: true", _VISINGER2_SOURCE),
    PublishedRow("Ground truth", 1, {"SingMOS": 4.37}, "dtw: true", _VISINGER2_SOURCE,
                 "SingMOS of the recordings in the same evaluation"),
)
