"""The official Databricks SDK drives the app, served by uvicorn on loopback, over the fake service.

This pins the wire contract with the real client (paths, shapes, paging loops, the error mapping) without
the engine; the end-to-end suite runs the same SDK against the real service.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service import jobs

from core.api import create_app
from tests.api.fake import TOKEN, USER, FakeFloe

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, FakeFloe]]:
    for name in list(os.environ):
        if name.startswith("DATABRICKS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    floe = FakeFloe()
    config = uvicorn.Config(create_app(floe), host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="floe-api-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", floe
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def python_task(key: str, *deps: str) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        spark_python_task=jobs.SparkPythonTask(python_file=f"{key}.py", parameters=["x"]),
        depends_on=[jobs.TaskDependency(task_key=d) for d in deps],
    )


def test_the_sdk_creates_reads_lists_runs_and_deletes(served: tuple[str, FakeFloe]) -> None:
    url, _ = served
    w = WorkspaceClient(host=url, token=TOKEN)

    created = w.jobs.create(
        name="sdk-job",
        tasks=[python_task("first"), python_task("second", "first")],
        parameters=[jobs.JobParameterDefinition(name="greeting", default="hello")],
    )
    job = w.jobs.get(created.job_id)
    assert job.creator_user_name == USER
    assert job.settings.name == "sdk-job" and job.settings.queue.enabled is True
    assert [t.task_key for t in job.settings.tasks] == ["first", "second"]
    assert [j.job_id for j in w.jobs.list(name="SDK-JOB")] == [created.job_id]
    assert [len(j.settings.tasks) for j in w.jobs.list(expand_tasks=True)] == [2]

    run = w.jobs.run_now(created.job_id, job_parameters={"greeting": "bonjour"}).result(
        timeout=timedelta(seconds=30)
    )
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.status.state == jobs.RunLifecycleStateV2State.TERMINATED
    assert run.run_page_url.endswith(f"#job/{created.job_id}/run/{run.run_id}")
    assert {p.name: p.value for p in run.job_parameters} == {"greeting": "bonjour"}
    assert [t.task_key for t in run.tasks] == ["first", "second"]

    output = w.jobs.get_run_output(run.tasks[0].run_id)
    assert output.logs == "output of first\n" and output.metadata.run_id == run.tasks[0].run_id
    assert (
        output.metadata.state.result_state == jobs.RunResultState.SUCCESS
    )  # (the SDK's Run has no task_key)
    assert [r.run_id for r in w.jobs.list_runs(job_id=created.job_id)] == [run.run_id]
    assert [len(r.tasks) for r in w.jobs.list_runs(expand_tasks=True)] == [2]

    history = w.jobs.get_run(run.run_id, include_history=True).repair_history
    assert [h.type for h in history] == [jobs.RepairHistoryItemType.ORIGINAL]

    submitted = w.jobs.submit(
        run_name="once",
        tasks=[jobs.SubmitTask(task_key="only", notebook_task=jobs.NotebookTask(notebook_path="/nb"))],
    ).result(timeout=timedelta(seconds=30))
    assert submitted.run_type == jobs.RunType.SUBMIT_RUN and submitted.run_name == "once"

    w.jobs.cancel_all_runs(job_id=created.job_id)
    w.jobs.update(
        created.job_id, new_settings=jobs.JobSettings(name="renamed"), fields_to_remove=["parameters"]
    )
    assert w.jobs.get(created.job_id).settings.name == "renamed"
    w.jobs.delete_run(run.run_id)
    w.jobs.delete(created.job_id)
    with pytest.raises(ResourceDoesNotExist, match=f"Job {created.job_id} does not exist"):
        w.jobs.get(created.job_id)
    with pytest.raises(ResourceDoesNotExist, match=f"Run {run.run_id} does not exist"):
        w.jobs.get_run(run.run_id)
    with pytest.raises(InvalidParameterValue, match=r"depends_on\[0\]\.task_key must be the task_key"):
        w.jobs.create(name="bad", tasks=[python_task("a", "ghost")])


def test_the_sdk_reassembles_2_2_pages_of_a_big_job_and_run(served: tuple[str, FakeFloe]) -> None:
    url, _ = served
    w = WorkspaceClient(host=url, token=TOKEN)
    tasks = [python_task(f"t{i:03}") for i in range(230)]
    created = w.jobs.create(name="big", tasks=tasks)

    job = w.jobs.get(created.job_id)  # the SDK follows next_page_token until it is absent
    assert [t.task_key for t in job.settings.tasks] == [t.task_key for t in tasks]

    run = w.jobs.run_now(created.job_id).result(timeout=timedelta(seconds=30))
    assert [t.task_key for t in run.tasks] == [t.task_key for t in tasks]
    assert len(w.jobs.get_run(run.run_id, include_history=True).repair_history) == 1


def test_the_sdk_repairs_and_exports_a_run(served: tuple[str, FakeFloe]) -> None:
    url, floe = served
    w = WorkspaceClient(host=url, token=TOKEN)
    notebook = jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb"))
    created = w.jobs.create(name="repairable", tasks=[notebook, python_task("after", "nb")])
    run = w.jobs.run_now(created.job_id).result(timeout=timedelta(seconds=30))

    waiter = w.jobs.repair_run(run_id=run.run_id, rerun_tasks=["nb"], rerun_dependent_tasks=True)
    first = waiter.response.repair_id
    assert isinstance(first, int) and waiter.run_id == run.run_id
    repaired = waiter.result(timeout=timedelta(seconds=30))  # the waiter polls the original run id
    assert repaired.run_id == run.run_id
    assert repaired.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    second = w.jobs.repair_run(run_id=run.run_id, rerun_tasks=["after"], latest_repair_id=first).response
    assert floe.last("repair_run")["request"].latest_repair_id == first

    history = w.jobs.get_run(run.run_id, include_history=True).repair_history
    assert [(h.type, h.id) for h in history] == [
        (jobs.RepairHistoryItemType.ORIGINAL, None),
        (jobs.RepairHistoryItemType.REPAIR, first),
        (jobs.RepairHistoryItemType.REPAIR, second.repair_id),
    ]
    assert history[1].state.result_state == jobs.RunResultState.SUCCESS
    with pytest.raises(InvalidParameterValue, match="rerun_tasks cannot be combined"):
        w.jobs.repair_run(run_id=run.run_id, rerun_tasks=["nb"], rerun_all_failed_tasks=True)

    assert w.jobs.get_run_output(run.tasks[0].run_id).notebook_output == jobs.NotebookOutput(
        result="exit of nb", truncated=False
    )
    exported = w.jobs.export_run(run.tasks[0].run_id)
    assert [(v.name, v.type, v.content) for v in exported.views] == [
        ("nb", jobs.ViewType.NOTEBOOK, "<html>/Shared/nb</html>")
    ]
    assert floe.last("export_run")["views"] == "CODE"
    assert w.jobs.export_run(run.tasks[0].run_id, views_to_export=jobs.ViewsToExport.DASHBOARDS).views == []
    assert floe.last("export_run")["views"] == "DASHBOARDS"


def test_the_sdk_merges_the_iteration_pages_of_a_for_each_task_run(served: tuple[str, FakeFloe]) -> None:
    url, floe = served
    w = WorkspaceClient(host=url, token=TOKEN)
    floe.add_for_each_run(230, run_id=10)

    job_run = w.jobs.get_run(10)
    assert [t.task_key for t in job_run.tasks] == ["each"]
    stats = job_run.tasks[0].for_each_task.stats.task_run_stats
    assert (stats.total_iterations, stats.succeeded_iterations, stats.active_iterations) == (230, 230, 0)

    task_run = w.jobs.get_run(11)  # the mixin follows next_page_token and appends `iterations`
    assert task_run.run_id == 11 and task_run.job_run_id == 10
    assert [i.run_id for i in task_run.iterations] == list(range(1000, 1230))
    assert [t.run_id for t in task_run.tasks] == [11]
    assert task_run.iterations[0].state.result_state == jobs.RunResultState.SUCCESS


def test_the_sdk_reads_the_child_run_of_a_run_job_task(served: tuple[str, FakeFloe]) -> None:
    url, floe = served
    w = WorkspaceClient(host=url, token=TOKEN)
    child_job = w.jobs.create(name="child", tasks=[python_task("c")])
    parent = w.jobs.create(
        name="parent",
        tasks=[jobs.Task(task_key="call", run_job_task=jobs.RunJobTask(job_id=child_job.job_id))],
    )
    run = w.jobs.run_now(parent.job_id).result(timeout=timedelta(seconds=30))
    assert run.tasks[0].run_job_task.job_id == child_job.job_id
    output = w.jobs.get_run_output(run.tasks[0].run_id)
    assert output.run_job_output.run_id == floe.runs[run.run_id].tasks[0].child_run_id
