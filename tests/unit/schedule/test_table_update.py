"""Table-update triggers: Delta versions, ANY vs ALL, the two timers, `latest_delta_version`."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.schedule.table_update import (
    TableUpdateState,
    due,
    latest_delta_version,
    next_check_ms,
    observe_versions,
    updated_tables,
)

T0 = 1_767_225_600_000
S = 1_000
A, B = "/lake/a", "/lake/b"
ANY = {"table_names": [A, B]}
ALL = {"table_names": [A, B], "condition": "ALL_UPDATED"}
ALL_WAIT = {**ALL, "wait_after_last_change_seconds": 60, "min_time_between_triggers_seconds": 600}


def run(settings: dict, steps: list[tuple]) -> list[tuple[int, list[str]]]:
    """("obs", {table: version}, at) / ("tick", at); returns (fire time, updated tables) per fire."""
    state = TableUpdateState()
    fires = []
    for step in steps:
        if step[0] == "obs":
            state = observe_versions(state, step[1], step[2])
        else:
            tables = updated_tables(settings, state)
            fire, state = due(settings, state, step[1])
            if fire:
                fires.append((step[1], tables))
    return fires


BASE = ("obs", {A: 3, B: None}, T0)


@pytest.mark.parametrize(
    ("settings", "steps", "fires"),
    [
        # the first observation is a baseline
        (ANY, [BASE, ("tick", T0 + S)], []),
        # ANY: one table's new version fires
        (ANY, [BASE, ("obs", {A: 4, B: None}, T0 + S), ("tick", T0 + 2 * S)], [(T0 + 2 * S, [A])]),
        # the same observation twice: one fire
        (
            ANY,
            [
                BASE,
                ("obs", {A: 4, B: None}, T0 + S),
                ("tick", T0 + S),
                ("obs", {A: 4, B: None}, T0 + 2 * S),
                ("tick", T0 + 3 * S),
            ],
            [(T0 + S, [A])],
        ),
        # a table that appears (version 0) is an update; one that vanishes is not
        (ANY, [BASE, ("obs", {A: None, B: 0}, T0 + S), ("tick", T0 + S)], [(T0 + S, [B])]),
        (ANY, [BASE, ("obs", {A: None, B: None}, T0 + S), ("tick", T0 + S)], []),
        # ALL: waits for every table, then fires once; then waits for both again
        (
            ALL,
            [
                BASE,
                ("obs", {A: 4, B: None}, T0 + S),
                ("tick", T0 + 2 * S),
                ("obs", {A: 5, B: None}, T0 + 3 * S),
                ("tick", T0 + 4 * S),
                ("obs", {A: 5, B: 0}, T0 + 5 * S),
                ("tick", T0 + 6 * S),
                ("obs", {A: 5, B: 1}, T0 + 7 * S),
                ("tick", T0 + 8 * S),
            ],
            [(T0 + 6 * S, [A, B])],
        ),
        # ALL with timers: wait after the last update, then spacing from the last fire
        (
            ALL_WAIT,
            [
                BASE,
                ("obs", {A: 4, B: 0}, T0 + S),
                ("tick", T0 + 60 * S),
                ("tick", T0 + 61 * S),
                ("obs", {A: 5, B: 1}, T0 + 100 * S),
                ("tick", T0 + 200 * S),
                ("tick", T0 + 661 * S),
            ],
            [(T0 + 61 * S, [A, B]), (T0 + 661 * S, [A, B])],
        ),
    ],
)
def test_fires(settings: dict, steps: list[tuple], fires: list[tuple[int, list[str]]]) -> None:
    assert run(settings, steps) == fires


def test_paused_does_not_fire() -> None:
    state = observe_versions(observe_versions(TableUpdateState(), {A: 1}, T0), {A: 2}, T0 + S)
    assert due(ANY, state, T0 + S, paused=True) == (False, state)


def test_next_check_ms() -> None:
    state = observe_versions(TableUpdateState(), {A: 1, B: 1}, T0)
    assert next_check_ms(ALL_WAIT, state) is None
    state = observe_versions(state, {A: 2, B: 1}, T0 + S)
    assert next_check_ms(ALL_WAIT, state) is None  # ALL not met yet
    assert next_check_ms({**ANY, "wait_after_last_change_seconds": 60}, state) == T0 + 61 * S
    state = observe_versions(state, {A: 2, B: 2}, T0 + 2 * S)
    assert next_check_ms(ALL_WAIT, state) == T0 + 62 * S


def test_state_json_round_trip() -> None:
    state = observe_versions(observe_versions(TableUpdateState(), {A: 1, B: None}, T0), {A: 2}, T0 + S)
    assert TableUpdateState.from_json(state.to_json()) == state
    with pytest.raises(ValueError, match="not a table-update trigger state"):
        TableUpdateState.from_json('{"v":1,"versions":{"a":"x"}}')


def _log(table: Path, *names: str) -> None:
    log = table / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    for name in names:
        (log / name).write_text("{}")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ((), None),
        (("00000000000000000000.json",), 0),
        (("00000000000000000000.json", "00000000000000000001.json", "00000000000000000012.json"), 12),
        # checkpoints, crc, temp files and _last_checkpoint do not count
        (
            (
                "00000000000000000010.checkpoint.parquet",
                "00000000000000000011.json",
                "00000000000000000012.crc",
                "00000000000000000012.json.tmp",
                ".00000000000000000013.json.abc.tmp",
                "_last_checkpoint",
            ),
            11,
        ),
    ],
)
def test_latest_delta_version(tmp_path: Path, names: tuple[str, ...], expected: int | None) -> None:
    _log(tmp_path / "t", *names)
    assert latest_delta_version(str(tmp_path / "t")) == expected
    assert latest_delta_version((tmp_path / "t").as_uri()) == expected


def test_latest_delta_version_without_a_table(tmp_path: Path) -> None:
    assert latest_delta_version(str(tmp_path / "missing")) is None
    (tmp_path / "file").write_text("x")
    assert latest_delta_version(str(tmp_path / "file")) is None
