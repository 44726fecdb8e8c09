"""What install.sh promises about the environment it makes."""
from __future__ import annotations

import importlib


def test_fastdtw_has_its_c_extension():
    # install.sh builds it from source; pip's cached wheel may be the pure-Python fallback, which
    # fastdtw's setup.py installs silently when the build fails (MCD's DTW mode then runs in Python).
    extension = importlib.import_module("fastdtw._fastdtw")
    assert extension.__file__.endswith(".so")
    import fastdtw

    assert fastdtw.fastdtw is extension.fastdtw
