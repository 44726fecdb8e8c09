"""Stage 1: prepare `data/{train,dev,test}` from a corpus on disk (see svslm.data.prepare)."""
from __future__ import annotations

import argparse
import sys

from svslm.bin.args import add_override, options_from_overrides
from svslm.data.prepare import READERS, PrepareConfig, PrepareError, prepare
from svslm.utils.config import ConfigError, load_config
from svslm.utils.logging import setup_logging


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--format", required=True, choices=sorted(READERS), help="corpus layout")
    parser.add_argument("--db_root", required=True, help="corpus directory")
    parser.add_argument("--data_dir", default="data", help="output: <data_dir>/{train,dev,test}")
    parser.add_argument("--fs", type=int, default=16000, help="sample rate of the written audio")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    parser.add_argument("--skip_bad", type=_bool, default=False,
                        help="leave bad utterances out (listed in <data_dir>/skipped.txt) instead of failing")
    parser.add_argument("--config", default=None, help="YAML for PrepareConfig (tolerances, dev size)")
    add_override(parser)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    log = setup_logging(args.verbose)
    try:
        cfg = (load_config(args.config, PrepareConfig, args.override) if args.config
               else options_from_overrides(PrepareConfig, args.override, "--override"))
        prepare(args.format, args.db_root, args.data_dir, args.fs, args.nj, args.skip_bad, cfg)
    except (PrepareError, ConfigError, FileNotFoundError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
