"""Continuous jobs: exactly one active run, pause, restart back-off after failures."""

from __future__ import annotations

import pytest

from core.errors import SchemaVersionError
from core.schedule.continuous import (
    ContinuousDecision,
    ContinuousState,
    continuous_decision,
    restart_backoff_ms,
)

T0 = 1_767_225_600_000
UNPAUSED = {"pause_status": "UNPAUSED"}


@pytest.mark.parametrize(
    ("failures", "backoff"),
    [(0, 0), (-1, 0), (1, 10_000), (2, 20_000), (3, 40_000), (6, 320_000), (7, 600_000), (50, 600_000)],
)
def test_restart_backoff(failures: int, backoff: int) -> None:
    assert restart_backoff_ms(failures) == backoff


@pytest.mark.parametrize(
    ("settings", "active", "last_end", "now", "failures", "expected"),
    [
        # first run of a new continuous job
        ({}, 0, None, T0, 0, ContinuousDecision(True, None, None)),
        (None, 0, None, T0, 0, ContinuousDecision(True, None, None)),
        (UNPAUSED, 0, None, T0, 0, ContinuousDecision(True, None, None)),
        # one is running: never a second
        (UNPAUSED, 1, None, T0, 0, ContinuousDecision(False, None, None)),
        (UNPAUSED, 2, T0, T0 + 3_600_000, 0, ContinuousDecision(False, None, None)),
        # paused
        ({"pause_status": "PAUSED"}, 0, None, T0, 0, ContinuousDecision(False, None, None)),
        ({"pause_status": "PAUSED"}, 0, T0, T0 + 3_600_000, 0, ContinuousDecision(False, None, None)),
        # after a success: restart at once
        (UNPAUSED, 0, T0, T0, 0, ContinuousDecision(True, T0, None)),
        # after failures: wait the back-off
        (UNPAUSED, 0, T0, T0 + 9_999, 1, ContinuousDecision(False, T0 + 10_000, T0 + 10_000)),
        (UNPAUSED, 0, T0, T0 + 10_000, 1, ContinuousDecision(True, T0 + 10_000, None)),
        (UNPAUSED, 0, T0, T0 + 30_000, 3, ContinuousDecision(False, T0 + 40_000, T0 + 40_000)),
        (UNPAUSED, 0, T0, T0 + 600_000, 20, ContinuousDecision(True, T0 + 600_000, None)),
    ],
)
def test_continuous_decision(
    settings: dict | None,
    active: int,
    last_end: int | None,
    now: int,
    failures: int,
    expected: ContinuousDecision,
) -> None:
    assert continuous_decision(settings, active, last_end, now, consecutive_failures=failures) == expected
    assert expected.trigger_type == "CONTINUOUS"


def test_failures_count_up_and_a_success_resets() -> None:
    state = ContinuousState()
    state = state.on_run_finished(False, T0)
    state = state.on_run_finished(False, T0 + 20_000)
    assert state == ContinuousState(T0 + 20_000, 2)
    assert not continuous_decision({}, 0, state.last_run_end_ms, T0 + 30_000, consecutive_failures=2).start
    state = state.on_run_finished(True, T0 + 100_000)
    assert state == ContinuousState(T0 + 100_000, 0)
    assert continuous_decision({}, 0, state.last_run_end_ms, T0 + 100_000, consecutive_failures=0).start


def test_state_json_round_trip_and_newer_version() -> None:
    state = ContinuousState(T0, 3)
    assert ContinuousState.from_json(state.to_json()) == state
    with pytest.raises(SchemaVersionError, match="newer than this Floe"):
        ContinuousState.from_json('{"v":99}')
    with pytest.raises(ValueError, match="not a continuous trigger state"):
        ContinuousState.from_json("[]")
