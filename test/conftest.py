"""Test selection that composes with any `-m`: the `espnet` tests run only when asked for.

pytest keeps one `-m` (the last), so an `addopts = -m "not espnet"` would be dropped by the fast
lane's `-m "not slow"`; leaving them out here instead keeps `pytest -m "not slow" test` free of
tests that need `./install.sh --espnet`, while `pytest -m espnet test` still selects them.
"""
from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    if "espnet" in (config.getoption("markexpr") or ""):
        return  # the expression decides: `-m espnet`, `-m "espnet and not slow"`, ...
    left_out = [item for item in items if item.get_closest_marker("espnet")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("espnet")]
