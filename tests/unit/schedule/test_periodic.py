"""Periodic triggers: a grid anchored at creation, one catch-up fire after downtime, pause."""

from __future__ import annotations

import pytest

from core.schedule.periodic import PeriodicDecision, next_periodic_fire, period_ms, periodic_decision

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
WEEK = 7 * DAY
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("interval", "unit", "period"),
    [
        (1, "MINUTES", MIN),
        (15, "MINUTES", 15 * MIN),
        (2, "HOURS", 2 * HOUR),
        (3, "DAYS", 3 * DAY),
        (1, "WEEKS", WEEK),
    ],
)
def test_period_of_each_unit(interval: int, unit: str, period: int) -> None:
    settings = {"interval": interval, "unit": unit}
    assert period_ms(settings) == period
    # first fire: one period after creation
    assert next_periodic_fire(settings, None, T0, T0) == T0 + period
    # after a fire, one period after it
    assert next_periodic_fire(settings, T0 + period, T0, T0 + period) == T0 + 2 * period


H2 = {"interval": 2, "unit": "HOURS"}


@pytest.mark.parametrize(
    ("last_fire", "now", "expected"),
    [
        (None, T0, T0 + 2 * HOUR),  # just created: not due yet
        (None, T0 + 2 * HOUR - 1, T0 + 2 * HOUR),  # one ms early
        (None, T0 + 2 * HOUR, T0 + 2 * HOUR),  # due exactly on the slot
        (None, T0 + 2 * HOUR + 5 * MIN, T0 + 2 * HOUR),  # a late tick still fires the slot
        (None, T0 + 9 * HOUR, T0 + 8 * HOUR),  # downtime: the latest missed slot only
        (T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + 4 * HOUR),
        (T0 + 2 * HOUR, T0 + 30 * DAY + 1, T0 + 30 * DAY),  # a month of downtime: one slot
        (T0 + 2 * HOUR, T0 + 30 * DAY - 1, T0 + 30 * DAY - 2 * HOUR),
    ],
)
def test_next_periodic_fire(last_fire: int | None, now: int, expected: int) -> None:
    assert next_periodic_fire(H2, last_fire, T0, now) == expected


def test_downtime_fires_once_then_resumes_on_the_grid() -> None:
    fires = []
    last = None
    # ticks every minute for 2 h, then the host is down for 10 h, then ticks again for 5 h
    times = [T0 + m * MIN for m in range(0, 121)] + [T0 + 12 * HOUR + m * MIN for m in range(0, 301)]
    for now in times:
        decision = periodic_decision(H2, last, T0, now)
        if decision.fire:
            fires.append((now, decision.slot_ms))
        last = decision.last_fire_ms
    assert fires == [
        (T0 + 2 * HOUR, T0 + 2 * HOUR),
        (T0 + 12 * HOUR, T0 + 12 * HOUR),  # 4, 6, 8, 10 h were missed; 12 h is the latest slot <= now
        (T0 + 14 * HOUR, T0 + 14 * HOUR),
        (T0 + 16 * HOUR, T0 + 16 * HOUR),
    ]


def test_catch_up_after_downtime_is_the_latest_missed_slot() -> None:
    decision = periodic_decision(H2, T0 + 2 * HOUR, T0, T0 + 11 * HOUR)
    assert decision == PeriodicDecision(True, T0 + 10 * HOUR, T0 + 10 * HOUR, T0 + 12 * HOUR)
    # the same tick replayed with the persisted state: nothing more
    again = periodic_decision(H2, decision.last_fire_ms, T0, T0 + 11 * HOUR)
    assert again == PeriodicDecision(False, None, T0 + 10 * HOUR, T0 + 12 * HOUR)


def test_two_hosts_ticking_at_different_instants_name_the_same_slot() -> None:
    a = periodic_decision(H2, None, T0, T0 + 2 * HOUR + 1_000)
    b = periodic_decision(H2, None, T0, T0 + 2 * HOUR + 59_000)
    assert a.slot_ms == b.slot_ms == T0 + 2 * HOUR


def test_paused_consumes_slots_without_firing() -> None:
    decision = periodic_decision(H2, None, T0, T0 + 5 * HOUR, paused=True)
    assert decision == PeriodicDecision(False, T0 + 4 * HOUR, T0 + 4 * HOUR, T0 + 6 * HOUR)
    # unpaused later: the next slot fires, no catch-up for the paused period
    assert periodic_decision(H2, decision.last_fire_ms, T0, T0 + 5 * HOUR).fire is False
    assert periodic_decision(H2, decision.last_fire_ms, T0, T0 + 6 * HOUR).fire is True


def test_not_due_reports_when_to_look_again() -> None:
    assert periodic_decision(H2, None, T0, T0 + HOUR) == PeriodicDecision(False, None, None, T0 + 2 * HOUR)
