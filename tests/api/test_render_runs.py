"""Rendering of for-each tasks and iterations, task runs asked for by id, run-job outputs, queued and
skipped runs, resolved values and repair histories (pure renderers, no app)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from core.api.render import page_run, parse_page_token, render_output, render_run
from core.api.render_task import for_each_stats, render_resolved_values
from core.engine.records import RepairEntry, Run, TaskRun, Termination
from core.engine.states import LifeCycle, Result, TerminationCode, TerminationType
from core.errors import RunNotFound
from core.views import RunOutput, RunView

BASE = "http://floe.test/"
NOW = 90_000
OK = Termination(TerminationCode.SUCCESS, TerminationType.SUCCESS)
BOOM = Termination(TerminationCode.RUN_EXECUTION_ERROR, TerminationType.CLIENT_ERROR, "boom")

ITEM = {
    "task_key": "item",
    "notebook_task": {"notebook_path": "/item", "base_parameters": {"x": "{{input}}"}},
}
FOR_EACH = {"inputs": '["a","b","c","d"]', "concurrency": 2, "task": ITEM}
SPEC: dict[str, Any] = {
    "name": "fan",
    "parameters": [{"name": "env", "default": "dev"}],
    "tasks": [
        {"task_key": "list", "notebook_task": {"notebook_path": "/list"}},
        {"task_key": "each", "depends_on": [{"task_key": "list"}], "for_each_task": FOR_EACH},
        {"task_key": "child", "run_job_task": {"job_id": 7, "job_parameters": {"p": "1"}}},
    ],
}


def task_run(key: str, run_id: int, **fields: Any) -> TaskRun:
    values: dict[str, Any] = {
        "life_cycle": LifeCycle.TERMINATED,
        "result": Result.SUCCESS,
        "termination": OK,
        "queued_time": 1000 * run_id,
        "start_time": 1000 * run_id + 100,
        "end_time": 1000 * run_id + 900,
    }
    values.update(fields)
    return TaskRun(task_key=key, run_id=run_id, parent_run_id=10, **values)


def iteration(run_id: int, index: int, **fields: Any) -> TaskRun:
    return task_run(
        "item", run_id, parent_task_run_id=21, iteration=index, input=f'"{"abcd"[index]}"', **fields
    )


RUNNING = {"life_cycle": LifeCycle.RUNNING, "result": None, "termination": None, "end_time": 0}
ITERATIONS = [
    iteration(30, 0),
    iteration(31, 1, result=Result.FAILED, termination=BOOM, state_message="boom"),
    iteration(32, 1, attempt_number=1, original_attempt_run_id=31, **RUNNING),
    iteration(33, 2, life_cycle=LifeCycle.PENDING, result=None, termination=None, start_time=0, end_time=0),
    iteration(
        34,
        3,
        life_cycle=LifeCycle.BLOCKED,
        result=None,
        termination=None,
        queued_time=0,
        start_time=0,
        end_time=0,
    ),
]
RUN = Run(
    run_id=10,
    job_id=1,
    run_name="fan",
    creator_user_name="alice",
    life_cycle=LifeCycle.RUNNING,
    created_time=10_000,
    start_time=10_000,
    job_parameters={"env": "dev"},
)
TASKS = [
    task_run("list", 20),
    task_run("each", 21, **RUNNING),
    *ITERATIONS,
    task_run(
        "child",
        22,
        life_cycle=LifeCycle.BLOCKED,
        result=None,
        termination=None,
        queued_time=0,
        start_time=0,
        end_time=0,
    ),
]
VIEW = RunView(RUN, TASKS, SPEC, "fan")


def running_state() -> dict[str, Any]:
    return {"life_cycle_state": "RUNNING", "state_message": "", "user_cancelled_or_timedout": False}


# ------------------------------------------------------------------------------------------- for-each


def test_a_job_run_lists_the_for_each_task_with_stats_and_never_its_iterations() -> None:
    out = render_run(VIEW, base_url=BASE, now_ms=NOW)
    assert [(t["task_key"], t["run_id"]) for t in out["tasks"]] == [("list", 20), ("each", 21), ("child", 22)]
    each = out["tasks"][1]
    assert each["for_each_task"] == {
        **FOR_EACH,
        "stats": {
            "task_run_stats": {
                "total_iterations": 4,
                "scheduled_iterations": 3,  # 30 (done), 32 (the running retry of 31), 33 (pending)
                "active_iterations": 2,
                "completed_iterations": 1,
                "succeeded_iterations": 1,
                "failed_iterations": 0,
            }
        },
    }
    assert "stats" not in SPEC["tasks"][1]["for_each_task"]  # the spec is left alone
    assert each["state"] == running_state() and each["depends_on"] == [{"task_key": "list"}]


def test_stats_count_the_latest_attempt_of_each_iteration() -> None:
    done = [
        iteration(30, 0),
        iteration(31, 1, result=Result.FAILED, termination=BOOM),
        iteration(
            32, 1, attempt_number=1, original_attempt_run_id=31, result=Result.FAILED, termination=BOOM
        ),
        iteration(33, 2, result=Result.CANCELED),
    ]
    assert for_each_stats(done, inputs=3) == {
        "total_iterations": 3,
        "scheduled_iterations": 3,
        "active_iterations": 0,
        "completed_iterations": 3,
        "succeeded_iterations": 1,
        "failed_iterations": 2,
    }
    assert for_each_stats([])["total_iterations"] == 0
    # Without a known input count, the iterations there are are the total.
    assert for_each_stats(done)["total_iterations"] == 3


def test_the_total_comes_from_resolved_inputs_when_inputs_is_a_reference() -> None:
    spec = {
        "tasks": [
            {"task_key": "each", "for_each_task": {**FOR_EACH, "inputs": "{{job.parameters.items}}"}},
        ]
    }
    each = task_run("each", 21, resolved_values={"for_each_task": {"inputs": "[1,2,3,4,5,6]"}})
    out = render_run(RunView(RUN, [each], spec, "fan"), base_url=BASE, now_ms=NOW)
    assert out["tasks"][0]["for_each_task"]["stats"]["task_run_stats"]["total_iterations"] == 6
    unresolved = render_run(
        RunView(RUN, [replace(each, resolved_values=None)], spec, "fan"), base_url=BASE, now_ms=NOW
    )
    assert unresolved["tasks"][0]["for_each_task"]["stats"]["task_run_stats"]["total_iterations"] == 0


def test_runs_get_of_the_for_each_task_run_renders_it_as_a_run_with_its_iterations() -> None:
    out = render_run(replace(VIEW, focus_task_run_id=21), base_url=BASE, now_ms=NOW, include_history=True)
    entry = render_run(VIEW, base_url=BASE, now_ms=NOW)["tasks"][1]
    assert {k: out[k] for k in entry} == entry  # the task entry's fields, at the top
    assert out["job_id"] == 1 and out["run_id"] == 21 and out["job_run_id"] == 10
    assert out["task_key"] == "each" and out["state"] == running_state()
    assert out["status"] == {"state": "RUNNING"}
    assert (out["attempt_number"], out["original_attempt_run_id"]) == (0, 21)
    assert out["run_page_url"] == "http://floe.test/#job/1/run/21"
    assert (out["run_name"], out["run_type"], out["trigger"]) == ("fan", "JOB_RUN", "ONE_TIME")
    assert out["tasks"] == [entry]
    assert "repair_history" not in out  # a task run has no repairs of its own
    iterations = out["iterations"]
    assert [(i["run_id"], i["attempt_number"], i["original_attempt_run_id"]) for i in iterations] == [
        (30, 0, 30),
        (31, 0, 31),
        (32, 1, 31),
        (33, 0, 33),
        (34, 0, 34),
    ]
    first = iterations[0]
    assert first["task_key"] == "item" and first["notebook_task"] == ITEM["notebook_task"]
    assert first["state"]["result_state"] == "SUCCESS" and first["start_time"] == 30_000
    assert first["end_time"] == 30_900 and first["run_page_url"] == "http://floe.test/#job/1/run/30"
    assert iterations[1]["state"]["result_state"] == "FAILED"
    assert iterations[2]["state"] == running_state() and iterations[2]["end_time"] == 0
    assert iterations[4]["state"]["life_cycle_state"] == "BLOCKED"


def test_runs_get_of_an_iteration_or_of_a_plain_task_run() -> None:
    out = render_run(replace(VIEW, focus_task_run_id=32), base_url=BASE, now_ms=NOW)
    assert (out["run_id"], out["task_key"], out["job_run_id"]) == (32, "item", 10)
    assert (out["attempt_number"], out["original_attempt_run_id"]) == (1, 31)
    assert out["notebook_task"] == ITEM["notebook_task"] and "iterations" not in out
    assert [t["run_id"] for t in out["tasks"]] == [32]
    plain = render_run(replace(VIEW, focus_task_run_id=20), base_url=BASE, now_ms=NOW)
    assert (plain["run_id"], plain["task_key"], plain["end_time"]) == (20, "list", 20_900)
    assert plain["state"]["result_state"] == "SUCCESS" and "iterations" not in plain


def test_a_focus_the_view_does_not_hold_is_a_missing_run() -> None:
    with pytest.raises(RunNotFound, match=r"^Run 404 does not exist\.$"):
        render_run(replace(VIEW, focus_task_run_id=404), base_url=BASE, now_ms=NOW)


def test_2_2_pages_250_iterations_by_100_and_keeps_the_task_on_every_page() -> None:
    many = [iteration(1000 + i, i % 4) for i in range(250)]
    many = [replace(t, iteration=i) for i, t in enumerate(many)]
    view = RunView(RUN, [task_run("each", 21), *many], SPEC, "fan", focus_task_run_id=21)
    pages, offset = [], 0
    while True:
        page = page_run(render_run(view, base_url=BASE, now_ms=NOW), offset)
        pages.append(page)
        if "next_page_token" not in page:
            break
        offset = parse_page_token(page["next_page_token"])
    assert [len(p["iterations"]) for p in pages] == [100, 100, 50]
    assert [i["run_id"] for p in pages for i in p["iterations"]] == [t.run_id for t in many]
    assert all([t["run_id"] for t in p["tasks"]] == [21] for p in pages)
    stats = pages[0]["for_each_task"]["stats"]["task_run_stats"]
    assert stats["total_iterations"] == 250 and stats["succeeded_iterations"] == 250


# ---------------------------------------------------------------------------------------- run job task


def test_a_run_job_task_shows_its_settings_and_its_output_names_the_child_run() -> None:
    child = task_run("child", 22, child_run_id=777)
    view = RunView(RUN, [task_run("list", 20), child], SPEC, "fan")
    entry = render_run(view, base_url=BASE, now_ms=NOW)["tasks"][1]
    assert entry["run_job_task"] == {"job_id": 7, "job_parameters": {"p": "1"}}
    out = render_output(RunOutput(view, child), base_url=BASE, now_ms=NOW)
    assert out["run_job_output"] == {"run_id": 777}
    assert out["metadata"]["run_id"] == 22 and "tasks" not in out["metadata"]
    not_started = render_output(RunOutput(view, replace(child, child_run_id=None)), base_url=BASE, now_ms=NOW)
    assert "run_job_output" not in not_started


def test_get_output_keeps_the_notebook_output_as_given_and_reports_errors() -> None:
    failed = ITERATIONS[1]
    output = RunOutput(
        VIEW,
        failed,
        notebook_output={"result": "partial", "truncated": True},
        error="boom",
        error_trace="Traceback ...",
        logs="",
    )
    out = render_output(output, base_url=BASE, now_ms=NOW)
    assert out["notebook_output"] == {"result": "partial", "truncated": True}
    assert (out["error"], out["error_trace"], out["logs"], out["logs_truncated"]) == (
        "boom",
        "Traceback ...",
        "",
        False,
    )
    assert out["metadata"]["task_key"] == "item" and out["metadata"]["job_run_id"] == 10
    assert out["metadata"]["notebook_task"] == ITEM["notebook_task"]
    assert "run_job_output" not in out


def test_get_output_of_a_for_each_task_carries_its_stats_but_not_its_iterations() -> None:
    out = render_output(RunOutput(VIEW, TASKS[1]), base_url=BASE, now_ms=NOW)
    assert out["metadata"]["for_each_task"]["stats"]["task_run_stats"]["total_iterations"] == 4
    assert "iterations" not in out["metadata"]


# ------------------------------------------------------------------------------------ queued, skipped


def test_a_queued_run_says_why_from_its_queue_reason() -> None:
    reason = "Queued: job 1 already has 1 active run (max_concurrent_runs = 1)."
    queued = replace(RUN, life_cycle=LifeCycle.QUEUED, start_time=0, queue_reason=reason)
    out = render_run(RunView(queued, [], SPEC, "fan"), base_url=BASE, now_ms=NOW)
    assert out["state"] == {
        "life_cycle_state": "QUEUED",
        "state_message": "",
        "user_cancelled_or_timedout": False,
        "queue_reason": reason,
    }
    assert out["status"] == {
        "state": "QUEUED",
        "queue_details": {"code": "MAX_CONCURRENT_RUNS_REACHED", "message": reason},
    }
    assert out["queue_duration"] == NOW - 10_000 and out["tasks"] == []
    running = replace(RUN, queue_reason=reason)  # a reason left behind is not shown
    assert (
        "queue_reason" not in render_run(RunView(running, [], SPEC, "x"), base_url=BASE, now_ms=NOW)["state"]
    )


def test_a_skipped_run_is_final_with_life_cycle_skipped() -> None:
    skipped = replace(
        RUN,
        life_cycle=LifeCycle.SKIPPED,
        result=Result.MAXIMUM_CONCURRENT_RUNS_REACHED,
        state_message="Skipped: job 1 already has 1 active run.",
        start_time=0,
        end_time=10_000,
    )
    out = render_run(RunView(skipped, [], SPEC, "fan"), base_url=BASE, now_ms=NOW)
    assert out["state"] == {
        "life_cycle_state": "SKIPPED",
        "result_state": "MAXIMUM_CONCURRENT_RUNS_REACHED",
        "state_message": "Skipped: job 1 already has 1 active run.",
        "user_cancelled_or_timedout": False,
    }
    assert out["status"] == {
        "state": "TERMINATED",
        "termination_details": {
            "code": "MAX_CONCURRENT_RUNS_EXCEEDED",
            "type": "CLIENT_ERROR",
            "message": "Skipped: job 1 already has 1 active run.",
        },
    }
    assert (out["end_time"], out["run_duration"], out["queue_duration"]) == (10_000, 0, 0)


# ------------------------------------------------------------------------------------ resolved values


def test_resolved_values_take_the_jobs_api_shape() -> None:
    stored = {
        "spark_python_task": {"python_file": "a.py", "parameters": ["--day", "2026-01-01"], "source": "GIT"},
        "notebook_task": {"notebook_path": "/nb", "base_parameters": {"env": "prod"}},
        "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"},
        "python_wheel_task": {"package_name": "p", "entry_point": "m", "named_parameters": {"k": "v"}},
        "run_job_task": {"job_id": 7, "job_parameters": {"p": "1"}},
        "sql_task": {"warehouse_id": "w", "parameters": {"d": "1"}},
        "dbt_task": {"commands": ["dbt run"]},
        "for_each_task": {"inputs": "[1]"},
        "spark_jar_task": {"main_class_name": "Main"},
    }
    assert render_resolved_values(stored) == {
        "spark_python_task": {"parameters": ["--day", "2026-01-01"]},
        "notebook_task": {"base_parameters": {"env": "prod"}},
        "condition_task": {"left": "1", "right": "1"},
        "python_wheel_task": {"named_parameters": {"k": "v"}},
        "run_job_task": {"job_parameters": {"p": "1"}},
        "sql_task": {"parameters": {"d": "1"}},
        "dbt_task": {"commands": ["dbt run"]},
    }


def test_resolved_values_render_only_when_asked_and_only_when_there_are_some() -> None:
    values = {"notebook_task": {"notebook_path": "/list", "base_parameters": {"day": "mon"}}}
    view = RunView(
        RUN,
        [
            task_run("list", 20, resolved_values=values),
            task_run("each", 21, resolved_values={"for_each_task": {"inputs": "[]"}}),
        ],
        SPEC,
        "fan",
    )
    plain = render_run(view, base_url=BASE, now_ms=NOW)["tasks"]
    assert all("resolved_values" not in t for t in plain)
    listed, each = render_run(view, base_url=BASE, now_ms=NOW, include_resolved_values=True)["tasks"]
    assert listed["resolved_values"] == {"notebook_task": {"base_parameters": {"day": "mon"}}}
    assert "resolved_values" not in each


# ------------------------------------------------------------------------------------- repair history


def test_repair_history_with_two_repairs_the_second_in_progress() -> None:
    a0 = task_run("list", 20, result=Result.FAILED, termination=BOOM)
    b0 = task_run("child", 22, result=Result.UPSTREAM_FAILED, termination=None)
    a1 = task_run(
        "list", 40, attempt_number=1, original_attempt_run_id=20, result=Result.FAILED, termination=BOOM
    )
    a2 = task_run("list", 50, attempt_number=2, original_attempt_run_id=20, **RUNNING)
    first = RepairEntry("REPAIR", 400, 40_000, 40_900, (40,), LifeCycle.TERMINATED, Result.FAILED)
    second = RepairEntry("REPAIR", 500, 50_000, 0, (50,))
    run = replace(RUN, end_time=0, repair_history=(first, second))
    view = RunView(run, [a0, b0, a1, a2], SPEC, "fan")
    out = render_run(view, base_url=BASE, now_ms=NOW, include_history=True)
    assert out["repair_history"] == [
        {
            "type": "ORIGINAL",
            "start_time": 10_000,
            "end_time": 22_900,
            "state": {
                "life_cycle_state": "TERMINATED",
                "result_state": "FAILED",
                "state_message": "",
                "user_cancelled_or_timedout": False,
            },
            "status": {
                "state": "TERMINATED",
                "termination_details": {"code": "RUN_EXECUTION_ERROR", "type": "CLIENT_ERROR", "message": ""},
            },
            "task_run_ids": [20, 22],
        },
        {
            "type": "REPAIR",
            "id": 400,
            "start_time": 40_000,
            "end_time": 40_900,
            "state": {
                "life_cycle_state": "TERMINATED",
                "result_state": "FAILED",
                "state_message": "",
                "user_cancelled_or_timedout": False,
            },
            "status": {
                "state": "TERMINATED",
                "termination_details": {"code": "RUN_EXECUTION_ERROR", "type": "CLIENT_ERROR", "message": ""},
            },
            "task_run_ids": [40],
        },
        {
            "type": "REPAIR",
            "id": 500,
            "start_time": 50_000,
            "end_time": 0,
            "state": running_state(),
            "status": {"state": "RUNNING"},
            "task_run_ids": [50],
        },
    ]
    # Airflow's get_latest_repair_id reads the last entry's id.
    assert out["repair_history"][-1]["id"] == 500


def test_an_earlier_repair_without_a_recorded_state_gets_its_tasks_result() -> None:
    a1 = task_run("list", 40, attempt_number=1, original_attempt_run_id=20)
    a2 = task_run("list", 50, attempt_number=2, original_attempt_run_id=20)
    run = replace(
        RUN,
        life_cycle=LifeCycle.TERMINATED,
        result=Result.SUCCESS,
        end_time=50_900,
        repair_history=(
            RepairEntry("ORIGINAL", None, 10_000, 20_900, (20,), LifeCycle.TERMINATED, Result.FAILED),
            RepairEntry("REPAIR", 400, 40_000, 40_900, (40,)),
            RepairEntry("REPAIR", 500, 50_000, 0, (50,)),
        ),
    )
    view = RunView(run, [task_run("list", 20, result=Result.FAILED), a1, a2], SPEC, "fan")
    history = render_run(view, base_url=BASE, now_ms=NOW, include_history=True)["repair_history"]
    assert [(h["type"], h.get("id"), h["state"]["result_state"], h["end_time"]) for h in history] == [
        ("ORIGINAL", None, "FAILED", 20_900),
        ("REPAIR", 400, "SUCCESS", 40_900),
        ("REPAIR", 500, "SUCCESS", 50_900),  # the latest takes the run's state and end
    ]


def test_iterations_are_not_in_the_repair_history() -> None:
    history = render_run(VIEW, base_url=BASE, now_ms=NOW, include_history=True)["repair_history"]
    assert history == [
        {
            "type": "ORIGINAL",
            "start_time": 10_000,
            "end_time": 0,
            "state": running_state(),
            "status": {"state": "RUNNING"},
            "task_run_ids": [20, 21, 22],
        }
    ]
