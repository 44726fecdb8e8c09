"""The tiny-ESPnet-model builder (local/espnet_tiny_models.py) for the `espnet` tests."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("espnet_tiny_models", ROOT / "local" / "espnet_tiny_models.py")
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)
