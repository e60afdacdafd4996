"""`trigger.file_arrival`: `{url, min_time_between_triggers_seconds, wait_after_last_change_seconds}`.

Arrivals reach a trigger two ways, and both are folded into one `FileArrivalState`:

- events (`handle_blob_created(url)` from Event Grid / a blob trigger, or the local folder watcher)
  call `record_arrival` for each trigger whose location `matches` the URL;
- a periodic reconcile listing of the whole location calls `reconcile_listing`, so an event that
  was lost is found later instead of being a missed run.

`seen` (path -> (size, modified_ms or None)) makes both idempotent: the same event twice, or an event and
then the listing that sees the same file, count once. A file whose size or modified time changed
counts again (a re-upload). Paths are whatever the caller uses consistently; use
`StorageLocation.relative(url)` (e.g. `sub/x.csv`).

**The first listing is a baseline.** Databricks fires only for files that arrive after the trigger
is enabled, so the first `reconcile_listing` of a new trigger records the existing files as seen and
fires nothing (an event recorded before that baseline still counts: it arrived after enabling).

**Bounded memory.** `seen` holds at most `max_seen` entries (10,000, the number of files Databricks
allows in a polled location). When it overflows, the entries with the oldest modified time are
dropped and `watermark_ms` remembers the newest modified time dropped; a file not in `seen` whose
modified time is not after the watermark is taken as already seen. (Price: a genuinely new file
copied with an old preserved mtime into an overflowing folder is not noticed. Blob storage sets the
modified time on upload, so this only concerns local copies like `cp -p`.)

**Firing** (`due`): there are unprocessed arrivals, nothing changed for `wait_after_last_change`, and
`min_time_between_triggers` passed since the last fire. Firing clears the pending count and records
the fire time. `last_change_ms` is the instant Floe *observed* the change (the `now_ms` of the event
or listing), not the file's modified time, so storage-server clock skew cannot shorten the wait.

The run created for a fire has trigger `FILE_ARRIVAL` and `{{job.trigger.file_arrival.location}}`
= the trigger's `url` as the user wrote it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

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

MAX_SEEN = 10_000
RECONCILE_INTERVAL_MS = 60_000  # Databricks checks a location about once a minute


def validate_file_arrival(
    settings: Any,
    field: str = "settings.trigger.file_arrival",
    *,
    min_seconds_floor: int = DATABRICKS_MIN_SECONDS,
) -> None:
    settings = require_mapping(settings, field)
    if settings.get("url") is None:
        raise invalid(join_path(field, "url"), "is required")
    parse_location(settings["url"], field=join_path(field, "url"))
    validate_timers(settings, field, min_seconds_floor)


@dataclass(frozen=True)
class FileArrivalState:
    """What a file-arrival trigger remembers between checks; persist with `to_json`.

    `seen` is read-only (a mapping proxy); every operation returns a new state.
    """

    baselined: bool = False
    last_trigger_ms: int | None = None
    pending: int = 0  # arrivals since the last fire
    pending_since_ms: int | None = None  # when the first of them was observed
    last_change_ms: int | None = None  # when the latest of them was observed
    last_listing_ms: int | None = None
    watermark_ms: int | None = None
    seen: Mapping[str, tuple[int, int | None]] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> str:
        return dump_state(
            {
                "baselined": self.baselined,
                "last_trigger_ms": self.last_trigger_ms,
                "pending": self.pending,
                "pending_since_ms": self.pending_since_ms,
                "last_change_ms": self.last_change_ms,
                "last_listing_ms": self.last_listing_ms,
                "watermark_ms": self.watermark_ms,
                "seen": {path: [size, modified] for path, (size, modified) in sorted(self.seen.items())},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> FileArrivalState:
        data = load_state(text, "file-arrival trigger state")
        try:
            return cls(
                baselined=bool(data.get("baselined", False)),
                last_trigger_ms=data.get("last_trigger_ms"),
                pending=int(data.get("pending", 0)),
                pending_since_ms=data.get("pending_since_ms"),
                last_change_ms=data.get("last_change_ms"),
                last_listing_ms=data.get("last_listing_ms"),
                watermark_ms=data.get("watermark_ms"),
                seen=MappingProxyType(
                    {
                        str(p): (int(s), None if m is None else int(m))
                        for p, (s, m) in data.get("seen", {}).items()
                    }
                ),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a file-arrival trigger state: {text[:200]!r}") from exc


def _same(known: tuple[int, int | None], size: int, modified_ms: int | None) -> bool:
    # An event may not know the modified time (Event Grid's BlobCreated carries the size but not
    # Last-Modified); then the size alone decides, and a later listing fills the time in.
    if known[0] != size:
        return False
    return known[1] is None or modified_ms is None or known[1] == modified_ms


def _is_new(state: FileArrivalState, path: str, size: int, modified_ms: int | None) -> bool:
    known = state.seen.get(path)
    if known is not None:
        return not _same(known, size, modified_ms)
    return state.watermark_ms is None or modified_ms is None or modified_ms > state.watermark_ms


def _age(item: tuple[str, tuple[int, int | None]]) -> tuple[float, str]:
    modified = item[1][1]
    return (float("inf") if modified is None else modified, item[0])


def _bounded(
    seen: dict[str, tuple[int, int | None]], watermark_ms: int | None, max_seen: int
) -> tuple[Mapping[str, tuple[int, int | None]], int | None]:
    if len(seen) > max_seen:
        by_age = sorted(seen.items(), key=_age)
        dropped = [m for _, (_, m) in by_age[: len(seen) - max_seen] if m is not None]
        if dropped:
            watermark_ms = max(dropped) if watermark_ms is None else max(watermark_ms, *dropped)
        seen = dict(by_age[len(seen) - max_seen :])
    return MappingProxyType(seen), watermark_ms


def _with_arrivals(state: FileArrivalState, count: int, now_ms: int) -> FileArrivalState:
    if not count:
        return state
    return replace(
        state,
        pending=state.pending + count,
        pending_since_ms=state.pending_since_ms if state.pending else now_ms,
        last_change_ms=now_ms,
    )


def record_arrival(
    state: FileArrivalState,
    path: str,
    size: int,
    modified_ms: int | None,
    now_ms: int,
    *,
    max_seen: int = MAX_SEEN,
) -> FileArrivalState:
    """A blob-created event (or a watcher event) for a file under the trigger's location.

    The same event twice (same path, size and modified time) returns `state` unchanged. Pass
    `modified_ms=None` when the event does not carry it (Event Grid): the size alone then decides,
    and the next listing records the real modified time without counting the file again. (A
    same-size re-upload before that listing is taken for the first upload; after it, the listing
    catches the new modified time.)
    """
    if not _is_new(state, path, size, modified_ms):
        return state
    seen = dict(state.seen)
    seen[path] = (int(size), None if modified_ms is None else int(modified_ms))
    bounded, watermark = _bounded(seen, state.watermark_ms, max_seen)
    return _with_arrivals(replace(state, seen=bounded, watermark_ms=watermark), 1, now_ms)


def reconcile_listing(
    state: FileArrivalState,
    listing: Iterable[tuple[str, int, int]],
    now_ms: int,
    *,
    max_seen: int = MAX_SEEN,
) -> FileArrivalState:
    """A complete listing `(path, size, modified_ms)` of the location.

    Files the events missed become arrivals; files already seen are ignored; files that disappeared
    leave `seen` (so a later re-upload under the same name counts). The first listing of a trigger
    only records the baseline. The listing must be complete: a partial one would forget files.
    """
    listed: dict[str, tuple[int, int | None]] = {
        path: (int(size), int(modified)) for path, size, modified in listing
    }
    if not state.baselined:
        arrivals = 0
    else:
        arrivals = sum(1 for path, (size, mod) in listed.items() if _is_new(state, path, size, mod))
    bounded, watermark = _bounded(listed, state.watermark_ms, max_seen)
    new = replace(state, baselined=True, seen=bounded, watermark_ms=watermark, last_listing_ms=now_ms)
    return _with_arrivals(new, arrivals, now_ms)


def due(
    settings: Mapping[str, Any], state: FileArrivalState, now_ms: int, *, paused: bool = False
) -> tuple[bool, FileArrivalState]:
    """Whether to start a run now. On True the returned state has the arrivals consumed; persist it
    with the same conditional write that creates the run (key: job + `now_ms`)."""
    if paused or not state.pending or state.last_change_ms is None:
        return False, state
    if now_ms < Timers.from_settings(settings).ready_at(state.last_change_ms, state.last_trigger_ms):
        return False, state
    return True, replace(state, pending=0, pending_since_ms=None, last_change_ms=None, last_trigger_ms=now_ms)


def next_check_ms(
    settings: Mapping[str, Any],
    state: FileArrivalState,
    *,
    reconcile_interval_ms: int = RECONCILE_INTERVAL_MS,
) -> int:
    """When `tick` must look at this trigger again: the earlier of the next reconcile listing and, if
    arrivals are pending, the instant both timers allow a fire. A listing is due at once if none ran."""
    listing_at = 0 if state.last_listing_ms is None else state.last_listing_ms + reconcile_interval_ms
    if not state.pending or state.last_change_ms is None:
        return listing_at
    fire_at = Timers.from_settings(settings).ready_at(state.last_change_ms, state.last_trigger_ms)
    return min(listing_at, fire_at)


def listing_due(
    state: FileArrivalState, now_ms: int, *, reconcile_interval_ms: int = RECONCILE_INTERVAL_MS
) -> bool:
    return state.last_listing_ms is None or now_ms >= state.last_listing_ms + reconcile_interval_ms
