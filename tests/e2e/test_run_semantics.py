"""Lakeflow run semantics end to end through the Databricks SDK: conditions, retries and repair,
for-each, run-job, max_concurrent_runs with and without queueing, notebooks and task values."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import jobs

from tests.fixtures.server import FloeServer

pytestmark = pytest.mark.timeout(180)

WAIT = timedelta(seconds=90)
R = jobs.RunResultState


def py(key: str, path: str, *params: str, depends_on: tuple[str, ...] = (), **extra: object) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        spark_python_task=jobs.SparkPythonTask(python_file=path, parameters=list(params)),
        depends_on=[jobs.TaskDependency(task_key=d) for d in depends_on],
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def server(floe_server: FloeServer) -> FloeServer:
    floe_server.script("echo.py", "import sys\nprint(*sys.argv[1:])\n")
    floe_server.script(
        "flaky.py",
        """
        import os, sys
        if not os.path.exists(sys.argv[1]):
            raise RuntimeError("marker missing")
        print("marker found")
        """,
    )
    floe_server.script(
        "record.py",
        """
        import json, sys, time
        start = time.time()
        time.sleep(0.4)
        with open(sys.argv[1], "a") as f:
            f.write(json.dumps({"input": sys.argv[2], "start": start, "end": time.time()}) + "\\n")
        """,
    )
    floe_server.script("sleep.py", "import time\ntime.sleep(float(__import__('sys').argv[1]))\n")
    return floe_server


def results(run: jobs.Run) -> dict[str, jobs.RunResultState]:
    return {t.task_key: t.state.result_state for t in run.tasks}


@pytest.mark.parametrize(
    ("flag", "taken", "excluded"), [("yes", "when_true", "when_false"), ("no", "when_false", "when_true")]
)
def test_a_condition_branches_both_ways(server: FloeServer, flag: str, taken: str, excluded: str) -> None:
    w = server.client()
    job = w.jobs.create(
        name="branch",
        parameters=[jobs.JobParameterDefinition(name="flag", default="no")],
        tasks=[
            jobs.Task(
                task_key="check",
                condition_task=jobs.ConditionTask(
                    op=jobs.ConditionTaskOp.EQUAL_TO, left="{{job.parameters.flag}}", right="yes"
                ),
            ),
            jobs.Task(
                task_key="when_true",
                depends_on=[jobs.TaskDependency("check", outcome="true")],
                spark_python_task=jobs.SparkPythonTask("echo.py", parameters=["true branch"]),
            ),
            jobs.Task(
                task_key="when_false",
                depends_on=[jobs.TaskDependency("check", outcome="false")],
                spark_python_task=jobs.SparkPythonTask("echo.py", parameters=["false branch"]),
            ),
        ],
    )
    run = w.jobs.run_now(job.job_id, job_parameters={"flag": flag}).result(timeout=WAIT)
    assert run.state.result_state == R.SUCCESS
    assert results(run) == {"check": R.SUCCESS, taken: R.SUCCESS, excluded: R.EXCLUDED}


def test_retry_then_fail_then_repair_to_success(server: FloeServer, tmp_path: Path) -> None:
    w = server.client()
    marker = tmp_path / "marker"
    job = w.jobs.create(
        name="repairable",
        tasks=[
            py("prepare", "echo.py", "prepared"),
            py(
                "flaky",
                "flaky.py",
                str(marker),
                depends_on=("prepare",),
                max_retries=1,
                min_retry_interval_millis=0,
            ),
            py("report", "echo.py", "report", depends_on=("flaky",)),
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert run.state.result_state == R.FAILED
    attempts = sorted((t.attempt_number, t.state.result_state) for t in run.tasks if t.task_key == "flaky")
    assert attempts == [(0, R.FAILED), (1, R.FAILED)]
    assert results(run)["report"] == R.UPSTREAM_FAILED
    failed = next(t for t in run.tasks if t.task_key == "flaky" and t.attempt_number == 1)
    assert w.jobs.get_run_output(failed.run_id).error == "RuntimeError: marker missing"

    marker.write_text("ok")
    repaired = w.jobs.repair_run(run.run_id, rerun_all_failed_tasks=True, rerun_dependent_tasks=True).result(
        timeout=WAIT
    )
    assert repaired.run_id == run.run_id
    assert repaired.state.result_state == R.SUCCESS
    latest = {}
    for t in repaired.tasks:
        if t.task_key not in latest or t.run_id > latest[t.task_key].run_id:
            latest[t.task_key] = t
    assert {k: t.state.result_state for k, t in latest.items()} == {
        k: R.SUCCESS for k in ("prepare", "flaky", "report")
    }
    prepare_ids = {t.run_id for t in repaired.tasks if t.task_key == "prepare"}
    assert len(prepare_ids) == 1  # not re-run
    history = w.jobs.get_run(run.run_id, include_history=True).repair_history
    assert [h.type for h in history] == [
        jobs.RepairHistoryItemType.ORIGINAL,
        jobs.RepairHistoryItemType.REPAIR,
    ]
    assert w.jobs.get_run_output(latest["report"].run_id).logs.strip() == "report"


def test_for_each_over_three_inputs_with_concurrency_two(server: FloeServer, tmp_path: Path) -> None:
    w = server.client()
    log = tmp_path / "iterations.jsonl"
    job = w.jobs.create(
        name="each",
        tasks=[
            jobs.Task(
                task_key="each",
                for_each_task=jobs.ForEachTask(
                    inputs='["a", "b", "c"]',
                    concurrency=2,
                    task=jobs.Task(
                        task_key="each_item",
                        spark_python_task=jobs.SparkPythonTask(
                            "record.py", parameters=[str(log), "{{input}}"]
                        ),
                    ),
                ),
            ),
            py("after", "echo.py", "done", depends_on=("each",)),
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert run.state.result_state == R.SUCCESS
    assert results(run) == {"each": R.SUCCESS, "after": R.SUCCESS}
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(r["input"] for r in records) == ["a", "b", "c"]
    for r in records:  # never more than two at once: at each start, count who runs
        running = [o for o in records if o["start"] <= r["start"] < o["end"]]
        assert len(running) <= 2, records
    each = next(t for t in run.tasks if t.task_key == "each")
    stats = each.for_each_task.stats.task_run_stats
    assert (stats.total_iterations, stats.succeeded_iterations) == (3, 3)
    detail = w.jobs.get_run(each.run_id)
    assert [i.state.result_state for i in detail.iterations] == [R.SUCCESS] * 3


def test_run_job_starts_another_job_and_mirrors_its_result(server: FloeServer) -> None:
    w = server.client()
    child = w.jobs.create(
        name="child",
        parameters=[jobs.JobParameterDefinition(name="who", default="nobody")],
        tasks=[py("hello", "echo.py", "hello", "{{job.parameters.who}}")],
    )
    parent = w.jobs.create(
        name="parent",
        tasks=[
            jobs.Task(
                task_key="call",
                run_job_task=jobs.RunJobTask(job_id=child.job_id, job_parameters={"who": "parent"}),
            ),
        ],
    )
    run = w.jobs.run_now(parent.job_id).result(timeout=WAIT)
    assert run.state.result_state == R.SUCCESS
    call = run.tasks[0]
    output = w.jobs.get_run_output(call.run_id)
    child_run = w.jobs.get_run(output.run_job_output.run_id)
    assert child_run.job_id == child.job_id
    assert child_run.trigger == jobs.TriggerType.RUN_JOB_TASK
    assert w.jobs.get_run_output(child_run.tasks[0].run_id).logs.strip() == "hello parent"

    with pytest.raises(InvalidParameterValue, match=r"would start a cycle of jobs: \d+ -> \d+ -> \d+"):
        w.jobs.update(
            child.job_id,
            new_settings=jobs.JobSettings(
                tasks=[jobs.Task(task_key="back", run_job_task=jobs.RunJobTask(job_id=parent.job_id))]
            ),
        )


@pytest.mark.parametrize("queue", [False, True])
def test_max_concurrent_runs_skips_or_queues(server: FloeServer, queue: bool) -> None:
    w = server.client()
    job = w.jobs.create(
        name=f"one-at-a-time-{queue}",
        max_concurrent_runs=1,
        queue=jobs.QueueSettings(enabled=queue),
        tasks=[py("slow", "sleep.py", "1.5")],
    )
    first = w.jobs.run_now(job.job_id)
    second = w.jobs.run_now(job.job_id)
    if not queue:
        skipped = second.result(timeout=WAIT)
        assert skipped.state.life_cycle_state == jobs.RunLifeCycleState.SKIPPED
        assert first.result(timeout=WAIT).state.result_state == R.SUCCESS
        return
    waiting = w.jobs.get_run(second.run_id)
    assert waiting.state.life_cycle_state == jobs.RunLifeCycleState.QUEUED
    assert waiting.status.queue_details.code == jobs.QueueDetailsCodeCode.MAX_CONCURRENT_RUNS_REACHED
    done_first = first.result(timeout=WAIT)
    done_second = second.result(timeout=WAIT)
    assert done_second.state.result_state == R.SUCCESS
    # start_time is when the run was triggered; its task waited for the first run to end
    assert done_second.tasks[0].start_time >= done_first.end_time - 5
    assert done_second.queue_duration > 0


NOTEBOOK = """# Databricks notebook source
# MAGIC %md
# MAGIC # Rows of the day

# COMMAND ----------

name = dbutils.widgets.get("name")
rows = 40 + len(name)
print(f"counted {rows} rows for {name}")

# COMMAND ----------

dbutils.jobs.taskValues.set("rows", rows)
dbutils.notebook.exit(f"{rows} rows")

# COMMAND ----------

raise AssertionError("cells after exit must not run")
"""

READER = """
import sys
print("param", sys.argv[1], "value", dbutils.jobs.taskValues.get("nb", "rows"))
"""


def test_a_notebook_passes_a_task_value_and_an_exit_value(server: FloeServer) -> None:
    server.script("notebooks/rows.py", NOTEBOOK)
    server.script("reader.py", READER)
    w = server.client()
    job = w.jobs.create(
        name="nb",
        tasks=[
            jobs.Task(
                task_key="nb",
                notebook_task=jobs.NotebookTask(
                    notebook_path="notebooks/rows", base_parameters={"name": "ab"}
                ),
            ),
            py("reader", "reader.py", "{{tasks.nb.values.rows}}", depends_on=("nb",)),
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert run.state.result_state == R.SUCCESS, [t.state.state_message for t in run.tasks]
    by_key = {t.task_key: t for t in run.tasks}
    notebook = w.jobs.get_run_output(by_key["nb"].run_id)
    assert notebook.notebook_output.result == "42 rows"
    assert w.jobs.get_run_output(by_key["reader"].run_id).logs.strip() == "param 42 value 42"
    exported = w.jobs.export_run(by_key["nb"].run_id)
    html = exported.views[0].content
    assert "counted 42 rows for ab" in html
    assert "Rows of the day" in html


def test_a_failing_notebook_cell_fails_the_task_with_its_error(server: FloeServer) -> None:
    server.script(
        "notebooks/broken.py",
        "# Databricks notebook source\nprint('first cell')\n\n"
        "# COMMAND ----------\n\nraise ValueError('bad cell')\n",
    )
    w = server.client()
    job = w.jobs.create(
        name="broken-nb",
        tasks=[jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path="notebooks/broken"))],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert run.state.result_state == R.FAILED
    output = w.jobs.get_run_output(run.tasks[0].run_id)
    assert output.error == "ValueError: bad cell"
    assert "bad cell" in output.error_trace
    assert "ValueError" in w.jobs.export_run(run.tasks[0].run_id).views[0].content


def test_cancelling_a_queued_run_ends_it_at_once(server: FloeServer) -> None:
    w = server.client()
    job = w.jobs.create(
        name="queued-cancel",
        max_concurrent_runs=1,
        queue=jobs.QueueSettings(enabled=True),
        tasks=[py("slow", "sleep.py", "30")],
    )
    first = w.jobs.run_now(job.job_id)
    second = w.jobs.run_now(job.job_id)
    started = time.monotonic()
    assert w.jobs.cancel_run(second.run_id).result(timeout=WAIT).state.result_state == R.CANCELED
    assert w.jobs.cancel_run(first.run_id).result(timeout=WAIT).state.result_state == R.CANCELED
    assert time.monotonic() - started < 15


def test_a_task_timeout_kills_the_process_and_retries_on_timeout(server: FloeServer) -> None:
    w = server.client()
    job = w.jobs.create(
        name="timeouts",
        tasks=[
            py(
                "slow",
                "sleep.py",
                "30",
                timeout_seconds=1,
                max_retries=1,
                retry_on_timeout=True,
                min_retry_interval_millis=0,
            ),
            py("after", "echo.py", "never", depends_on=("slow",)),
        ],
    )
    started = time.monotonic()
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert time.monotonic() - started < 20
    assert run.state.result_state == R.FAILED  # the run's result comes from its leaf, UPSTREAM_FAILED
    assert "timed out" in run.state.state_message
    attempts = sorted((t.attempt_number, t.state.result_state) for t in run.tasks if t.task_key == "slow")
    assert attempts == [(0, R.TIMEDOUT), (1, R.TIMEDOUT)]
    assert results(run)["after"] == R.UPSTREAM_FAILED
    assert not server.host.floe.executor.supervisor.running()


def test_a_job_timeout_ends_the_whole_run(server: FloeServer) -> None:
    w = server.client()
    job = w.jobs.create(name="job-timeout", timeout_seconds=1, tasks=[py("slow", "sleep.py", "30")])
    started = time.monotonic()
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert time.monotonic() - started < 20
    assert run.state.result_state == R.TIMEDOUT
    assert run.state.user_cancelled_or_timedout
    assert not server.host.floe.executor.supervisor.running()


def test_cancelling_one_task_run_lets_the_others_finish(server: FloeServer) -> None:
    w = server.client()
    job = w.jobs.create(
        name="cancel-one",
        tasks=[
            py("slow", "sleep.py", "30"),
            py("quick", "sleep.py", "1"),
            py("cleanup", "echo.py", "cleanup", depends_on=("slow",), run_if=jobs.RunIf.ALL_DONE),
        ],
    )
    waiter = w.jobs.run_now(job.job_id)
    deadline = time.monotonic() + 30
    while True:
        slow = next(t for t in w.jobs.get_run(waiter.run_id).tasks if t.task_key == "slow")
        if slow.state.life_cycle_state == jobs.RunLifeCycleState.RUNNING:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    w.jobs.cancel_run(slow.run_id)
    run = waiter.result(timeout=WAIT)
    assert results(run) == {"slow": R.CANCELED, "quick": R.SUCCESS, "cleanup": R.SUCCESS}
