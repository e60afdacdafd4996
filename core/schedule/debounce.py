"""The two timers file-arrival and table-update triggers share, and the checks common to every trigger.

`wait_after_last_change_seconds`: fire only once nothing changed for that long (a batch of files, or
a series of commits, gives one run). `min_time_between_triggers_seconds`: fire at most that often.
Both are optional; unset means 0 (fire at the first check after the change). Databricks requires
each to be at least 60 s; Floe takes the floor as a parameter (`min_seconds_floor`) so tests and
a laptop can use shorter timers.

All times are epoch milliseconds (ints), the Jobs API's unit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import SchemaVersionError
from core.model.base import invalid, join_path

DATABRICKS_MIN_SECONDS = 60
PAUSE_STATUSES = ("PAUSED", "UNPAUSED")


@dataclass(frozen=True)
class Timers:
    min_time_between_triggers_ms: int = 0
    wait_after_last_change_ms: int = 0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Timers:
        """From validated settings; unset or null timers are 0."""
        return cls(
            min_time_between_triggers_ms=int(settings.get("min_time_between_triggers_seconds") or 0) * 1000,
            wait_after_last_change_ms=int(settings.get("wait_after_last_change_seconds") or 0) * 1000,
        )

    def ready_at(self, last_change_ms: int, last_trigger_ms: int | None) -> int:
        """The first instant both timers allow a fire, given the last change and the last fire."""
        at = last_change_ms + self.wait_after_last_change_ms
        if last_trigger_ms is not None:
            at = max(at, last_trigger_ms + self.min_time_between_triggers_ms)
        return at


def validate_timers(settings: Mapping[str, Any], field: str, min_seconds_floor: int) -> None:
    for name in ("min_time_between_triggers_seconds", "wait_after_last_change_seconds"):
        value = settings.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(join_path(field, name), "must be an integer number of seconds", value)
        if value < min_seconds_floor:
            raise invalid(join_path(field, name), f"must be at least {min_seconds_floor} seconds", value)


def validate_pause_status(value: Any, field: str) -> None:
    if value is not None and value not in PAUSE_STATUSES:
        raise invalid(field, "must be PAUSED or UNPAUSED", value)


def require_mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(field, "must be an object", value)
    return value


STATE_VERSION = 1


def dump_state(payload: dict[str, Any]) -> str:
    """Compact JSON with the schema version `v` every persisted record carries."""
    return json.dumps({"v": STATE_VERSION, **payload}, separators=(",", ":"), ensure_ascii=False)


def load_state(text: str, kind: str) -> dict[str, Any]:
    """Parse `dump_state` output; SchemaVersionError for a newer Floe's record, ValueError for garbage."""
    try:
        data = json.loads(text)
        version = int(data["v"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"not a {kind}: {text[:200]!r}") from exc
    if version > STATE_VERSION:
        raise SchemaVersionError(
            f"a stored {kind} has schema version {version}, newer than this Floe ({STATE_VERSION}); "
            "upgrade Floe to read it"
        )
    return data
