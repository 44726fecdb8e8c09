"""Every `svslm.bin` entry point takes `--override` (what run.sh's `*_args` pass through)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from svslm.bin.args import options_from_overrides
from svslm.utils.config import ConfigError

BIN = Path(__file__).resolve().parents[1] / "svslm/bin"
# `svslm sing` reads its YAML inside svslm.sing (not an entry point of run.sh).
ENTRY_POINTS = sorted(p.stem for p in BIN.glob("*.py") if p.stem not in ("__init__", "args", "sing"))


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_point_takes_override(name, capsys):
    module = importlib.import_module(f"svslm.bin.{name}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert "--override KEY=VALUE" in capsys.readouterr().out


def test_options_without_a_yaml_reject_unknown_keys():
    from svslm.bin.report import ReportOptions

    assert options_from_overrides(ReportOptions, ["max_utts=3", "html=false"], "x") == ReportOptions(3, False)
    with pytest.raises(ConfigError, match="unknown key"):
        options_from_overrides(ReportOptions, ["max_utt=3"], "x")


def test_report_override_limits_the_page(tmp_path):
    from test_report_results import write_eval_dir

    from svslm.bin import report

    eval_dir = write_eval_dir(tmp_path)
    assert report.main(["--eval_dir", str(eval_dir), "--override", "html=false"]) == 0
    assert (eval_dir / "RESULTS.md").is_file() and not (eval_dir / "report").exists()
