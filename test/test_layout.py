"""The package's shape: test doubles only in svslm.testing, which the package itself never
imports; loading a model for inference never imports a training module."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "svslm"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_nothing_in_the_package_imports_its_test_doubles():
    assert (PACKAGE / "testing").is_dir()
    assert not list(PACKAGE.rglob("fixtures.py")), "test doubles belong in svslm/testing/"
    users = {str(p.relative_to(PACKAGE)): sorted(m for m in _imported_modules(p) if m.startswith("svslm.testing"))
             for p in PACKAGE.rglob("*.py") if "testing" not in p.relative_to(PACKAGE).parts}
    assert {p: m for p, m in users.items() if m} == {}


@pytest.mark.slow
def test_inference_imports_no_training_module():
    code = ("import sys, svslm.flow.inference, svslm.vocoder.inference, svslm.lm.inference, svslm.infer.run, "
            "svslm.sing.synthesize; print(sorted(m for m in sys.modules if m.startswith('svslm') "
            "and (m.endswith('.train') or m.startswith('svslm.testing'))))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
