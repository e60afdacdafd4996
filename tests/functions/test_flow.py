"""Whole jobs through the functions alone, against Azurite: an HTTP run-now, the queue functions (driven
by the host stand-in), task processes, and runs/get over HTTP; a kill reaching a task process through its
instance's queue; a timer invocation starting a scheduled run; an Event Grid event starting a
file-arrival run."""

from __future__ import annotations

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


def test_a_job_runs_through_the_functions_alone(
    app_settings: FunctionsEnv, api: Api, queue_host: QueueHost
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
    assert {name for name, _ in queue_host.delivered} == {"work"}
    assert not queue_host.failures


def test_a_kill_reaches_the_task_process_through_its_instances_queue(
    app_settings: FunctionsEnv, api: Api, queue_host: QueueHost
) -> None:
    """The run is cancelled from another instance (here: a second `Floe` on the same storage): the kill
    goes to the queue of the instance whose process runs the task, and its instance loop kills it."""
    script = _script(app_settings, "sleep.py", "import time\ntime.sleep(120)\n")
    job = api.post("/api/2.2/jobs/create", {"name": "sleeper", "tasks": [_python_task("nap", script)]})
    run_id = api.post("/api/2.2/jobs/run-now", {"job_id": job["job_id"]})["run_id"]

    def running() -> bool:
        run = api.get("/api/2.2/jobs/runs/get", run_id=run_id)
        return run["tasks"][0]["state"]["life_cycle_state"] == "RUNNING"

    queue_host.run_until(running, what="the task process to start")
    mine = root.floe()
    settings = root.settings_from(os.environ)
    other = Floe(settings, storage_from(settings), host_id="another-instance", run_tasks=False)
    try:
        other.cancel_run(run_id)
    finally:
        other.close()
    run = queue_host.run_until(lambda: _ended(api, run_id), what="the cancelled run to end")
    assert run["state"]["result_state"] == "CANCELED", run["state"]
    assert mine.get_run(run_id).tasks[0].lease_owner == mine.host_id != "another-instance"


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
