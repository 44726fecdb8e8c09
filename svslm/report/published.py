"""Published numbers shown beside ours, each with its source and metric mode.

The paper's own rows (arXiv 2512.14657, Tables 1 and 2; copied as printed, scored with VERSA in
the paper's recipe config, `dtw: false`), and ESPnet's VISinger2 on ACE-Opencpop (`dtw: true`).
docs/paper_results.md says where each number comes from. Values are in our units: the paper
prints PER as a fraction (0.36), RESULTS.md as a percentage (36.0).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedRow:
    system: str  # row label; a row whose label is one of our conditions is shown beside that condition
    table: int  # 1 = system comparison, 2 = recipe ablation
    values: dict[str, float]  # metric (svslm.report.scores.METRICS names) -> published value, in our units
    mode: str  # the F0/MCD mode of the published scoring, e.g. "dtw: true"
    source: str  # where the number comes from
    note: str = ""  # anything a reader must know to compare
    printed_decimals: int | None = None  # decimals as the source prints them (PER: 2 fewer, as a fraction becomes %); None = the table's


PAPER_TABLE1 = "arXiv 2512.14657, Table 1 (Zhao et al., Adapting Speech Language Model to Singing Voice Synthesis)"
PAPER_TABLE2 = "arXiv 2512.14657, Table 2 (the recipe ablation)"
_PAPER_NOTE = "PER printed as a fraction in the paper, shown here in %"
_VISINGER2_SOURCE = (
    "ESPnet VISinger2 on ACE-Opencpop (100 of 500 epochs), scored with VERSA (`dtw: true`), "
    "as recorded in the project's design notes (docs/paper_results.md)"
)


def _paper(system: str, table: int, f0_rmse: float, f0_corr: float, mcd: float, per: float, singmos: float,
           sheet: float, singer_sim: float | None = None) -> PublishedRow:
    values = {"F0_RMSE": f0_rmse, "F0_CORR": f0_corr, "MCD": mcd, "PER": round(per * 100, 6),
              "SingMOS": singmos, "Sheet-SSQA": sheet}
    if singer_sim is not None:
        values["Singer-Sim"] = singer_sim
    return PublishedRow(system, table, values, "dtw: false", PAPER_TABLE1 if table == 1 else PAPER_TABLE2,
                        _PAPER_NOTE if system in ("XiaoiceSing", "CD Resynthesis") else "", printed_decimals=2)


# In the paper's row order. Table 1's own system is LM + Flow1 + Voc (the same numbers as in Table 2).
PUBLISHED: tuple[PublishedRow, ...] = (
    _paper("XiaoiceSing", 1, 71.67, 0.62, 11.47, 0.09, 3.88, 3.62),
    _paper("TokSing", 1, 55.83, 0.67, 6.77, 0.19, 4.08, 3.89),
    _paper("LM + Flow1 + Voc", 1, 62.79, 0.60, 7.86, 0.36, 4.09, 3.79),
    _paper("CD Resynthesis", 2, 51.38, 0.73, 5.84, 0.19, 3.95, 3.78, singer_sim=0.67),
    _paper("LM + CD", 2, 62.90, 0.60, 8.26, 0.56, 3.65, 3.08, singer_sim=0.49),
    _paper("LM + Flow1 + CD", 2, 61.51, 0.60, 8.44, 0.45, 3.64, 3.08, singer_sim=0.49),
    _paper("LM + Flow1 + Voc", 2, 62.79, 0.60, 7.86, 0.36, 4.09, 3.79, singer_sim=0.61),
    _paper("LM + Flow2 + Voc", 2, 62.52, 0.62, 7.66, 0.42, 3.95, 3.55, singer_sim=0.56),
    PublishedRow("VISinger2", 1, {"MCD": 5.76, "F0_RMSE": 59.3, "F0_CORR": 0.679, "SingMOS": 4.38},
                 "dtw: true", _VISINGER2_SOURCE),
    PublishedRow("Ground truth", 1, {"SingMOS": 4.37}, "dtw: true", _VISINGER2_SOURCE,
                 "SingMOS of the recordings in the same evaluation"),
)
