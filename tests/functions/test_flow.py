"""Whole jobs through the functions against Azurite: an HTTP run-now, the queue functions (driven by the
host stand-in), task processes on a runner (`floe runner`, which receives from floe-tasks), and runs/get
over HTTP; a run that outlives the instance that started it; a kill reaching a task process through its
runner's queue; a timer invocation starting a scheduled run; an Event Grid event starting a file-arrival
run."""

from __future__ import annotations

import json
import os
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest
from azure.storage.blob import ContainerClient

from core.clock import FakeClock
from core.handlers import Floe
from core.runtime.host import storage_from
from core.runtime.runner import RunnerHost
from core.store.azure._common import API_VERSION
from functions import root
from tests.functions.conftest import Api, FunctionsEnv, QueueHost

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]

START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)

WRITER = """
import os, sys
with open(sys.argv[1], "w") as out:
    out.write("written by " + os.environ["FLOE_TASK_KEY"])
"""


def _script(env: FunctionsEnv, name: str, code: str) -> str:
    (env.workspace / name).write_text(textwrap.dedent(code))
    return name


def _python_task(key: str, script: str, *args: str, **extra: Any) -> dict[str, Any]:
    return {"task_key": key, "spark_python_task": {"python_file": script, "parameters": list(args)}, **extra}


def _ended(api: Api, run_id: int) -> dict[str, Any] | None:
    run = api.get("/api/2.2/jobs/runs/get", run_id=run_id)
    return run if run["state"]["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED") else None


def _runs(api: Api, job_id: int) -> list[dict[str, Any]]:
    return api.get("/api/2.2/jobs/runs/list", job_id=job_id).get("runs", [])


def test_a_job_runs_through_the_functions_and_a_runner(
    app_settings: FunctionsEnv, api: Api, queue_host: QueueHost, runner: RunnerHost
) -> None:
    script = _script(app_settings, "write.py", WRITER)
    first, second = app_settings.workspace / "first.txt", app_settings.workspace / "second.txt"
    job = api.post(
        "/api/2.2/jobs/create",
        {
            "name": "through-functions",
            "tasks": [
                _python_task("first", script, str(first)),
                _python_task("second", script, str(second), depends_on=[{"task_key": "first"}]),
            ],
        },
    )
    run_id = api.post("/api/2.2/jobs/run-now", {"job_id": job["job_id"]})["run_id"]
    run = queue_host.run_until(lambda: _ended(api, run_id), timeout=60, what=f"run {run_id} to end")
    assert run["state"]["result_state"] == "SUCCESS", run["state"]
    assert run["status"]["state"] == "TERMINATED"
    assert {t["task_key"]: t["state"]["result_state"] for t in run["tasks"]} == {
        "first": "SUCCESS",
        "second": "SUCCESS",
    }
    assert first.read_text() == "written by first" and second.read_text() == "written by second"
    # The app ran no task: the runner claimed both attempts, and the app polled them.
    tasks = root.floe().get_run(run_id).tasks
    assert {t.lease_owner for t in tasks} == {runner.floe.host_id} != {root.floe().host_id}

    def polled() -> bool:
        bodies = [json.loads(m.get_body()) for _, m in queue_host.delivered]
        return any(b["kind"] == "run.poll" and b["run_id"] == run_id for b in bodies)

    queue_host.run_until(polled, what="a poll of the run")
    assert {name for name, _ in queue_host.delivered} == {"work"}
    assert "task.start" not in {json.loads(m.get_body())["kind"] for _, m in queue_host.delivered}
    assert not queue_host.failures


def test_a_run_outlives_the_instance_that_started_it(
    app_settings: FunctionsEnv, api: Api, queue_host: QueueHost, runner: RunnerHost
) -> None:
    """The platform scales the instance in while the task runs: nothing of the task was on it."""
    code = "import time\nprint('napping', flush=True)\ntime.sleep(8)\nprint('woke up')\n"
    script = _script(app_settings, "nap.py", code)
    job = api.post("/api/2.2/jobs/create", {"name": "napper", "tasks": [_python_task("nap", script)]})
    run_id = api.post("/api/2.2/jobs/run-now", {"job_id": job["job_id"]})["run_id"]

    def running() -> bool:
        run = api.get("/api/2.2/jobs/runs/get", run_id=run_id)
        return run["tasks"][0]["state"]["life_cycle_state"] == "RUNNING"

    queue_host.run_until(running, what="the task to run on the runner")
    task_run_id = api.get("/api/2.2/jobs/runs/get", run_id=run_id)["tasks"][0]["run_id"]

    def logs() -> str:
        return api.get("/api/2.2/jobs/runs/get-output", run_id=task_run_id).get("logs", "")

    # The log is on the runner's disk; the runner ships what a running task printed every few seconds.
    queue_host.run_until(lambda: "napping" in logs(), what="the running task's output to show")
    started_on = root.floe().host_id
    root.reset()  # the instance is gone; the next invocation builds a new one
    run = queue_host.run_until(lambda: _ended(api, run_id), what="the run to end")
    assert run["state"]["result_state"] == "SUCCESS", run["state"]
    assert root.floe().host_id != started_on
    queue_host.run_until(lambda: "woke up" in logs(), what="the whole output to show")


def test_a_kill_reaches_the_task_process_through_its_runners_queue(
    app_settings: FunctionsEnv, api: Api, queue_host: QueueHost, runner: RunnerHost
) -> None:
    """The run is cancelled from another instance (here: a second `Floe` on the same storage): the kill
    goes to the queue of the runner whose process runs the task, and the runner kills it."""
    script = _script(app_settings, "sleep.py", "import time\ntime.sleep(120)\n")
    job = api.post("/api/2.2/jobs/create", {"name": "sleeper", "tasks": [_python_task("nap", script)]})
    run_id = api.post("/api/2.2/jobs/run-now", {"job_id": job["job_id"]})["run_id"]

    def running() -> bool:
        run = api.get("/api/2.2/jobs/runs/get", run_id=run_id)
        return run["tasks"][0]["state"]["life_cycle_state"] == "RUNNING"

    queue_host.run_until(running, what="the task process to start")
    settings = root.settings_from(os.environ)
    other = Floe(settings, storage_from(settings), host_id="another-instance", run_tasks=False)
    try:
        other.cancel_run(run_id)
    finally:
        other.close()
    run = queue_host.run_until(lambda: _ended(api, run_id), what="the cancelled run to end")
    assert run["state"]["result_state"] == "CANCELED", run["state"]
    assert root.floe().get_run(run_id).tasks[0].lease_owner == runner.floe.host_id


def test_a_timer_invocation_starts_a_due_scheduled_run(
    app_settings: FunctionsEnv, indexed: dict[str, Any], api: Api, use_clock: Any, caplog: Any
) -> None:
    clock = FakeClock(START)
    use_clock(clock)
    tick = indexed["tick"].get_user_function()
    schedule = {"quartz_cron_expression": "0 * * * * ?", "timezone_id": "UTC"}
    job_id = api.post(
        "/api/2.2/jobs/create",
        {"name": "every-minute", "schedule": schedule, "tasks": [_python_task("t", "x.py")]},
    )["job_id"]
    tick(TimerRequest(past_due=True))
    assert _runs(api, job_id) == []  # 09:00:30: the first fire is 09:01:00
    assert "the tick is past due" in caplog.text
    clock.set(START + timedelta(seconds=31))
    tick(TimerRequest(past_due=False))
    tick(TimerRequest(past_due=False))  # the same fire again: no second run
    [run] = _runs(api, job_id)
    assert run["trigger"] == "PERIODIC"


def test_an_event_grid_blob_created_starts_a_file_arrival_run(
    app_settings: FunctionsEnv, indexed: dict[str, Any], api: Api, use_clock: Any
) -> None:
    clock = FakeClock(START)
    use_clock(clock)
    tick = indexed["tick"].get_user_function()
    blob_created = indexed["blob_created"].get_user_function()
    container = f"{app_settings.prefix}landing"
    folder = f"{app_settings.blob_endpoint()}/{container}/in/"
    with ContainerClient.from_connection_string(
        app_settings.connection, container, api_version=API_VERSION
    ) as landing:
        landing.create_container()
        job_id = api.post(
            "/api/2.2/jobs/create",
            {
                "name": "on-arrival",
                "trigger": {"file_arrival": {"url": folder}},
                "tasks": [_python_task("t", "x.py")],
            },
        )["job_id"]
        tick(TimerRequest(past_due=False))  # the trigger's first listing: the baseline
        landing.upload_blob("in/new.csv", b"a,b\n")
        event = func.EventGridEvent(
            id="evt-1",
            data={"api": "PutBlob", "url": f"{folder}new.csv", "contentLength": 4, "blobType": "BlockBlob"},
            topic="/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
            subject=f"/blobServices/default/containers/{container}/blobs/in/new.csv",
            event_type="Microsoft.Storage.BlobCreated",
            event_time=clock.now(),
            data_version="",
        )
        blob_created(event)
        blob_created(event)  # Event Grid delivers at least once
        assert _runs(api, job_id) == []  # the run starts at the next tick
        clock.advance(1)  # far from the next listing (60 s): only the event can start the run
        tick(TimerRequest(past_due=False))
        [run] = _runs(api, job_id)
    assert run["trigger"] == "FILE_ARRIVAL"
