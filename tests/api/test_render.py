"""The pure renderers: service records in, Jobs API reply bodies out (no app, no clock)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from core.api.render import (
    page_run,
    parse_page_token,
    render_job_list,
    render_output,
    render_run,
    render_run_list,
    render_status,
)
from core.engine.records import RepairEntry, Run, TaskRun, Termination
from core.engine.states import LifeCycle, Result, RunType, TerminationCode, TerminationType, TriggerType
from core.errors import InvalidParameterValue
from core.views import JobPage, JobRecord, RunOutput, RunPage, RunView

BASE = "http://floe.test/"
NOW = 20_000
OK = Termination(TerminationCode.SUCCESS, TerminationType.SUCCESS)
FAILED = Termination(TerminationCode.RUN_EXECUTION_ERROR, TerminationType.CLIENT_ERROR, "boom")

SPEC: dict[str, Any] = {
    "name": "etl",
    "parameters": [{"name": "env", "default": "dev"}, {"name": "day", "default": "mon"}],
    "job_clusters": [{"job_cluster_key": "c", "new_cluster": {"num_workers": 1}}],
    "tasks": [
        {
            "task_key": "a",
            "job_cluster_key": "c",
            "max_retries": 1,
            "spark_python_task": {"python_file": "a.py"},
        },
        {"task_key": "b", "depends_on": [{"task_key": "a"}], "notebook_task": {"notebook_path": "/nb"}},
    ],
}


def attempt(key: str, run_id: int, n: int = 0, **fields: Any) -> TaskRun:
    base: dict[str, Any] = {
        "life_cycle": LifeCycle.TERMINATED,
        "result": Result.SUCCESS,
        "termination": OK,
        "queued_time": 1000 * run_id,
        "start_time": 1000 * run_id + 100,
        "end_time": 1000 * run_id + 900,
    }
    base.update(fields)
    return TaskRun(key, run_id, 10, attempt_number=n, original_attempt_run_id=11 if key == "a" else 0, **base)


RUN = Run(
    run_id=10,
    job_id=1,
    run_name="etl",
    creator_user_name="alice",
    life_cycle=LifeCycle.TERMINATED,
    result=Result.SUCCESS,
    termination=OK,
    created_time=10_000,
    start_time=10_500,
    end_time=14_000,
    job_parameters={"env": "prod", "day": "mon"},
)
TASKS = [
    attempt("b", 13),
    attempt("a", 12, 1),
    attempt(
        "a", 11, 0, result=Result.FAILED, termination=FAILED, state_message="boom", error="ValueError: boom"
    ),
]
VIEW = RunView(RUN, TASKS, SPEC, "etl")


def state(result: str, message: str = "") -> dict[str, Any]:
    return {
        "life_cycle_state": "TERMINATED",
        "result_state": result,
        "state_message": message,
        "user_cancelled_or_timedout": False,
    }


def status(code: str = "SUCCESS", kind: str = "SUCCESS", message: str = "") -> dict[str, Any]:
    return {"state": "TERMINATED", "termination_details": {"code": code, "type": kind, "message": message}}


def timing(run_id: int) -> dict[str, int]:
    t = 1000 * run_id
    return {
        "start_time": t,
        "end_time": t + 900,
        "setup_duration": 100,
        "execution_duration": 800,
        "cleanup_duration": 0,
        "run_duration": 900,
        "queue_duration": 0,
    }


def test_a_run_with_two_tasks_and_a_retry() -> None:
    assert render_run(VIEW, base_url=BASE, now_ms=NOW) == {
        "job_id": 1,
        "run_id": 10,
        "number_in_job": 10,
        "original_attempt_run_id": 10,
        "creator_user_name": "alice",
        "run_name": "etl",
        "run_type": "JOB_RUN",
        "trigger": "ONE_TIME",
        "state": state("SUCCESS"),
        "status": status(),
        "start_time": 10_000,
        "end_time": 14_000,
        "setup_duration": 0,
        "execution_duration": 0,
        "cleanup_duration": 0,
        "run_duration": 4_000,
        "queue_duration": 500,
        "run_page_url": "http://floe.test/#job/1/run/10",
        "format": "MULTI_TASK",
        "job_parameters": [
            {"name": "env", "default": "dev", "value": "prod"},
            {"name": "day", "default": "mon", "value": "mon"},
        ],
        "job_clusters": SPEC["job_clusters"],
        "tasks": [
            {
                **SPEC["tasks"][0],
                "run_id": 11,
                "attempt_number": 0,
                "original_attempt_run_id": 11,
                **timing(11),
                "state": state("FAILED", "boom"),
                "status": status("RUN_EXECUTION_ERROR", "CLIENT_ERROR", "boom"),
                "run_page_url": "http://floe.test/#job/1/run/11",
            },
            {
                **SPEC["tasks"][0],
                "run_id": 12,
                "attempt_number": 1,
                "original_attempt_run_id": 11,
                **timing(12),
                "state": state("SUCCESS"),
                "status": status(),
                "run_page_url": "http://floe.test/#job/1/run/12",
            },
            {
                **SPEC["tasks"][1],
                "run_id": 13,
                "attempt_number": 0,
                "original_attempt_run_id": 13,
                **timing(13),
                "state": state("SUCCESS"),
                "status": status(),
                "run_page_url": "http://floe.test/#job/1/run/13",
            },
        ],
    }


def test_a_running_run_has_state_but_no_result_and_measures_to_now() -> None:
    running = replace(RUN, life_cycle=LifeCycle.RUNNING, result=None, termination=None, end_time=0)
    blocked = attempt(
        "b", 13, life_cycle=LifeCycle.BLOCKED, result=None, queued_time=0, start_time=0, end_time=0
    )
    live = attempt("a", 11, life_cycle=LifeCycle.RUNNING, result=None, end_time=0)
    out = render_run(RunView(running, [blocked, live], SPEC, "etl"), base_url=BASE, now_ms=NOW)
    assert out["state"] == {
        "life_cycle_state": "RUNNING",
        "state_message": "",
        "user_cancelled_or_timedout": False,
    }
    assert out["status"] == {"state": "RUNNING"}
    assert (out["end_time"], out["run_duration"]) == (0, NOW - 10_000)
    a, b = out["tasks"]
    assert a["run_duration"] == NOW - 11_000 and a["execution_duration"] == 0
    assert b["state"]["life_cycle_state"] == "BLOCKED" and b["status"] == {"state": "BLOCKED"}
    assert (b["start_time"], b["run_duration"]) == (0, 0)


def test_a_queued_run_says_why_and_how_long() -> None:
    queued = replace(
        RUN, life_cycle=LifeCycle.QUEUED, result=None, termination=None, start_time=0, end_time=0,
        state_message="Queued: the job already has 1 active run (max_concurrent_runs).",
    )  # fmt: skip
    out = render_run(RunView(queued, [], SPEC, "etl"), base_url=BASE, now_ms=NOW)
    assert out["state"]["queue_reason"] == queued.state_message
    assert out["status"] == {
        "state": "QUEUED",
        "queue_details": {"code": "MAX_CONCURRENT_RUNS_REACHED", "message": queued.state_message},
    }
    assert out["queue_duration"] == NOW - 10_000
    assert out["tasks"] == []


@pytest.mark.parametrize(
    ("life_cycle", "result", "expected"),
    [
        (
            LifeCycle.SKIPPED,
            Result.MAXIMUM_CONCURRENT_RUNS_REACHED,
            ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR"),
        ),
        (LifeCycle.INTERNAL_ERROR, None, ("INTERNAL_ERROR", "INTERNAL_ERROR")),
        (LifeCycle.TERMINATED, Result.CANCELED, ("CANCELED", "SUCCESS")),
        (LifeCycle.TERMINATED, Result.UPSTREAM_FAILED, ("UPSTREAM_FAILED", "CLIENT_ERROR")),
    ],
)
def test_a_final_state_without_recorded_termination_gets_one(
    life_cycle: LifeCycle, result: Result | None, expected: tuple[str, str]
) -> None:
    out = render_status(life_cycle, result, None, "why")
    assert out == {
        "state": "TERMINATED",
        "termination_details": {"code": expected[0], "type": expected[1], "message": "why"},
    }


def test_condition_outcome_and_resolved_values() -> None:
    spec = {
        "tasks": [{"task_key": "c", "condition_task": {"op": "EQUAL_TO", "left": "{{job.id}}", "right": "1"}}]
    }
    resolved = {"condition_task": {"left": "1", "right": "1"}}
    task = replace(attempt("c", 11), outcome="true", resolved_values=resolved)
    view = RunView(replace(RUN, job_parameters={}), [task], spec, "x")
    plain = render_run(view, base_url=BASE, now_ms=NOW)["tasks"][0]
    assert plain["condition_task"] == {
        "op": "EQUAL_TO",
        "left": "{{job.id}}",
        "right": "1",
        "outcome": "true",
    }
    assert spec["tasks"][0]["condition_task"].get("outcome") is None  # the spec is not modified
    assert "resolved_values" not in plain
    full = render_run(view, base_url=BASE, now_ms=NOW, include_resolved_values=True)["tasks"][0]
    assert full["resolved_values"] == resolved


def test_history_starts_with_the_original_entry() -> None:
    out = render_run(VIEW, base_url=BASE, now_ms=NOW, include_history=True)
    assert out["repair_history"] == [
        {
            "type": "ORIGINAL",
            "start_time": 10_000,
            "end_time": 14_000,
            "state": state("SUCCESS"),
            "status": status(),
            "task_run_ids": [11, 12, 13],
        }
    ]
    assert "repair_history" not in render_run(VIEW, base_url=BASE, now_ms=NOW)


def test_history_with_repairs_keeps_the_original_first() -> None:
    repair = RepairEntry("REPAIR", 500, 30_000, 31_000, (14,), LifeCycle.TERMINATED, Result.SUCCESS)
    repaired = replace(RUN, repair_history=(repair,))
    view = RunView(repaired, [*TASKS, attempt("b", 14, 1)], SPEC, "etl")
    history = render_run(view, base_url=BASE, now_ms=NOW, include_history=True)["repair_history"]
    assert [(h["type"], h.get("id"), h["task_run_ids"]) for h in history] == [
        ("ORIGINAL", None, [11, 12, 13]),
        ("REPAIR", 500, [14]),
    ]
    recorded = RepairEntry(
        "ORIGINAL", None, 10_000, 14_000, (11, 12, 13), LifeCycle.TERMINATED, Result.FAILED
    )
    view = RunView(replace(RUN, repair_history=(recorded, repair)), TASKS, SPEC, "etl")
    history = render_run(view, base_url=BASE, now_ms=NOW, include_history=True)["repair_history"]
    assert history[0]["state"]["result_state"] == "FAILED" and len(history) == 2


def test_paging_a_run_of_250_tasks_in_2_2() -> None:
    spec = {
        "name": "big",
        "tasks": [{"task_key": f"t{i:03}", "notebook_task": {"notebook_path": "/n"}} for i in range(250)],
    }
    tasks = [attempt(f"t{i:03}", 1000 + i) for i in range(250)]
    view = RunView(RUN, tasks, spec, "big")
    pages, offset = [], 0
    while True:
        page = page_run(render_run(view, base_url=BASE, now_ms=NOW, include_history=True), offset)
        pages.append(page)
        if "next_page_token" not in page:
            break
        offset = parse_page_token(page["next_page_token"])
    assert [len(p["tasks"]) for p in pages] == [100, 100, 50]
    assert [t["task_key"] for p in pages for t in p["tasks"]] == [t["task_key"] for t in spec["tasks"]]
    # the other arrays come once, on the first page (the SDK appends every page's arrays)
    assert [len(p.get("job_parameters", [])) for p in pages] == [2, 0, 0]
    assert [len(p.get("repair_history", [])) for p in pages] == [1, 0, 0]
    assert all(p["state"]["life_cycle_state"] == "TERMINATED" for p in pages)


def test_a_small_run_has_no_page_token() -> None:
    assert "next_page_token" not in page_run(render_run(VIEW, base_url=BASE, now_ms=NOW), 0)


@pytest.mark.parametrize("token", ["x", "-1", "1.5", "\u0661"])
def test_foreign_page_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidParameterValue, match=r"^page_token is not a page token this server issued"):
        parse_page_token(token)


def test_output_renders_the_task_run_as_a_run() -> None:
    failed = TASKS[2]
    output = RunOutput(VIEW, failed, logs=None, error="ValueError: boom", error_trace="Traceback ...")
    out = render_output(output, base_url=BASE, now_ms=NOW)
    assert set(out) == {"metadata", "error", "error_trace"}
    meta = out["metadata"]
    assert meta["run_id"] == 11 and meta["job_run_id"] == 10 and meta["job_id"] == 1
    assert meta["task_key"] == "a" and meta["spark_python_task"] == {"python_file": "a.py"}
    assert meta["state"] == state("FAILED", "boom")
    assert meta["run_page_url"] == "http://floe.test/#job/1/run/11"
    notebook = RunOutput(VIEW, TASKS[0], notebook_output={"result": "42", "truncated": False})
    assert render_output(notebook, base_url=BASE, now_ms=NOW)["notebook_output"] == {
        "result": "42",
        "truncated": False,
    }


def test_run_lists_hide_tasks_unless_expanded_and_cap_them_in_2_2() -> None:
    spec = {"tasks": [{"task_key": f"t{i}", "notebook_task": {"notebook_path": "/n"}} for i in range(101)]}
    view = RunView(
        replace(RUN, run_type=RunType.SUBMIT_RUN, trigger=TriggerType.ONE_TIME),
        [attempt(f"t{i}", 100 + i) for i in range(101)],
        spec,
        "",
    )
    page = RunPage([view], next_page_token="n2", has_more=True)
    plain = render_run_list(page, base_url=BASE, now_ms=NOW, expand_tasks=False, cap=True)
    assert plain["next_page_token"] == "n2" and plain["has_more"] is True
    assert "tasks" not in plain["runs"][0] and "job_clusters" not in plain["runs"][0]
    assert plain["runs"][0]["run_type"] == "SUBMIT_RUN"
    capped = render_run_list(page, base_url=BASE, now_ms=NOW, expand_tasks=True, cap=True)["runs"][0]
    assert len(capped["tasks"]) == 100 and capped["has_more"] is True
    whole = render_run_list(page, base_url=BASE, now_ms=NOW, expand_tasks=True, cap=False)["runs"][0]
    assert len(whole["tasks"]) == 101 and "has_more" not in whole


def test_job_lists_never_send_empty_tokens() -> None:
    job = JobRecord(1, {"name": "n", "tasks": []}, 5, "u", "u")
    assert render_job_list(JobPage([job], "", "", False), expand_tasks=False, cap=True) == {
        "jobs": [{"job_id": 1, "creator_user_name": "u", "created_time": 5, "settings": {"name": "n"}}],
        "has_more": False,
    }
