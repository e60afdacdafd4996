"""File-arrival triggers: baseline, events and reconcile listings, debounce, spacing, bounded memory."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from core.errors import SchemaVersionError
from core.schedule.file_arrival import (
    FileArrivalState,
    due,
    listing_due,
    next_check_ms,
    reconcile_listing,
    record_arrival,
)

T0 = 1_767_225_600_000
S = 1_000
URL = "file:///data/in/"
WAIT_60 = {"url": URL, "wait_after_last_change_seconds": 60}
BOTH = {"url": URL, "wait_after_last_change_seconds": 60, "min_time_between_triggers_seconds": 300}
NO_TIMERS = {"url": URL}


def baselined(*files: tuple[str, int, int], at: int = T0) -> FileArrivalState:
    return reconcile_listing(FileArrivalState(), files, at)


def run(settings: dict, state: FileArrivalState, steps: list[tuple]) -> tuple[list[int], FileArrivalState]:
    """Replay ("event", path, size, mtime, at) / ("list", [files], at) / ("tick", at); return fire times."""
    fires = []
    for step in steps:
        if step[0] == "event":
            _, path, size, mtime, at = step
            state = record_arrival(state, path, size, mtime, at)
        elif step[0] == "list":
            _, files, at = step
            state = reconcile_listing(state, files, at)
        else:
            _, at = step
            fire, state = due(settings, state, at)
            if fire:
                fires.append(at)
    return fires, state


def test_first_listing_is_a_baseline_and_does_not_fire() -> None:
    state = baselined(("a.csv", 10, T0 - 5 * S), ("b.csv", 20, T0 - 4 * S))
    assert state.baselined and state.pending == 0
    assert dict(state.seen) == {"a.csv": (10, T0 - 5 * S), "b.csv": (20, T0 - 4 * S)}
    assert due(NO_TIMERS, state, T0 + 3600 * S) == (False, state)


def test_an_event_before_the_baseline_still_counts() -> None:
    state = record_arrival(FileArrivalState(), "new.csv", 1, T0, T0)
    state = reconcile_listing(state, [("old.csv", 1, T0 - 99 * S), ("new.csv", 1, T0)], T0 + S)
    assert state.pending == 1
    assert due(NO_TIMERS, state, T0 + S)[0] is True


@pytest.mark.parametrize(
    ("settings", "steps", "fires"),
    [
        # no timers: the first check after the arrival fires
        (NO_TIMERS, [("event", "x", 1, T0, T0), ("tick", T0)], [T0]),
        # debounce: several files inside the wait window give one fire, 60 s after the last change
        (
            WAIT_60,
            [
                ("event", "x1", 1, T0, T0),
                ("tick", T0 + 30 * S),
                ("event", "x2", 1, T0 + 40 * S, T0 + 40 * S),
                ("tick", T0 + 60 * S),  # 60 s after the first file but only 20 s after the last
                ("event", "x3", 1, T0 + 90 * S, T0 + 90 * S),
                ("tick", T0 + 149 * S),
                ("tick", T0 + 150 * S),
                ("tick", T0 + 151 * S),
                ("tick", T0 + 500 * S),
            ],
            [T0 + 150 * S],
        ),
        # min_time_between_triggers spaces the fires, measured from the last fire
        (
            BOTH,
            [
                ("event", "a", 1, T0, T0),
                ("tick", T0 + 60 * S),  # fire 1
                ("event", "b", 1, T0 + 61 * S, T0 + 61 * S),
                ("tick", T0 + 121 * S),  # wait is over but only 61 s since the fire
                ("tick", T0 + 359 * S),
                ("tick", T0 + 360 * S),  # fire 2: 300 s after fire 1
                ("tick", T0 + 1000 * S),  # nothing pending
            ],
            [T0 + 60 * S, T0 + 360 * S],
        ),
        # the same event twice: one fire, and no second fire afterwards
        (
            NO_TIMERS,
            [
                ("event", "x", 5, T0, T0),
                ("event", "x", 5, T0, T0 + S),
                ("tick", T0 + 2 * S),
                ("event", "x", 5, T0, T0 + 3 * S),
                ("tick", T0 + 4 * S),
            ],
            [T0 + 2 * S],
        ),
        # a changed file (new size or modified time) is a new arrival
        (
            NO_TIMERS,
            [
                ("event", "x", 5, T0, T0),
                ("tick", T0),
                ("event", "x", 6, T0 + S, T0 + S),
                ("tick", T0 + S),
                ("event", "x", 6, T0 + 2 * S, T0 + 2 * S),
                ("tick", T0 + 2 * S),
            ],
            [T0, T0 + S, T0 + 2 * S],
        ),
        # reconcile finds a file the events missed; a file already seen by an event is not counted again
        (
            NO_TIMERS,
            [
                ("event", "seen.csv", 3, T0 + S, T0 + S),
                ("tick", T0 + S),
                ("list", [("old.csv", 1, T0 - S), ("seen.csv", 3, T0 + S)], T0 + 60 * S),
                ("tick", T0 + 61 * S),
                (
                    "list",
                    [("old.csv", 1, T0 - S), ("seen.csv", 3, T0 + S), ("missed.csv", 4, T0 + 70 * S)],
                    T0 + 120 * S,
                ),
                ("tick", T0 + 121 * S),
            ],
            [T0 + S, T0 + 121 * S],
        ),
        # an event without a modified time (Event Grid) and the listing that fills it in: counted once
        (
            NO_TIMERS,
            [
                ("event", "e.csv", 9, None, T0 + S),
                ("tick", T0 + S),
                ("list", [("old.csv", 1, T0 - S), ("e.csv", 9, T0 + S - 7)], T0 + 60 * S),
                ("tick", T0 + 61 * S),
                ("event", "e.csv", 9, None, T0 + 62 * S),  # redelivered event
                ("tick", T0 + 63 * S),
            ],
            [T0 + S],
        ),
        # a deleted file leaves `seen`; the same name uploaded again is an arrival
        (
            NO_TIMERS,
            [
                ("list", [], T0 + 60 * S),
                ("list", [("old.csv", 1, T0 - S)], T0 + 120 * S),
                ("tick", T0 + 121 * S),
            ],
            [T0 + 121 * S],
        ),
    ],
)
def test_fires(settings: dict, steps: list[tuple], fires: list[int]) -> None:
    assert run(settings, baselined(("old.csv", 1, T0 - S)), steps)[0] == fires


def test_paused_does_not_fire_and_keeps_the_arrivals() -> None:
    state = record_arrival(baselined(), "x", 1, T0, T0)
    assert due(NO_TIMERS, state, T0, paused=True) == (False, state)
    assert due(NO_TIMERS, state, T0)[0] is True


def test_firing_consumes_the_arrivals_and_records_the_fire() -> None:
    state = record_arrival(record_arrival(baselined(), "x", 1, T0, T0), "y", 1, T0, T0 + 5 * S)
    assert (state.pending, state.pending_since_ms, state.last_change_ms) == (2, T0, T0 + 5 * S)
    fire, after = due(WAIT_60, state, T0 + 65 * S)
    assert fire
    assert (after.pending, after.pending_since_ms, after.last_change_ms, after.last_trigger_ms) == (
        0,
        None,
        None,
        T0 + 65 * S,
    )
    assert set(after.seen) == {"x", "y"}


@pytest.mark.parametrize(
    ("settings", "state", "expected"),
    [
        # no listing yet: list now
        (NO_TIMERS, FileArrivalState(), 0),
        # nothing pending: the next reconcile listing, a minute after the last
        (WAIT_60, baselined(at=T0), T0 + 60 * S),
        # pending: wait after the last change (earlier than the next listing here)
        (
            {"url": URL, "wait_after_last_change_seconds": 30},
            record_arrival(baselined(at=T0), "x", 1, T0, T0 + 10 * S),
            T0 + 40 * S,
        ),
        # pending, but the listing comes first
        (WAIT_60, record_arrival(baselined(at=T0), "x", 1, T0, T0 + 10 * S), T0 + 60 * S),
        # pending, held by min_time_between_triggers after a recent fire
        (
            {"url": URL, "min_time_between_triggers_seconds": 120},
            FileArrivalState(
                baselined=True,
                last_listing_ms=T0 + 1000 * S,
                last_trigger_ms=T0,
                pending=1,
                last_change_ms=T0 + S,
            ),
            T0 + 120 * S,
        ),
    ],
)
def test_next_check_ms(settings: dict, state: FileArrivalState, expected: int) -> None:
    assert next_check_ms(settings, state) == expected


def test_listing_due() -> None:
    assert listing_due(FileArrivalState(), T0)
    state = baselined(at=T0)
    assert not listing_due(state, T0 + 59 * S)
    assert listing_due(state, T0 + 60 * S)
    assert not listing_due(state, T0 + 60 * S, reconcile_interval_ms=120 * S)


def test_seen_is_bounded_and_evicted_files_are_not_new_again() -> None:
    files = [(f"f{i:02}", 1, T0 + i) for i in range(10)]
    state = reconcile_listing(FileArrivalState(), files, T0 + 100, max_seen=4)
    assert sorted(state.seen) == ["f06", "f07", "f08", "f09"]  # the newest by modified time
    assert state.watermark_ms == T0 + 5
    # the next full listing shows the same 10 files: nothing is new
    again = reconcile_listing(state, files, T0 + 200, max_seen=4)
    assert again.pending == 0
    # a new file (modified after the watermark) is an arrival, and an event for an evicted one is not
    newer = reconcile_listing(again, [*files, ("g", 1, T0 + 50)], T0 + 300, max_seen=4)
    assert newer.pending == 1 and "g" in newer.seen and len(newer.seen) == 4
    assert record_arrival(newer, "f00", 1, T0, T0 + 400, max_seen=4) is newer


def test_record_arrival_evicts_the_oldest() -> None:
    state = baselined(("a", 1, T0), ("b", 1, T0 + 1), at=T0 + 2)
    state = record_arrival(state, "c", 1, T0 + 3, T0 + 3, max_seen=2)
    assert sorted(state.seen) == ["b", "c"] and state.watermark_ms == T0 and state.pending == 1


def test_an_event_for_an_already_seen_file_returns_the_same_state() -> None:
    state = baselined(("a", 1, T0))
    assert record_arrival(state, "a", 1, T0, T0 + 5 * S) is state
    assert record_arrival(state, "a", 1, None, T0 + 5 * S) is state


def test_state_is_immutable() -> None:
    state = baselined(("a", 1, T0))
    assert isinstance(state.seen, MappingProxyType)
    with pytest.raises(TypeError):
        state.seen["b"] = (1, 1)  # type: ignore[index]


def test_state_json_round_trip() -> None:
    state = record_arrival(baselined(("a b/é.csv", 1, T0)), "x", 2, None, T0 + S)
    text = state.to_json()
    assert FileArrivalState.from_json(text) == state
    assert FileArrivalState.from_json(FileArrivalState().to_json()) == FileArrivalState()
    with pytest.raises(SchemaVersionError, match="file-arrival trigger state has schema version 2, newer"):
        FileArrivalState.from_json('{"v":2}')
    with pytest.raises(ValueError, match="not a file-arrival trigger state"):
        FileArrivalState.from_json('{"v":1,"seen":{"a":5}}')
    with pytest.raises(ValueError, match="not a file-arrival trigger state"):
        FileArrivalState.from_json("nonsense")
