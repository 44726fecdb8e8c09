"""Arguments every `svslm.bin` entry point shares."""
from __future__ import annotations

import argparse
from typing import TypeVar

from svslm.utils.config import from_dict, set_by_path

T = TypeVar("T")


def add_override(parser: argparse.ArgumentParser) -> None:
    """`--override key.path=value ...` (repeatable; values are YAML): what run.sh's `*_args` pass through."""
    parser.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. train.max_steps=100 (repeatable; YAML values)")


def options_from_overrides(cls: type[T], overrides: list[str], where: str) -> T:
    """The options dataclass of an entry point without a YAML config, from its `--override`s
    (unknown keys are an error listing the known ones)."""
    import yaml

    data: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override '{item}' must look like key=value")
        key, raw = item.split("=", 1)
        set_by_path(data, key, yaml.safe_load(raw))
    return from_dict(cls, data, where)
