"""`trigger.table_update` (older name `trigger.table`): `{table_names, condition, the two timers}`.

Floe has no Unity Catalog, so a table is given by the **path of its Delta table** (an absolute local
path or `file:///...` on the embedded default; an Azure URL in the forms `urls.py` accepts). A new
Delta log version (`_delta_log/<version>.json`) is an update. At most 10 tables (Databricks' limit).

`condition`: `ANY_UPDATED` (default) fires when at least one table changed since the last fire;
`ALL_UPDATED` waits until every table changed at least once since the last fire. Then the two timers
(`debounce.Timers`) apply as for file arrival, measured from the latest observed update.

The first observation of a table is its baseline (a table that already has versions does not fire
when the trigger is created). A table that did not exist and then appears (version 0) is an update.

The run gets trigger `TABLE`; `updated_tables(state)` read *before* the fire lists the tables that
changed (for `{{job.trigger.table_update.updated_tables}}`), with their versions in `state.versions`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from core.model.base import invalid, join_path
from core.schedule.debounce import (
    DATABRICKS_MIN_SECONDS,
    Timers,
    dump_state,
    load_state,
    require_mapping,
    validate_timers,
)
from core.schedule.urls import parse_location

MAX_TABLES = 10
CONDITIONS = ("ANY_UPDATED", "ALL_UPDATED")
_COMMIT = re.compile(r"(\d{20})\.json")


def validate_table_update(
    settings: Any,
    field: str = "settings.trigger.table_update",
    *,
    min_seconds_floor: int = DATABRICKS_MIN_SECONDS,
) -> None:
    settings = require_mapping(settings, field)
    names = settings.get("table_names")
    names_field = join_path(field, "table_names")
    if names is None:
        raise invalid(names_field, "is required")
    if not isinstance(names, list) or not names:
        raise invalid(names_field, "must be a non-empty list of Delta table paths", names)
    if len(names) > MAX_TABLES:
        raise invalid(names_field, f"must have at most {MAX_TABLES} tables (it has {len(names)})")
    for i, name in enumerate(names):
        _check_table(name, join_path(names_field, i))
    if len(set(names)) != len(names):
        raise invalid(names_field, "must not repeat a table", names)
    condition = settings.get("condition")
    if condition is not None and condition not in CONDITIONS:
        raise invalid(join_path(field, "condition"), f"must be one of {', '.join(CONDITIONS)}", condition)
    validate_timers(settings, field, min_seconds_floor)


def _check_table(name: Any, field: str) -> None:
    if not isinstance(name, str) or not name:
        raise invalid(field, "must be a non-empty string", name)
    if name.startswith("/"):
        return
    if "://" not in name:
        raise invalid(
            field,
            "must be the path of a Delta table (Floe has no Unity Catalog names): "
            "an absolute path, file:///..., abfss://... or https://...",
            name,
        )
    parse_location(name, field=field)


@dataclass(frozen=True)
class TableUpdateState:
    """Per table: the last Delta version seen (None: the table did not exist); `updated`: tables that
    changed since the last fire (the SDK's `has_seen_updates`)."""

    versions: Mapping[str, int | None] = field(default_factory=lambda: MappingProxyType({}))
    updated: frozenset[str] = frozenset()
    last_change_ms: int | None = None
    last_trigger_ms: int | None = None

    def to_json(self) -> str:
        return dump_state(
            {
                "versions": dict(sorted(self.versions.items())),
                "updated": sorted(self.updated),
                "last_change_ms": self.last_change_ms,
                "last_trigger_ms": self.last_trigger_ms,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> TableUpdateState:
        data = load_state(text, "table-update trigger state")
        try:
            return cls(
                versions=MappingProxyType(
                    {str(t): None if v is None else int(v) for t, v in data.get("versions", {}).items()}
                ),
                updated=frozenset(str(t) for t in data.get("updated", ())),
                last_change_ms=data.get("last_change_ms"),
                last_trigger_ms=data.get("last_trigger_ms"),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a table-update trigger state: {text[:200]!r}") from exc


def observe_versions(
    state: TableUpdateState, latest: Mapping[str, int | None], now_ms: int
) -> TableUpdateState:
    """Fold in the latest Delta version of each table (None: no table there yet). The same
    observation twice changes nothing."""
    versions = dict(state.versions)
    changed: set[str] = set()
    for table, version in latest.items():
        if table not in versions:
            versions[table] = version  # baseline
        elif versions[table] != version and version is not None:
            versions[table] = version
            changed.add(table)
        # A table that vanished (version None) keeps its last version: deleting is not an update.
    if not changed:
        return (
            state if versions == dict(state.versions) else replace(state, versions=MappingProxyType(versions))
        )
    return replace(
        state,
        versions=MappingProxyType(versions),
        updated=state.updated | changed,
        last_change_ms=now_ms,
    )


def updated_tables(settings: Mapping[str, Any], state: TableUpdateState) -> list[str]:
    """The tables that changed since the last fire, in `table_names` order."""
    return [t for t in settings["table_names"] if t in state.updated]


def due(
    settings: Mapping[str, Any], state: TableUpdateState, now_ms: int, *, paused: bool = False
) -> tuple[bool, TableUpdateState]:
    """Whether to start a run now; on True the returned state has `updated` cleared."""
    if paused or state.last_change_ms is None or not _condition_met(settings, state):
        return False, state
    if now_ms < Timers.from_settings(settings).ready_at(state.last_change_ms, state.last_trigger_ms):
        return False, state
    return True, replace(state, updated=frozenset(), last_change_ms=None, last_trigger_ms=now_ms)


def next_check_ms(settings: Mapping[str, Any], state: TableUpdateState) -> int | None:
    """When the timers allow a fire for the updates already seen; None when the condition is not
    met (then only a new observation can make the trigger due: poll versions on the lead's cadence)."""
    if state.last_change_ms is None or not _condition_met(settings, state):
        return None
    return Timers.from_settings(settings).ready_at(state.last_change_ms, state.last_trigger_ms)


def _condition_met(settings: Mapping[str, Any], state: TableUpdateState) -> bool:
    tables = settings["table_names"]
    if (settings.get("condition") or "ANY_UPDATED") == "ALL_UPDATED":
        return all(t in state.updated for t in tables)
    return any(t in state.updated for t in tables)


def commit_version(name: str) -> int | None:
    """The version of a Delta log file name (`00000000000000000007.json` -> 7), None for any other file."""
    match = _COMMIT.fullmatch(name)
    return int(match.group(1)) if match else None


def latest_delta_version(path: str) -> int | None:
    """The newest commit version in `<path>/_delta_log/` (local paths and `file://` URLs only), or
    None when there is no Delta table there yet. Only `<20 digits>.json` commit files count
    (checkpoints, `.crc` and temporary files do not); log clean-up never removes the newest commit."""
    if path.startswith("file:"):
        path = unquote(urlsplit(path).path)
    log = os.path.join(path, "_delta_log")
    try:
        entries = os.scandir(log)
    except (FileNotFoundError, NotADirectoryError):
        return None
    latest: int | None = None
    with entries:
        for entry in entries:
            match = _COMMIT.fullmatch(entry.name)
            if match:
                version = int(match.group(1))
                latest = version if latest is None else max(latest, version)
    return latest
