"""YAML configs backed by dataclasses.

Every config section is a dataclass: each field is typed, defaulted and documented once (a
comment beside the field). Loading a YAML file checks it against the dataclass: an unknown key,
a missing required key or a value of the wrong type is an error that names the file and the
key path, never silently ignored.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file does not match its schema."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp` and build nested dataclasses."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        # Each alternative's own complaint: for dataclasses told apart by `kind`, the one that names the bad key.
        raise ConfigError(f"{where}: {value!r} matches none of {[_type_name(a) for a in args]}:\n  " + "\n  ".join(errors))
    if typing.get_origin(tp) is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return _build(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _convert(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type[T], data: dict, where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} for {cls.__name__}; known keys: {sorted(fields)}"
        )
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}.{name}" if where else name)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: required key '{name}' of {cls.__name__} is missing")
    return cls(**kwargs)


def from_dict(cls: type[T], data: dict | None, source: str = "<dict>") -> T:
    """Build dataclass `cls` from a mapping, checking keys and types."""
    return _build(cls, data or {}, source)


def set_by_path(data: dict, dotted: str, value: Any) -> None:
    """Apply an override such as `optim.lr=1e-4` to a nested mapping."""
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def read_yaml_mapping(path: str | Path, error: type[Exception] = ConfigError) -> dict:
    """The top-level mapping of YAML file `path`; bad YAML or another top level raises `error`
    naming the file."""
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise error(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise error(f"{path}: top level must be a mapping")
    return data


def load_config(path: str | Path, cls: type[T], overrides: list[str] | None = None, section: str | None = None) -> T:
    """Load YAML `path` into dataclass `cls`; `overrides` are `a.b=value` strings (YAML values).
    `section`: build `cls` from that top-level mapping only (a trained model's saved config holds
    its training settings too, which loading the model for inference need not know)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    data = read_yaml_mapping(path)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.path=value")
        key, raw = item.split("=", 1)
        set_by_path(data, key, yaml.safe_load(raw))
    if section is not None:
        if not isinstance(data.get(section), dict):
            raise ConfigError(f"{path}: no '{section}' mapping")
        return _build(cls, data[section], f"{path}:{section}")
    return _build(cls, data, str(path))


def to_dict(obj: Any) -> Any:
    """A dataclass config as plain YAML-serialisable data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def save_config(obj: Any, path: str | Path) -> None:
    """Write a dataclass config as YAML (atomically)."""
    from svslm.utils.fileio import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False, allow_unicode=True))
