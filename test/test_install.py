"""What install.sh promises about the environment it makes."""
from __future__ import annotations

import importlib


def test_fastdtw_has_its_c_extension():
    # install.sh builds it from source; a pure-Python fastdtw (pip's cached wheel) is ~100x slower
    # in the DTW mode of MCD and only works by falling back silently.
    extension = importlib.import_module("fastdtw._fastdtw")
    assert extension.__file__.endswith(".so")
    import fastdtw

    assert fastdtw.fastdtw is extension.fastdtw
