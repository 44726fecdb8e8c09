"""One logging format for every `python -m svslm.bin.*` entry point."""
from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(verbose: bool = False) -> logging.Logger:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=FORMAT, stream=sys.stderr, force=True
    )
    return logging.getLogger("svslm")
