"""`trigger.periodic`: `{interval: int >= 1, unit: MINUTES | HOURS | DAYS | WEEKS}`.

Databricks says only that "the first firing time is chosen by the system". Floe anchors the grid at
the trigger's creation (or the instant the lead last re-anchored it, e.g. on a settings change):
slots are `created + k * period` for k >= 1, so the first fire is one period after creation and the
slots never drift, however late a tick runs.

After downtime, a trigger whose next slot is long past fires **once**, at the latest missed slot
(the run's idempotency key is job + that slot), and the next slot is the first one after it, i.e.
after now. Missed slots before it are dropped, never replayed one by one.

A paused trigger does not fire but still consumes its slots (see `periodic_decision`), so unpausing
does not produce a catch-up run for the paused period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.model.base import invalid, join_path
from core.schedule.debounce import require_mapping

UNIT_MS = {
    "MINUTES": 60_000,
    "HOURS": 3_600_000,
    "DAYS": 86_400_000,
    "WEEKS": 604_800_000,
}
MIN_PERIOD_MS = 60_000  # at least a minute (Databricks' 10 s schedule floor is below every unit)


@dataclass(frozen=True)
class PeriodicDecision:
    """`fire`: create a run now, for the slot `slot_ms` (its idempotency instant).
    `last_fire_ms`: what to persist as the trigger's last fire (moves on when paused, too).
    `next_check_ms`: when `tick` must look at this trigger again (the next slot)."""

    fire: bool
    slot_ms: int | None
    last_fire_ms: int | None
    next_check_ms: int


def validate_periodic(settings: Any, field: str = "settings.trigger.periodic") -> None:
    settings = require_mapping(settings, field)
    interval = settings.get("interval")
    if interval is None:
        raise invalid(join_path(field, "interval"), "is required")
    if isinstance(interval, bool) or not isinstance(interval, int):
        raise invalid(join_path(field, "interval"), "must be an integer", interval)
    if interval < 1:
        raise invalid(join_path(field, "interval"), "must be at least 1", interval)
    unit = settings.get("unit")
    if unit is None:
        raise invalid(join_path(field, "unit"), "is required")
    if not isinstance(unit, str) or unit not in UNIT_MS:
        raise invalid(join_path(field, "unit"), f"must be one of {', '.join(UNIT_MS)}", unit)
    if interval * UNIT_MS[unit] < MIN_PERIOD_MS:  # cannot happen with today's units; kept as the rule
        raise invalid(field, "must describe a period of at least 1 minute", dict(settings))


def period_ms(settings: Mapping[str, Any]) -> int:
    return int(settings["interval"]) * UNIT_MS[settings["unit"]]


def next_periodic_fire(
    settings: Mapping[str, Any], last_fire_ms: int | None, created_ms: int, now_ms: int
) -> int:
    """The slot the trigger fires for next.

    If the result is `<= now_ms` the trigger is due now, for that slot (the latest one not after now,
    so downtime gives one catch-up fire); otherwise it is the future instant of the next fire.
    """
    period = period_ms(settings)
    anchor = created_ms if last_fire_ms is None else last_fire_ms
    nxt = anchor + period
    if nxt > now_ms:
        return nxt
    return anchor + ((now_ms - anchor) // period) * period


def periodic_decision(
    settings: Mapping[str, Any],
    last_fire_ms: int | None,
    created_ms: int,
    now_ms: int,
    *,
    paused: bool = False,
) -> PeriodicDecision:
    """What `tick` does with a periodic trigger now; persist `last_fire_ms` and index `next_check_ms`."""
    slot = next_periodic_fire(settings, last_fire_ms, created_ms, now_ms)
    if slot > now_ms:
        return PeriodicDecision(False, None, last_fire_ms, slot)
    return PeriodicDecision(not paused, slot, slot, slot + period_ms(settings))
