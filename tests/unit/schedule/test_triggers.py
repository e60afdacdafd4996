"""`validate_trigger` / `validate_continuous`: every kind, every rule, messages pinned."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidParameterValue
from core.schedule.triggers import (
    is_paused,
    trigger_kind,
    trigger_settings,
    validate_continuous,
    validate_trigger,
)

FA = "file:///data/in/"
ABFSS = "abfss://landing@acct.dfs.core.windows.net/raw/"


@pytest.mark.parametrize(
    "trigger",
    [
        {"periodic": {"interval": 1, "unit": "MINUTES"}},
        {"periodic": {"interval": 3, "unit": "WEEKS"}, "pause_status": "PAUSED"},
        {"pause_status": "UNPAUSED", "file_arrival": {"url": FA}},
        {
            "file_arrival": {
                "url": ABFSS,
                "min_time_between_triggers_seconds": 60,
                "wait_after_last_change_seconds": 3600,
            }
        },
        {"file_arrival": {"url": FA, "min_time_between_triggers_seconds": None}},
        {"table_update": {"table_names": ["/lake/a", "file:///lake/b", ABFSS]}},
        {
            "table_update": {
                "table_names": ["/lake/a"],
                "condition": "ALL_UPDATED",
                "wait_after_last_change_seconds": 60,
            }
        },
        {"table": {"table_names": ["/lake/a"], "condition": "ANY_UPDATED"}},
        {"job_completion": {"jobs": [{"job_id": "1", "workspace_id": "123"}]}},
        {"job_completion": {"jobs": [{"job_id": i} for i in range(1, 11)], "if_status": "DONE"}},
        {"periodic": {"interval": 1, "unit": "HOURS"}, "file_arrival": None},
    ],
)
def test_valid(trigger: dict[str, Any]) -> None:
    validate_trigger(trigger)


T = "settings.trigger"


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ([], rf"^{T} must be an object; got \[\]\.$"),
        ({}, rf"^{T} must have exactly one of file_arrival, periodic, table_update, job_completion\.$"),
        (
            {"periodic": {"interval": 1, "unit": "DAYS"}, "file_arrival": {"url": FA}},
            rf"^{T} must have exactly one of .*job_completion \(it has file_arrival, periodic\)\.$",
        ),
        (
            {"pause_status": "STOPPED", "periodic": {"interval": 1, "unit": "DAYS"}},
            rf"^{T}\.pause_status must be PAUSED or UNPAUSED; got 'STOPPED'\.$",
        ),
        (
            {"model": {"condition": "MODEL_CREATED"}},
            rf"^{T}\.model is not supported by Floe \(supported trigger kinds: file_arrival, periodic, "
            r"table_update, job_completion\)\.$",
        ),
        ({"sql_condition": {}}, rf"^{T}\.sql_condition is not supported by Floe"),
        # periodic
        ({"periodic": 5}, rf"^{T}\.periodic must be an object; got 5\.$"),
        ({"periodic": {"unit": "DAYS"}}, rf"^{T}\.periodic\.interval is required\.$"),
        (
            {"periodic": {"interval": 0, "unit": "DAYS"}},
            rf"^{T}\.periodic\.interval must be at least 1; got 0\.$",
        ),
        (
            {"periodic": {"interval": -3, "unit": "DAYS"}},
            rf"^{T}\.periodic\.interval must be at least 1; got -3\.$",
        ),
        (
            {"periodic": {"interval": "2", "unit": "DAYS"}},
            rf"^{T}\.periodic\.interval must be an integer; got '2'\.$",
        ),
        (
            {"periodic": {"interval": 1.5, "unit": "DAYS"}},
            rf"^{T}\.periodic\.interval must be an integer; got 1\.5\.$",
        ),
        (
            {"periodic": {"interval": True, "unit": "DAYS"}},
            rf"^{T}\.periodic\.interval must be an integer; got True\.$",
        ),
        ({"periodic": {"interval": 1}}, rf"^{T}\.periodic\.unit is required\.$"),
        (
            {"periodic": {"interval": 1, "unit": "SECONDS"}},
            rf"^{T}\.periodic\.unit must be one of MINUTES, HOURS, DAYS, WEEKS; got 'SECONDS'\.$",
        ),
        ({"periodic": {"interval": 1, "unit": "days"}}, rf"^{T}\.periodic\.unit must be one of"),
        (
            {"periodic": {"interval": 1, "unit": ["DAYS"]}},
            rf"^{T}\.periodic\.unit must be one of .*; got \['DAYS'\]\.$",
        ),
        # file_arrival
        ({"file_arrival": {}}, rf"^{T}\.file_arrival\.url is required\.$"),
        (
            {"file_arrival": {"url": "s3://b/p/"}},
            rf"^{T}\.file_arrival\.url must use a supported storage URL: .*; got 's3://b/p/'\.$",
        ),
        (
            {"file_arrival": {"url": "dbfs:/mnt/x/"}},
            rf"^{T}\.file_arrival\.url must use a supported storage URL",
        ),
        (
            {"file_arrival": {"url": FA, "min_time_between_triggers_seconds": 59}},
            rf"^{T}\.file_arrival\.min_time_between_triggers_seconds must be at least 60 seconds; got 59\.$",
        ),
        (
            {"file_arrival": {"url": FA, "wait_after_last_change_seconds": 0}},
            rf"^{T}\.file_arrival\.wait_after_last_change_seconds must be at least 60 seconds; got 0\.$",
        ),
        (
            {"file_arrival": {"url": FA, "wait_after_last_change_seconds": "60"}},
            rf"^{T}\.file_arrival\.wait_after_last_change_seconds must be an integer number of seconds; "
            r"got '60'\.$",
        ),
        # table_update
        ({"table_update": {}}, rf"^{T}\.table_update\.table_names is required\.$"),
        (
            {"table_update": {"table_names": []}},
            rf"^{T}\.table_update\.table_names must be a non-empty list of Delta table paths; got \[\]\.$",
        ),
        (
            {"table_update": {"table_names": "/lake/a"}},
            rf"^{T}\.table_update\.table_names must be a non-empty list",
        ),
        (
            {"table_update": {"table_names": [f"/lake/t{i}" for i in range(11)]}},
            rf"^{T}\.table_update\.table_names must have at most 10 tables \(it has 11\)\.$",
        ),
        (
            {"table_update": {"table_names": ["main.sales.orders"]}},
            rf"^{T}\.table_update\.table_names\[0\] must be the path of a Delta table "
            r"\(Floe has no Unity Catalog names\)",
        ),
        (
            {"table_update": {"table_names": ["/a", ""]}},
            rf"^{T}\.table_update\.table_names\[1\] must be a non-empty string; got ''\.$",
        ),
        (
            {"table_update": {"table_names": ["s3://b/t"]}},
            rf"^{T}\.table_update\.table_names\[0\] must use a supported storage URL",
        ),
        (
            {"table_update": {"table_names": ["/a", "/a"]}},
            rf"^{T}\.table_update\.table_names must not repeat a table",
        ),
        (
            {"table_update": {"table_names": ["/a"], "condition": "SOME_UPDATED"}},
            rf"^{T}\.table_update\.condition must be one of ANY_UPDATED, ALL_UPDATED; got 'SOME_UPDATED'\.$",
        ),
        (
            {"table": {"table_names": ["/a"], "min_time_between_triggers_seconds": 10}},
            rf"^{T}\.table\.min_time_between_triggers_seconds must be at least 60 seconds; got 10\.$",
        ),
        # job_completion
        ({"job_completion": {}}, rf"^{T}\.job_completion\.jobs is required\.$"),
        (
            {"job_completion": {"jobs": []}},
            rf"^{T}\.job_completion\.jobs must be a non-empty list of {{job_id}}; got \[\]\.$",
        ),
        (
            {"job_completion": {"jobs": [{"job_id": i} for i in range(1, 12)]}},
            rf"^{T}\.job_completion\.jobs must have at most 10 jobs \(it has 11\)\.$",
        ),
        ({"job_completion": {"jobs": [7]}}, rf"^{T}\.job_completion\.jobs\[0\] must be an object; got 7\.$"),
        (
            {"job_completion": {"jobs": [{"workspace_id": "1"}]}},
            rf"^{T}\.job_completion\.jobs\[0\]\.job_id is required\.$",
        ),
        (
            {"job_completion": {"jobs": [{"job_id": "abc"}]}},
            rf"^{T}\.job_completion\.jobs\[0\]\.job_id must be a positive job id; got 'abc'\.$",
        ),
        (
            {"job_completion": {"jobs": [{"job_id": 1}, {"job_id": 0}]}},
            rf"^{T}\.job_completion\.jobs\[1\]\.job_id must be a positive job id; got 0\.$",
        ),
        (
            {"job_completion": {"jobs": [{"job_id": 1}, {"job_id": "1"}]}},
            rf"^{T}\.job_completion\.jobs must not repeat a job; got \[1, 1\]\.$",
        ),
        (
            {"job_completion": {"jobs": [{"job_id": 1}], "if_status": "CANCELED"}},
            rf"^{T}\.job_completion\.if_status must be one of SUCCESS, FAILED, DONE; got 'CANCELED'\.$",
        ),
        (
            {"job_completion": {"jobs": [{"job_id": 1}], "if_status": ["SUCCESS"]}},
            rf"^{T}\.job_completion\.if_status must be one of SUCCESS, FAILED, DONE; got \['SUCCESS'\]\.$",
        ),
    ],
)
def test_invalid(trigger: Any, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        validate_trigger(trigger)


def test_min_seconds_floor_override() -> None:
    trigger = {
        "file_arrival": {
            "url": FA,
            "min_time_between_triggers_seconds": 1,
            "wait_after_last_change_seconds": 0,
        }
    }
    validate_trigger(trigger, min_seconds_floor=0)
    with pytest.raises(
        InvalidParameterValue, match=r"wait_after_last_change_seconds must be at least 1 seconds"
    ):
        validate_trigger(trigger, min_seconds_floor=1)


def test_field_and_own_job_id() -> None:
    with pytest.raises(
        InvalidParameterValue, match=r"^new_settings\.trigger\.periodic\.interval is required\.$"
    ):
        validate_trigger({"periodic": {"unit": "DAYS"}}, field="new_settings.trigger")
    with pytest.raises(
        InvalidParameterValue,
        match=r"^settings\.trigger\.job_completion\.jobs\[0\]\.job_id must not be the job itself "
        r".*; got '42'\.$",
    ):
        validate_trigger({"job_completion": {"jobs": [{"job_id": "42"}]}}, own_job_id=42)


@pytest.mark.parametrize(
    ("continuous", "message"),
    [
        ({}, None),
        ({"pause_status": "PAUSED", "task_retry_mode": "ON_FAILURE"}, None),
        ({"task_retry_mode": "NEVER"}, None),
        ("yes", r"^settings\.continuous must be an object; got 'yes'\.$"),
        (
            {"pause_status": "paused"},
            r"^settings\.continuous\.pause_status must be PAUSED or UNPAUSED; got 'paused'\.$",
        ),
        (
            {"task_retry_mode": "ALWAYS"},
            r"^settings\.continuous\.task_retry_mode must be one of NEVER, ON_FAILURE; got 'ALWAYS'\.$",
        ),
    ],
)
def test_validate_continuous(continuous: Any, message: str | None) -> None:
    if message is None:
        validate_continuous(continuous)
    else:
        with pytest.raises(InvalidParameterValue, match=message):
            validate_continuous(continuous)


@pytest.mark.parametrize(
    ("trigger", "kind"),
    [
        ({"periodic": {"interval": 1, "unit": "DAYS"}}, "periodic"),
        ({"file_arrival": {"url": FA}, "periodic": None}, "file_arrival"),
        ({"table": {"table_names": ["/a"]}}, "table_update"),
        ({"table_update": {"table_names": ["/a"]}}, "table_update"),
        ({"job_completion": {"jobs": [{"job_id": 1}]}}, "job_completion"),
    ],
)
def test_trigger_kind_and_settings(trigger: dict[str, Any], kind: str) -> None:
    assert trigger_kind(trigger) == kind
    assert trigger_settings(trigger) is next(v for v in trigger.values() if isinstance(v, dict))


@pytest.mark.parametrize(
    ("value", "paused"),
    [(None, False), ({}, False), ({"pause_status": "UNPAUSED"}, False), ({"pause_status": "PAUSED"}, True)],
)
def test_is_paused(value: dict[str, Any] | None, paused: bool) -> None:
    assert is_paused(value) is paused
