"""`n/a` with a reason: how a metric that cannot be computed is carried, never as a number.

A metric function either raises `MetricUnavailable` (nothing about this metric can be computed,
e.g. its model is absent) or returns it in place of a value (this one utterance cannot be
scored, e.g. no voiced frame). On disk it is `{"n/a": "<reason>"}`.
"""
from __future__ import annotations

from typing import Any


class MetricUnavailable(Exception):
    """A metric value that cannot be computed; `reason` says why."""

    @property
    def reason(self) -> str:
        return str(self.args[0]) if self.args else "unavailable"

    def to_json(self) -> dict[str, str]:
        return {"n/a": self.reason}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricUnavailable) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(self.reason)

    def __repr__(self) -> str:
        return f"MetricUnavailable({self.reason!r})"


def is_na(value: Any) -> bool:
    """True for an n/a value in memory (`MetricUnavailable`) or on disk (`{"n/a": reason}`)."""
    return isinstance(value, MetricUnavailable) or (isinstance(value, dict) and "n/a" in value)


def na_reason(value: Any) -> str:
    return value.reason if isinstance(value, MetricUnavailable) else value["n/a"]


def to_jsonable(value: Any) -> Any:
    """A metric value for JSON: numbers (numpy included) become floats, n/a `{"n/a": reason}`."""
    if isinstance(value, MetricUnavailable):
        return value.to_json()
    return float(value)


def from_jsonable(value: Any) -> Any:
    """`to_jsonable`'s output read back: `{"n/a": reason}` becomes a `MetricUnavailable` again."""
    return MetricUnavailable(na_reason(value)) if is_na(value) else value
