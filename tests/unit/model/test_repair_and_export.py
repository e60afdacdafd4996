"""validate_repair (runs/repair bodies) and parse_views_to_export (runs/export)."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidParameterValue
from core.model import RepairRequest, parse_views_to_export, validate_repair


def test_repair_of_named_tasks_with_a_string_run_id() -> None:
    assert validate_repair({"run_id": "42", "rerun_tasks": ["a", "b", "a"]}) == RepairRequest(
        run_id=42, rerun_tasks=("a", "b")
    )


def test_repair_of_every_failed_task_with_dependents_and_the_latest_repair_id() -> None:
    request = validate_repair(
        {
            "run_id": 42,
            "rerun_all_failed_tasks": True,
            "rerun_dependent_tasks": "true",
            "latest_repair_id": "7",
            "performance_target": "STANDARD",
            "duration_target": "4h",
        }
    )
    assert request == RepairRequest(
        run_id=42, rerun_all_failed_tasks=True, rerun_dependent_tasks=True, latest_repair_id=7
    )
    assert request.overriding_parameters() == {}


def test_an_empty_task_list_goes_with_rerun_all_failed_tasks() -> None:
    request = validate_repair({"run_id": 1, "rerun_tasks": [], "rerun_all_failed_tasks": True})
    assert (request.rerun_tasks, request.rerun_all_failed_tasks) == (None, True)


def test_repair_parameters_follow_the_run_now_rules() -> None:
    request = validate_repair(
        {
            "run_id": 1,
            "rerun_tasks": ["a"],
            "job_parameters": {"n": 3},
            "notebook_params": {"x": True},
            "python_params": ["a", 1],
            "pipeline_params": {"full_refresh": "false"},
        }
    )
    assert request.job_parameters == {"n": "3"}
    assert request.overriding_parameters() == {
        "notebook_params": {"x": "true"},
        "python_params": ["a", "1"],
        "pipeline_params": {"full_refresh": False},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rerun_tasks": ["a"]}, r"^run_id is required\.$"),
        ({"run_id": "x", "rerun_tasks": ["a"]}, r"^run_id must be a positive integer id"),
        ([], r"^body must be a JSON object; got \[\]\.$"),
        (
            {"run_id": 1},
            r"^rerun_tasks is required: give rerun_tasks \(a non-empty array of task keys\) or "
            r"rerun_all_failed_tasks: true\.$",
        ),
        ({"run_id": 1, "rerun_tasks": []}, r"^rerun_tasks is required: give rerun_tasks"),
        ({"run_id": 1, "rerun_all_failed_tasks": False}, r"^rerun_tasks is required: give rerun_tasks"),
        (
            {"run_id": 1, "rerun_tasks": ["a"], "rerun_all_failed_tasks": True},
            r"^rerun_tasks cannot be combined with rerun_all_failed_tasks: true; give the task keys or ask "
            r"for every failed task, not both\.$",
        ),
        ({"run_id": 1, "rerun_tasks": "a"}, r"^rerun_tasks must be a JSON array of strings; got 'a'\.$"),
        ({"run_id": 1, "rerun_tasks": ["a", 3]}, r"^rerun_tasks\[1\] must be a string; got 3\.$"),
        (
            {"run_id": 1, "rerun_tasks": ["a", ""]},
            r"^rerun_tasks\[1\] must be a task key, not an empty string\.$",
        ),
        (
            {"run_id": 1, "rerun_all_failed_tasks": "yes"},
            r"^rerun_all_failed_tasks must be a boolean \(true or false\); got 'yes'\.$",
        ),
        (
            {"run_id": 1, "rerun_tasks": ["a"], "rerun_dependent_tasks": 2},
            r"^rerun_dependent_tasks must be a boolean \(true or false\); got 2\.$",
        ),
        (
            {"run_id": 1, "rerun_tasks": ["a"], "latest_repair_id": 0},
            r"^latest_repair_id must be a positive integer id below 2\*\*63",
        ),
        (
            {"run_id": 1, "rerun_tasks": ["a"], "job_parameters": {"p": [1]}},
            r"^job_parameters\.p must be a string; got \[1\]\.$",
        ),
        (
            {"run_id": 1, "rerun_tasks": ["a"], "jar_params": ["x"], "notebook_params": {"y": "z"}},
            r"^jar_params cannot be combined with notebook_params\.$",
        ),
        (
            {"run_id": 1, "rerun_tasks": ["a"], "spark_submit_params": ["é"]},
            r"^spark_submit_params\[0\] must contain ASCII characters only; got 'é'\.$",
        ),
        (
            {"run_id": 1, "rerun_tasks": ["a"], "sql_params": {"q": "x" * 10_000}},
            r"^sql_params must be at most 10000 bytes of JSON \(it is 10008\)\.$",
        ),
    ],
)
def test_repair_rules(body: Any, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        validate_repair(body)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "CODE"), ("", "CODE"), ("CODE", "CODE"), ("dashboards", "DASHBOARDS"), (" All ", "ALL")],
)
def test_views_to_export(value: Any, expected: str) -> None:
    assert parse_views_to_export(value) == expected


@pytest.mark.parametrize("value", ["NOTEBOOK", "code,dashboards", 1, ["CODE"]])
def test_unknown_views_to_export_name_the_allowed_values(value: Any) -> None:
    with pytest.raises(
        InvalidParameterValue, match=r"^views_to_export must be one of CODE, DASHBOARDS, ALL; got "
    ):
        parse_views_to_export(value)
