"""validate_job_settings: normalization, and every rule with its message pinned."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.errors import InvalidParameterValue
from core.model import validate_job_settings


def task(key: str, *deps: str, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"task_key": key}
    if deps:
        out["depends_on"] = [{"task_key": d} for d in deps]
    if not any(k.endswith("_task") for k in fields):
        out["spark_python_task"] = {"python_file": f"{key}.py"}
    out.update(fields)
    return out


def job(*tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "j", "tasks": list(tasks) or [task("a")], **fields}


# ----------------------------------------------------------------------------------------- normalizing


def test_defaults_are_filled_as_databricks_echoes_them() -> None:
    assert validate_job_settings({"tasks": [task("a")]}) == {
        "tasks": [{"task_key": "a", "spark_python_task": {"python_file": "a.py"}}],
        "name": "Untitled",
        "format": "MULTI_TASK",
        "max_concurrent_runs": 1,
        "timeout_seconds": 0,
        "email_notifications": {},
        "webhook_notifications": {},
        "queue": {"enabled": True},
    }


def test_queue_default_follows_the_api_version_and_an_explicit_queue_wins() -> None:
    assert validate_job_settings(job(), queue_default=False)["queue"] == {"enabled": False}
    assert validate_job_settings(job(queue={"enabled": True}), queue_default=False)["queue"] == {
        "enabled": True
    }


def test_unknown_fields_round_trip_and_format_is_always_multi_task() -> None:
    out = validate_job_settings(
        job(
            task("a", disable_auto_optimization=True),
            format="SINGLE_TASK",
            budget_policy_id="bp",
            deployment={"kind": "BUNDLE"},
        )
    )
    assert out["budget_policy_id"] == "bp"
    assert out["deployment"] == {"kind": "BUNDLE"}
    assert out["tasks"][0]["disable_auto_optimization"] is True
    assert out["format"] == "MULTI_TASK"


def test_access_control_list_is_not_a_setting() -> None:
    raw = job(access_control_list=[{"user_name": "u", "permission_level": "CAN_VIEW"}])
    assert "access_control_list" not in validate_job_settings(raw)
    assert "access_control_list" in raw  # the input is left alone


def test_scalar_parameter_values_become_strings() -> None:
    out = validate_job_settings(
        job(
            task("a", notebook_task={"notebook_path": "/nb", "base_parameters": {"n": 3, "flag": True}}),
            tags={"cost": 12},
            parameters=[{"name": "limit", "default": 10}],
        )
    )
    assert out["tasks"][0]["notebook_task"]["base_parameters"] == {"n": "3", "flag": "true"}
    assert out["tags"] == {"cost": "12"}
    assert out["parameters"] == [{"name": "limit", "default": "10"}]


def test_for_each_inputs_given_as_an_array_are_stored_as_its_json_text() -> None:
    inner = task("inner")
    out = validate_job_settings(
        job(
            task("f", for_each_task={"inputs": [1, "é", {"k": [2]}], "task": inner}),
            task("g", for_each_task={"inputs": '["{{job.id}}", 2]', "task": task("inner2")}),
            task("h", for_each_task={"inputs": [], "task": task("inner3")}),
        )
    )
    assert [t["for_each_task"]["inputs"] for t in out["tasks"]] == [
        '[1,"é",{"k":[2]}]',
        '["{{job.id}}", 2]',
        "[]",
    ]


def test_run_job_ids_may_be_numeric_strings() -> None:
    out = validate_job_settings(job(task("r", run_job_task={"job_id": " 12 "})))
    assert out["tasks"][0]["run_job_task"] == {"job_id": 12}


EVERY_TASK_TYPE = [
    {"notebook_task": {"notebook_path": "/Users/me/nb", "source": "WORKSPACE"}},
    {"spark_python_task": {"python_file": "main.py", "parameters": ["a"]}},
    {"python_wheel_task": {"package_name": "pkg", "entry_point": "main", "named_parameters": {"x": "1"}}},
    {"spark_jar_task": {"main_class_name": "com.example.Main"}},
    {"spark_submit_task": {"parameters": ["--class", "Main", "app.jar"]}},
    {"sql_task": {"warehouse_id": "w", "query": {"query_id": "q"}}},
    {"condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}},
    {"for_each_task": {"inputs": "[1,2]", "task": task("inner"), "concurrency": 2}},
    {"run_job_task": {"job_id": 12, "job_parameters": {"a": "b"}}},
    {"pipeline_task": {"pipeline_id": "p", "full_refresh": True}},
    {"dbt_task": {"commands": ["dbt deps", "dbt run"], "schema": "analytics"}},
]


@pytest.mark.parametrize("task_type", EVERY_TASK_TYPE, ids=lambda t: next(iter(t)))
def test_every_task_type_validates_and_round_trips(task_type: dict[str, Any]) -> None:
    out = validate_job_settings(job({"task_key": "t", **task_type}))
    assert out["tasks"][0] == {"task_key": "t", **task_type}


def test_a_full_job_validates() -> None:
    out = validate_job_settings(
        job(
            task(
                "check", condition_task={"op": "GREATER_THAN", "left": "{{job.parameters.n}}", "right": "2"}
            ),
            task(
                "big", job_cluster_key="c", libraries=[{"pypi": {"package": "requests"}}, {"whl": "/x.whl"}]
            ),
            {
                "task_key": "when_true",
                "depends_on": [{"task_key": "check", "outcome": "true"}, {"task_key": "big"}],
                "run_if": "AT_LEAST_ONE_SUCCESS",
                "max_retries": -1,
                "min_retry_interval_millis": 1000,
                "retry_on_timeout": True,
                "timeout_seconds": 60,
                "environment_key": "env",
                "notebook_task": {"notebook_path": "nb"},
                "email_notifications": {"on_failure": ["a@example.com"]},
                "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 10}]},
            },
            job_clusters=[
                {"job_cluster_key": "c", "new_cluster": {"spark_version": "15.4", "num_workers": 2}}
            ],
            environments=[{"environment_key": "env", "spec": {"client": "1", "dependencies": ["pandas"]}}],
            parameters=[{"name": "n", "default": "3"}],
            schedule={
                "quartz_cron_expression": "0 0 6 * * ?",
                "timezone_id": "Europe/Paris",
                "pause_status": "PAUSED",
            },
            webhook_notifications={"on_start": [{"id": "w1"}, {"id": "w2"}, {"id": "w3"}]},
            git_source={"git_url": "https://github.com/o/r", "git_provider": "GITHUB", "git_branch": "main"},
            run_as={"service_principal_name": "sp"},
            tags={"team": "data"},
            max_concurrent_runs=0,
        )
    )
    assert [t["task_key"] for t in out["tasks"]] == ["check", "big", "when_true"]
    assert out["max_concurrent_runs"] == 0


def test_a_chain_of_1000_tasks_is_checked_without_recursion() -> None:
    tasks = [task("t0")] + [task(f"t{i}", f"t{i - 1}") for i in range(1, 1000)]
    assert len(validate_job_settings(job(*tasks))["tasks"]) == 1000


def test_triggers_of_each_kind_validate() -> None:
    for trigger in (
        {"periodic": {"interval": 4, "unit": "HOURS"}},
        {
            "file_arrival": {
                "url": "abfss://c@a.dfs.core.windows.net/in/",
                "min_time_between_triggers_seconds": 60,
            }
        },
        {"table_update": {"table_names": ["/data/delta/orders"], "condition": "ALL_UPDATED"}},
        {"job_completion": {"jobs": [{"job_id": 1, "if_status": ["SUCCESS"]}]}, "pause_status": "UNPAUSED"},
    ):
        assert validate_job_settings(job(trigger=trigger))["trigger"] == trigger


def test_check_references_is_called_with_the_normalized_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.engine.references as references

    seen: list[Any] = []

    def fake(settings: Any) -> None:
        seen.append(settings)
        raise InvalidParameterValue("settings.tasks[0] refers to {{job.naem}}")

    monkeypatch.setattr(references, "check_references", fake)
    with pytest.raises(InvalidParameterValue, match=re.escape("{{job.naem}}")):
        validate_job_settings(job())
    assert seen[0]["format"] == "MULTI_TASK"


# ---------------------------------------------------------------------------------------------- rules

TASK_TYPES_TEXT = "notebook_task, spark_python_task, python_wheel_task"

INVALID: list[tuple[str, Any, str]] = [
    ("not an object", [1], r"^settings must be a JSON object; got \[1\]\.$"),
    ("tasks not a list", {"tasks": "x"}, r"^settings\.tasks must be a JSON array; got 'x'\.$"),
    (
        "duplicate task keys",
        job(task("a"), task("b"), task("a")),
        r"^settings\.tasks\[2\]\.task_key must be unique; it is also the key of settings\.tasks\[0\]; "
        r"got 'a'\.$",
    ),
    (
        "unknown dependency",
        job(task("a"), task("b", "a", "nope")),
        r"^settings\.tasks\[1\]\.depends_on\[1\]\.task_key must be the task_key of another task in this job; "
        r"got 'nope'\.$",
    ),
    (
        "self dependency",
        job(task("a", "a")),
        r"^settings\.tasks\[0\]\.depends_on\[0\]\.task_key must not be the task itself; got 'a'\.$",
    ),
    (
        "three-task cycle",
        job(task("x"), task("a", "c"), task("b", "a"), task("c", "b", "x")),
        r"^settings\.tasks must not depend on each other in a cycle: a -> c -> b -> a\.$",
    ),
    (
        "1001 tasks",
        job(*[task(f"t{i}") for i in range(1001)]),
        r"^settings\.tasks must have at most 1000 tasks \(it has 1001\)\.$",
    ),
    (
        "26 tags",
        job(tags={f"k{i}": "v" for i in range(26)}),
        r"^settings\.tags must have at most 25 tags \(it has 26\); got \{",
    ),
    (
        "max_concurrent_runs 1001",
        job(max_concurrent_runs=1001),
        r"^settings\.max_concurrent_runs must be <= 1000; got 1001\.$",
    ),
    (
        "max_concurrent_runs -1",
        job(max_concurrent_runs=-1),
        r"^settings\.max_concurrent_runs must be >= 0; got -1\.$",
    ),
    (
        "name over 4096 bytes",
        job(name="é" * 2049),
        r"^settings\.name must be at most 4096 bytes of UTF-8 \(it is 4098\)",
    ),
    (
        "description too long",
        job(description="d" * 27_701),
        r"^settings\.description must be at most 27700 characters",
    ),
    ("negative timeout", job(timeout_seconds=-1), r"^settings\.timeout_seconds must be >= 0; got -1\.$"),
    (
        "bad run_if",
        job(task("a", run_if="SOMETIMES")),
        r"^settings\.tasks\[0\]\.run_if must be one of 'ALL_SUCCESS', .* or 'ALL_FAILED'; got 'SOMETIMES'\.$",
    ),
    (
        "max_retries -2",
        job(task("a", max_retries=-2)),
        r"^settings\.tasks\[0\]\.max_retries must be >= -1; got -2\.$",
    ),
    (
        "negative retry interval",
        job(task("a", min_retry_interval_millis=-5)),
        r"^settings\.tasks\[0\]\.min_retry_interval_millis must be >= 0; got -5\.$",
    ),
    (
        "two task types",
        job(task("a", notebook_task={"notebook_path": "/nb"}, spark_python_task={"python_file": "x.py"})),
        rf"^settings\.tasks\[0\] must have exactly one task type among {TASK_TYPES_TEXT}, .*; "
        r"it has notebook_task and spark_python_task\.$",
    ),
    (
        "no task type",
        job({"task_key": "a"}),
        rf"^settings\.tasks\[0\] must have exactly one task type among {TASK_TYPES_TEXT}, .*; it has none\.$",
    ),
    (
        "unsupported task type",
        job({"task_key": "a", "dashboard_task": {}}),
        r"^settings\.tasks\[0\]\.dashboard_task is not a supported task type; use one of notebook_task, ",
    ),
    (
        "bad task key",
        job(task("a b")),
        r"^settings\.tasks\[0\]\.task_key must be 1 to 100 characters .*; got 'a b'\.$",
    ),
    (
        "task key too long",
        job(task("k" * 101)),
        r"^settings\.tasks\[0\]\.task_key must be 1 to 100 characters",
    ),
    (
        "missing task key",
        job({"notebook_task": {"notebook_path": "x"}}),
        r"^settings\.tasks\[0\]\.task_key is required\.$",
    ),
    (
        "missing required field of a task type",
        job({"task_key": "a", "notebook_task": {}}),
        r"^settings\.tasks\[0\]\.notebook_task\.notebook_path is required\.$",
    ),
    (
        "schedule and continuous",
        job(schedule={"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"}, continuous={}),
        r"^settings\.continuous cannot be set together with schedule\.$",
    ),
    (
        "bad timezone",
        job(schedule={"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "Mars/Olympus"}),
        r"^settings\.schedule\.timezone_id must be a known time zone id such as 'UTC' or 'Europe/Paris'; "
        r"got 'Mars/Olympus'\.$",
    ),
    (
        "unix cron",
        job(schedule={"quartz_cron_expression": "0 * * * *", "timezone_id": "UTC"}),
        r"^settings\.schedule\.quartz_cron_expression must be a Quartz cron expression of 6 or 7 fields",
    ),
    (
        "schedule without cron",
        job(schedule={"timezone_id": "UTC"}),
        r"^settings\.schedule\.quartz_cron_expression is required\.$",
    ),
    (
        "bad pause status",
        job(
            schedule={
                "quartz_cron_expression": "0 0 * * * ?",
                "timezone_id": "UTC",
                "pause_status": "STOPPED",
            }
        ),
        r"^settings\.schedule\.pause_status must be one of 'PAUSED' or 'UNPAUSED'; got 'STOPPED'\.$",
    ),
    (
        "outcome on a non-condition dependency",
        job(task("a"), task("b", depends_on=[{"task_key": "a", "outcome": "true"}])),
        r"^settings\.tasks\[1\]\.depends_on\[0\]\.outcome is only allowed on a dependency on a "
        r"condition_task, and 'a' is not one; got 'true'\.$",
    ),
    (
        "outcome not true/false",
        job(
            task("c", condition_task={"op": "EQUAL_TO", "left": "1", "right": "1"}),
            task("b", depends_on=[{"task_key": "c", "outcome": "yes"}]),
        ),
        r"^settings\.tasks\[1\]\.depends_on\[0\]\.outcome must be one of 'true' or 'false'; got 'yes'\.$",
    ),
    (
        "bad condition op",
        job(task("c", condition_task={"op": "EQ", "left": "1", "right": "2"})),
        r"^settings\.tasks\[0\]\.condition_task\.op must be one of 'EQUAL_TO', .*; got 'EQ'\.$",
    ),
    (
        "condition without right",
        job(task("c", condition_task={"op": "EQUAL_TO", "left": "1"})),
        r"^settings\.tasks\[0\]\.condition_task\.right is required\.$",
    ),
    (
        "for_each without inputs",
        job(task("f", for_each_task={"task": task("inner")})),
        r"^settings\.tasks\[0\]\.for_each_task\.inputs is required\.$",
    ),
    (
        "for_each concurrency 101",
        job(task("f", for_each_task={"inputs": "[1]", "task": task("inner"), "concurrency": 101})),
        r"^settings\.tasks\[0\]\.for_each_task\.concurrency must be <= 100; got 101\.$",
    ),
    (
        "for_each concurrency 0",
        job(task("f", for_each_task={"inputs": "[1]", "task": task("inner"), "concurrency": 0})),
        r"^settings\.tasks\[0\]\.for_each_task\.concurrency must be >= 1; got 0\.$",
    ),
    (
        "nested for_each",
        job(
            task(
                "f",
                for_each_task={
                    "inputs": "[1]",
                    "task": {"task_key": "g", "for_each_task": {"inputs": "[1]", "task": task("h")}},
                },
            )
        ),
        r"^settings\.tasks\[0\]\.for_each_task\.task\.for_each_task is not allowed here: "
        r"a for_each_task cannot run another for_each_task",
    ),
    (
        "for_each inputs not a JSON array",
        job(task("f", for_each_task={"inputs": "a,b", "task": task("inner")})),
        r"^settings\.tasks\[0\]\.for_each_task\.inputs must be a JSON array \(as an array or as its JSON "
        r"text\) or a \{\{\.\.\.\}\} reference to one; got 'a,b'\.$",
    ),
    (
        "for_each inputs a JSON object",
        job(task("f", for_each_task={"inputs": '{"a": 1}', "task": task("inner")})),
        r"^settings\.tasks\[0\]\.for_each_task\.inputs must be a JSON array",
    ),
    (
        "for_each inputs a number",
        job(task("f", for_each_task={"inputs": 3, "task": task("inner")})),
        r"^settings\.tasks\[0\]\.for_each_task\.inputs must be a string; got 3\.$",
    ),
    (
        "for_each nested key = its own key",
        job(task("f", for_each_task={"inputs": "[1]", "task": task("f")})),
        r"^settings\.tasks\[0\]\.for_each_task\.task\.task_key must differ from the key of every other "
        r"task of the job; it is the key of this for-each task; got 'f'\.$",
    ),
    (
        "for_each nested key = another task's key",
        job(task("a"), task("f", "a", for_each_task={"inputs": "[1]", "task": task("a")})),
        r"^settings\.tasks\[1\]\.for_each_task\.task\.task_key must differ from the key of every other "
        r"task of the job; it is the key of settings\.tasks\[0\]; got 'a'\.$",
    ),
    (
        "for_each nested key = another nested key",
        job(
            task("f", for_each_task={"inputs": "[1]", "task": task("inner")}),
            task("g", for_each_task={"inputs": "[2]", "task": task("inner")}),
        ),
        r"^settings\.tasks\[1\]\.for_each_task\.task\.task_key must differ .*; it is the key of the task "
        r"nested in settings\.tasks\[0\]; got 'inner'\.$",
    ),
    (
        "run_job without job_id",
        job(task("r", run_job_task={"job_parameters": {"a": "b"}})),
        r"^settings\.tasks\[0\]\.run_job_task\.job_id is required\.$",
    ),
    (
        "run_job job_id 0",
        job(task("r", run_job_task={"job_id": 0})),
        r"^settings\.tasks\[0\]\.run_job_task\.job_id must be a job id \(an integer from 1 to 2\*\*63-1\); "
        r"got 0\.$",
    ),
    (
        "run_job job_id negative string",
        job(task("r", run_job_task={"job_id": "-4"})),
        r"^settings\.tasks\[0\]\.run_job_task\.job_id must be a job id .*; got '-4'\.$",
    ),
    (
        "run_job job_id 2**63",
        job(task("r", run_job_task={"job_id": 2**63})),
        r"^settings\.tasks\[0\]\.run_job_task\.job_id must be a job id \(an integer from 1 to 2\*\*63-1\)",
    ),
    (
        "run_job job_id boolean",
        job(task("r", run_job_task={"job_id": True})),
        r"^settings\.tasks\[0\]\.run_job_task\.job_id must be a job id \(an integer from 1 to 2\*\*63-1\), "
        r"not a boolean; got True\.$",
    ),
    (
        "run_job job_id fractional",
        job(task("r", run_job_task={"job_id": 1.5})),
        r"^settings\.tasks\[0\]\.run_job_task\.job_id must be an integer; got 1\.5\.$",
    ),
    (
        "run_job job_id beyond 64 bits as a float",
        job(task("r", run_job_task={"job_id": 1e19})),
        r"^settings\.tasks\[0\]\.run_job_task\.job_id must be an integer that fits in 64 bits",
    ),
    (
        "for_each inner task without type",
        job(task("f", for_each_task={"inputs": "[1]", "task": {"task_key": "g"}})),
        r"^settings\.tasks\[0\]\.for_each_task\.task must have exactly one task type",
    ),
    (
        "parameter name",
        job(parameters=[{"name": "my param", "default": "x"}]),
        r"^settings\.parameters\[0\]\.name must be made of letters, digits, '_', '-' and '\.'; "
        r"got 'my param'\.$",
    ),
    (
        "duplicate parameter",
        job(parameters=[{"name": "p", "default": "1"}, {"name": "p", "default": "2"}]),
        r"^settings\.parameters\[1\]\.name must be unique among parameter names; "
        r"settings\.parameters\[0\] has it too; got 'p'\.$",
    ),
    (
        "parameter without default",
        job(parameters=[{"name": "p"}]),
        r"^settings\.parameters\[0\]\.default is required\.$",
    ),
    (
        "parameter default not a string",
        job(parameters=[{"name": "p", "default": {"a": 1}}]),
        r"^settings\.parameters\[0\]\.default must be a string; got \{'a': 1\}\.$",
    ),
    (
        "undefined job cluster",
        job(task("a", job_cluster_key="nope")),
        r"^settings\.tasks\[0\]\.job_cluster_key must name a job cluster defined in job_clusters; "
        r"got 'nope'\.$",
    ),
    (
        "duplicate job cluster",
        job(
            job_clusters=[
                {"job_cluster_key": "c", "new_cluster": {}},
                {"job_cluster_key": "c", "new_cluster": {}},
            ]
        ),
        r"^settings\.job_clusters\[1\]\.job_cluster_key must be unique among job cluster keys",
    ),
    (
        "undefined environment",
        job(task("a", environment_key="env")),
        r"^settings\.tasks\[0\]\.environment_key must name an environment defined in environments; "
        r"got 'env'\.$",
    ),
    (
        "two kinds of compute",
        job(task("a", existing_cluster_id="abc", new_cluster={"num_workers": 1})),
        r"^settings\.tasks\[0\] must set at most one of existing_cluster_id, new_cluster, job_cluster_key, "
        r"environment_key; it sets existing_cluster_id and new_cluster\.$",
    ),
    (
        "trigger of two kinds",
        job(trigger={"periodic": {"interval": 1, "unit": "DAYS"}, "file_arrival": {"url": "/in"}}),
        r"^settings\.trigger must have exactly one of file_arrival, periodic, table_update, job_completion, "
        r"model, sql_condition; got",
    ),
    (
        "trigger of no kind",
        job(trigger={"pause_status": "PAUSED"}),
        r"^settings\.trigger must have exactly one of file_arrival",
    ),
    (
        "periodic unit",
        job(trigger={"periodic": {"interval": 1, "unit": "SECONDS"}}),
        r"^settings\.trigger\.periodic\.unit must be one of 'MINUTES', 'HOURS', 'DAYS' or 'WEEKS'; "
        r"got 'SECONDS'\.$",
    ),
    (
        "file arrival wait under 60 s",
        job(trigger={"file_arrival": {"url": "file:///in/", "wait_after_last_change_seconds": 10}}),
        r"^settings\.trigger\.file_arrival\.wait_after_last_change_seconds "
        r"must be at least 60 seconds; got 10\.$",
    ),
    (
        "email list of non-strings",
        job(email_notifications={"on_failure": ["a@example.com", 3]}),
        r"^settings\.email_notifications\.on_failure\[1\] must be a string; got 3\.$",
    ),
    (
        "four webhooks",
        job(webhook_notifications={"on_failure": [{"id": str(i)} for i in range(4)]}),
        r"^settings\.webhook_notifications\.on_failure must have at most 3 items; got",
    ),
    (
        "library of two kinds",
        job(task("a", libraries=[{"pypi": {"package": "x"}, "whl": "/y.whl"}])),
        r"^settings\.tasks\[0\]\.libraries\[0\] must have exactly one of pypi, maven, cran, jar, whl, egg, "
        r"requirements",
    ),
    (
        "run_as of two kinds",
        job(run_as={"user_name": "u", "service_principal_name": "s"}),
        r"^settings\.run_as must have exactly one of user_name, service_principal_name, group_name",
    ),
    (
        "single-task API 2.0 format",
        {"name": "old", "notebook_task": {"notebook_path": "/nb"}, "existing_cluster_id": "c"},
        r"^settings\.existing_cluster_id belongs to the single-task \(API 2\.0\) format, "
        r"which Floe does not accept",
    ),
    (
        "several pydantic errors are counted",
        job(task("a", max_retries="x", timeout_seconds="y")),
        r"^settings\.tasks\[0\]\.max_retries must be an integer; got 'x'\. \(1 more error\)$",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [(r, m) for _, r, m in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_settings_are_rejected_with_a_message_naming_path_value_and_rule(
    raw: Any, message: str
) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        validate_job_settings(raw)


def test_the_field_name_prefixes_paths() -> None:
    with pytest.raises(InvalidParameterValue, match=r"^new_settings\.tasks\[0\]\.task_key is required\.$"):
        validate_job_settings({"tasks": [{"notebook_task": {"notebook_path": "x"}}]}, field="new_settings")


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidParameterValue) as info:
        validate_job_settings(job(task("a", run_if="X" * 500)))
    assert len(info.value.message) < 400
    assert "..." in info.value.message


def test_unknown_fields_nested_beyond_the_serializer_are_rejected() -> None:
    deep: Any = []
    for _ in range(600):
        deep = [deep]
    with pytest.raises(InvalidParameterValue, match=r"^settings is nested too deeply\.$"):
        validate_job_settings(job(extra=deep))
