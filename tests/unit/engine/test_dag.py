"""`Dag.from_settings`: order, edges, leaves, task options, and a clear error for every bad graph."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine import Condition, Dag, Dependency, RetryPolicy, RunIf
from core.errors import InvalidParameterValue
from tests.unit.engine.harness import condition, task


def keys(*specs: tuple[str, list[str]]) -> dict[str, Any]:
    return {"tasks": [task(key, deps) for key, deps in specs]}


class TestShape:
    def test_order_edges_and_leaves(self) -> None:
        # listed out of order on purpose: the order follows dependencies, then settings order
        dag = Dag.from_settings(
            keys(("load", ["left", "right"]), ("left", ["extract"]), ("extract", []), ("right", ["extract"]))
        )
        assert dag.order == ("extract", "left", "right", "load")
        assert dag.leaves == ("load",)
        assert dag["extract"].downstream == ("left", "right")
        assert dag["load"].upstream == ("left", "right")
        assert [node.key for node in dag] == list(dag.order)
        assert len(dag) == 4 and "left" in dag and "nope" not in dag

    def test_independent_tasks_are_all_leaves(self) -> None:
        assert Dag.from_settings(keys(("b", []), ("a", []))).leaves == ("b", "a")

    def test_no_tasks(self) -> None:
        dag = Dag.from_settings({})
        assert (dag.order, dag.leaves, dag.timeout_ms) == ((), (), 0)

    def test_task_options(self) -> None:
        dag = Dag.from_settings(
            {
                "timeout_seconds": 3600,
                "tasks": [
                    condition("check", "EQUAL_TO", "{{job.parameters.env}}", "prod"),
                    task(
                        "deploy",
                        ["check:true"],
                        run_if="NONE_FAILED",
                        disabled=True,
                        max_retries=-1,
                        min_retry_interval_millis=5000,
                        retry_on_timeout=True,
                        timeout_seconds=60,
                    ),
                ],
            }
        )
        assert dag.timeout_ms == 3_600_000
        check, deploy = dag["check"], dag["deploy"]
        assert check.kind == "condition_task"
        assert check.condition == Condition("EQUAL_TO", "{{job.parameters.env}}", "prod")
        assert (check.run_if, check.disabled, check.retry, check.timeout_ms) == (
            RunIf.ALL_SUCCESS,
            False,
            RetryPolicy(),
            0,
        )
        assert deploy.kind == "notebook_task"
        assert deploy.depends_on == (Dependency("check", "true"),)
        assert (deploy.run_if, deploy.disabled, deploy.timeout_ms) == (RunIf.NONE_FAILED, True, 60_000)
        assert deploy.retry == RetryPolicy(
            max_retries=-1, min_retry_interval_millis=5000, retry_on_timeout=True
        )
        assert deploy.settings is not None and deploy.settings["notebook_task"] == {
            "notebook_path": "/nb/deploy"
        }

    def test_a_newer_task_type_is_recognised_by_its_suffix(self) -> None:
        dag = Dag.from_settings({"tasks": [{"task_key": "a", "dashboard_task": {}}]})
        assert dag["a"].kind == "dashboard_task"


@pytest.mark.parametrize(
    ("max_retries", "attempt", "allowed"),
    [(0, 0, False), (2, 0, True), (2, 1, True), (2, 2, False), (-1, 0, True), (-1, 10_000, True)],
)
def test_retry_policy_allows(max_retries: int, attempt: int, allowed: bool) -> None:
    assert RetryPolicy(max_retries=max_retries).allows_retry_after(attempt) is allowed


def test_retry_is_due_from_the_start_of_the_failed_attempt() -> None:
    assert RetryPolicy(min_retry_interval_millis=30_000).due(1_000) == 31_000


CYCLES = [
    (keys(("a", ["a"])), "a -> a"),
    (keys(("a", ["b"]), ("b", ["a"])), "a -> b -> a"),
    (keys(("a", ["b"]), ("b", ["c"]), ("c", ["a"])), "a -> b -> c -> a"),
    # a root and a tail hanging off the cycle are not part of it
    (
        keys(("root", []), ("x", ["root", "z"]), ("y", ["x"]), ("z", ["y"]), ("tail", ["z"])),
        "x -> z -> y -> x",
    ),
]


@pytest.mark.parametrize(("settings", "cycle"), CYCLES, ids=[c for _, c in CYCLES])
def test_a_cycle_is_named(settings: dict[str, Any], cycle: str) -> None:
    with pytest.raises(
        InvalidParameterValue,
        match=rf"^The tasks form a dependency cycle: {cycle} \(each task depends on the next\)",
    ):
        Dag.from_settings(settings)


BAD_SETTINGS = [
    ([], "Job settings must be a JSON object, got list."),
    ({"tasks": "a"}, "tasks must be an array, got str."),
    ({"tasks": [1]}, "tasks[0] must be a JSON object, got int."),
    ({"tasks": [{}]}, "tasks[0].task_key is required and must be a non-empty string, got None."),
    ({"tasks": [{"task_key": ""}]}, "tasks[0].task_key is required and must be a non-empty string, got ''."),
    (
        keys(("a", []), ("a", [])),
        "tasks[1].task_key 'a' is also the key of tasks[0]: task keys must be unique",
    ),
    (keys(("a", ["zz"])), "tasks[0].depends_on[0].task_key 'zz' is not a task of this job."),
    ({"tasks": [{"task_key": "a", "depends_on": "b"}]}, "tasks[0].depends_on must be an array, got str."),
    (
        {"tasks": [{"task_key": "a", "depends_on": ["b"]}]},
        "tasks[0].depends_on[0] must be a JSON object, got str.",
    ),
    (keys(("a", []), ("b", ["a", "a"])), "tasks[1].depends_on[1].task_key 'a' is listed twice"),
    (
        keys(("a", []), ("b", ["a:true"])),
        "tasks[1].depends_on[0].outcome is only allowed on a dependency on a",
    ),
    (
        {"tasks": [condition("c", "EQUAL_TO", "1", "1"), task("b", ["c:yes"])]},
        'tasks[1].depends_on[0].outcome must be "true" or "false", got \'yes\'.',
    ),
    ({"tasks": [task("a", run_if="SOMETIMES")]}, "tasks[0].run_if 'SOMETIMES' is not one of ALL_SUCCESS,"),
    ({"tasks": [task("a", disabled="yes")]}, "tasks[0].disabled must be true or false, got 'yes'."),
    ({"tasks": [task("a", max_retries=-2)]}, "tasks[0].max_retries must be an integer >= -1, got -2."),
    ({"tasks": [task("a", max_retries=True)]}, "tasks[0].max_retries must be an integer >= -1, got True."),
    (
        {"tasks": [task("a", timeout_seconds="60")]},
        "tasks[0].timeout_seconds must be an integer >= 0, got '60'.",
    ),
    (
        {"tasks": [task("a", min_retry_interval_millis=-1)]},
        "tasks[0].min_retry_interval_millis must be an integer >= 0, got -1.",
    ),
    ({"tasks": [task("a", retry_on_timeout=1)]}, "tasks[0].retry_on_timeout must be true or false, got 1."),
    ({"timeout_seconds": -5, "tasks": []}, "timeout_seconds must be an integer >= 0, got -5."),
    (
        {"tasks": [{"task_key": "c", "condition_task": None}]},
        "tasks[0].condition_task must be a JSON object, got null.",
    ),
    (
        {"tasks": [condition("c", "LIKE", "a", "b")]},
        "tasks[0].condition_task.op 'LIKE' is not one of EQUAL_TO,",
    ),
    (
        {"tasks": [{"task_key": "c", "condition_task": {"op": "EQUAL_TO", "left": ["a"], "right": "b"}}]},
        "tasks[0].condition_task.left must be a string, got list.",
    ),
    (
        {"tasks": [{"task_key": "f", "for_each_task": "x"}]},
        "tasks[0].for_each_task must be a JSON object, got str.",
    ),
    (
        {"tasks": [{"task_key": "f", "for_each_task": {"task": task("t")}}]},
        "tasks[0].for_each_task.inputs is required: a JSON array as a string, or a reference to one",
    ),
    (
        {
            "tasks": [
                {"task_key": "f", "for_each_task": {"inputs": "[1]", "task": task("t"), "concurrency": 0}}
            ]
        },
        "tasks[0].for_each_task.concurrency must be an integer >= 1, got 0.",
    ),
    (
        {"tasks": [{"task_key": "f", "for_each_task": {"inputs": "[1]"}}]},
        "tasks[0].for_each_task.task must be a JSON object, got null.",
    ),
    (
        {"tasks": [{"task_key": "f", "for_each_task": {"inputs": "[1]", "task": {"notebook_task": {}}}}]},
        "tasks[0].for_each_task.task.task_key is required and must be a non-empty string, got None.",
    ),
    (
        {
            "tasks": [
                {
                    "task_key": "f",
                    "for_each_task": {
                        "inputs": "[1]",
                        "task": {"task_key": "g", "for_each_task": {"inputs": "[]", "task": task("h")}},
                    },
                }
            ]
        },
        "tasks[0].for_each_task.task cannot itself be a for_each_task.",
    ),
    (
        {"tasks": [{"task_key": "f", "for_each_task": {"inputs": "[1]", "task": task("t", max_retries=-3)}}]},
        "tasks[0].for_each_task.task.max_retries must be an integer >= -1, got -3.",
    ),
    (
        {"tasks": [{"task_key": "r", "run_job_task": {"job_id": 1, "job_parameters": ["a"]}}]},
        "tasks[0].run_job_task.job_parameters must be a JSON object, got list.",
    ),
]


@pytest.mark.parametrize(("settings", "message"), BAD_SETTINGS, ids=[m[:40] for _, m in BAD_SETTINGS])
def test_bad_settings_are_reported_not_crashed_on(settings: Any, message: str) -> None:
    with pytest.raises(InvalidParameterValue) as raised:
        Dag.from_settings(settings)
    assert raised.value.message.startswith(message)


def test_scalar_condition_operands_become_strings() -> None:
    dag = Dag.from_settings({"tasks": [condition("c", "EQUAL_TO", True, 12)]})  # type: ignore[arg-type]
    assert dag["c"].condition == Condition("EQUAL_TO", "true", "12")


def test_a_large_chain_does_not_recurse() -> None:
    n = 5000
    dag = Dag.from_settings({"tasks": [task(f"t{i}", [f"t{i - 1}"] if i else None) for i in range(n)]})
    assert dag.order[-1] == f"t{n - 1}"
    assert dag.leaves == (f"t{n - 1}",)


def test_a_for_each_task_and_its_nested_task() -> None:
    nested = task("work", max_retries=2, timeout_seconds=30)
    dag = Dag.from_settings(
        {
            "tasks": [
                {"task_key": "each", "for_each_task": {"inputs": "{{job.parameters.xs}}", "task": nested}}
            ]
        }
    )
    spec = dag["each"].for_each
    assert spec is not None
    assert (spec.inputs, spec.concurrency) == ("{{job.parameters.xs}}", 1)
    assert (spec.task.key, spec.task.kind, spec.task.retry.max_retries, spec.task.timeout_ms) == (
        "work",
        "notebook_task",
        2,
        30_000,
    )
    assert spec.task.settings == nested
    assert dag.node_of("work", "each") is spec.task
    assert dag.node_of("work") is None  # not a top-level task
    assert dag.node_of("other", "each") is None
