"""merge_update (jobs/update semantics) and validate_submit (runs/submit bodies)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.errors import InvalidParameterValue
from core.model import merge_update, validate_job_settings, validate_submit


def py(key: str, *deps: str) -> dict[str, Any]:
    out: dict[str, Any] = {"task_key": key, "spark_python_task": {"python_file": f"{key}.py"}}
    if deps:
        out["depends_on"] = [{"task_key": d} for d in deps]
    return out


CURRENT: dict[str, Any] = validate_job_settings(
    {
        "name": "etl",
        "tags": {"team": "data"},
        "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"},
        "tasks": [py("a"), py("b", "a"), py("c", "b")],
        "job_clusters": [{"job_cluster_key": "small", "new_cluster": {"num_workers": 1}}],
    }
)


def keys(settings: dict[str, Any]) -> list[str]:
    return [t["task_key"] for t in settings["tasks"]]


# ----------------------------------------------------------------------------------------- merge_update


def test_top_level_fields_replace_the_stored_ones() -> None:
    merged = merge_update(CURRENT, {"name": "etl2", "tags": {"x": "y"}}, None)
    assert merged["name"] == "etl2"
    assert merged["tags"] == {"x": "y"}  # replaced, not merged
    assert keys(merged) == ["a", "b", "c"]


def test_tasks_merge_by_key_replacing_in_place_and_appending_new_ones() -> None:
    new_b = {"task_key": "b", "notebook_task": {"notebook_path": "/nb"}}
    merged = merge_update(CURRENT, {"tasks": [py("d", "c"), new_b]}, [])
    assert keys(merged) == ["a", "b", "c", "d"]
    assert merged["tasks"][1] == new_b  # replaced whole: its depends_on is gone
    validate_job_settings(merged)


def test_job_clusters_merge_by_key() -> None:
    merged = merge_update(
        CURRENT,
        {
            "job_clusters": [
                {"job_cluster_key": "big", "new_cluster": {"num_workers": 8}},
                {"job_cluster_key": "small", "new_cluster": {"num_workers": 2}},
            ]
        },
        None,
    )
    assert merged["job_clusters"] == [
        {"job_cluster_key": "small", "new_cluster": {"num_workers": 2}},
        {"job_cluster_key": "big", "new_cluster": {"num_workers": 8}},
    ]


def test_fields_to_remove_takes_top_level_names_and_keyed_entries() -> None:
    merged = merge_update(CURRENT, None, ["schedule", "tags", "tasks/c", "job_clusters/small"])
    assert "schedule" not in merged and "tags" not in merged
    assert keys(merged) == ["a", "b"]
    assert merged["job_clusters"] == []


def test_removing_a_known_field_that_is_not_set_is_a_no_op() -> None:
    assert "trigger" not in merge_update(CURRENT, None, ["trigger"])


def test_removal_happens_before_the_new_settings_apply() -> None:
    merged = merge_update(CURRENT, {"tasks": [py("c")]}, ["tasks/c"])
    assert keys(merged) == ["a", "b", "c"]


def test_unknown_removal_paths_are_named() -> None:
    with pytest.raises(
        InvalidParameterValue,
        match=r"^fields_to_remove must name top-level settings or tasks/<task_key> or "
        r"job_clusters/<job_cluster_key> that exist; got \['tasks/zzz', 'nonsense', 'schedule/x'\]\.$",
    ):
        merge_update(CURRENT, None, ["tasks/a", "tasks/zzz", "nonsense", "schedule/x"])


@pytest.mark.parametrize(
    ("new_settings", "fields_to_remove", "message"),
    [
        ([1], None, r"^new_settings must be a JSON object; got \[1\]\.$"),
        (None, "tasks/a", r"^fields_to_remove must be a JSON array of strings; got 'tasks/a'\.$"),
        (None, [1], r"^fields_to_remove must be a JSON array of strings; got \[1\]\.$"),
    ],
)
def test_bad_update_shapes(new_settings: Any, fields_to_remove: Any, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        merge_update(CURRENT, new_settings, fields_to_remove)


def test_the_stored_settings_are_not_modified() -> None:
    before = copy.deepcopy(CURRENT)
    merge_update(CURRENT, {"tasks": [py("d")], "name": "x"}, ["tasks/a", "tags"])
    assert before == CURRENT


def test_a_merge_that_breaks_the_job_is_caught_by_validation() -> None:
    merged = merge_update(CURRENT, None, ["tasks/a"])
    with pytest.raises(
        InvalidParameterValue, match=r"depends_on\[0\]\.task_key must be the task_key of another"
    ):
        validate_job_settings(merged)


# -------------------------------------------------------------------------------------- validate_submit


def test_submit_fills_run_name_and_drops_the_acl() -> None:
    out = validate_submit({"tasks": [py("a")], "access_control_list": [], "timeout_seconds": 30})
    assert out == {
        "tasks": [{"task_key": "a", "spark_python_task": {"python_file": "a.py"}}],
        "timeout_seconds": 30,
        "run_name": "Untitled",
    }


def test_submit_accepts_job_clusters_and_the_other_run_fields() -> None:
    out = validate_submit(
        {
            "run_name": "once",
            "tasks": [{**py("a"), "job_cluster_key": "c"}],
            "job_clusters": [{"job_cluster_key": "c", "new_cluster": {"num_workers": 0}}],
            "idempotency_token": "t" * 64,
            "queue": {"enabled": True},
            "git_source": {"git_url": "https://x", "git_provider": "gitLab", "git_tag": "v1"},
            "notification_settings": {"no_alert_for_canceled_runs": True},
            "budget_policy_id": "bp",
        }
    )
    assert out["run_name"] == "once"
    assert out["budget_policy_id"] == "bp"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, r"^tasks is required\.$"),
        ({"tasks": []}, r"^tasks must have at least 1 item\(s\); got \[\]\.$"),
        ({"tasks": [py("a"), py("a")]}, r"^tasks\[1\]\.task_key must be unique"),
        (
            {"tasks": [py("a", "b")]},
            r"^tasks\[0\]\.depends_on\[0\]\.task_key must be the task_key of another task",
        ),
        (
            {"tasks": [{**py("a"), "job_cluster_key": "c"}]},
            r"^tasks\[0\]\.job_cluster_key must name a job cluster defined in job_clusters; got 'c'\.$",
        ),
        (
            {"tasks": [py("a")], "idempotency_token": "t" * 65},
            r"^idempotency_token must be at most 64 characters; got 'tttt",
        ),
        ({"tasks": [py("a")], "timeout_seconds": -1}, r"^timeout_seconds must be >= 0; got -1\.$"),
        ([], r"^body must be a JSON object; got \[\]\.$"),
    ],
)
def test_submit_rules(body: Any, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        validate_submit(body)
