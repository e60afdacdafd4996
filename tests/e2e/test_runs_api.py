"""runs/list, runs/delete, runs/cancel-all and the clients' wire habits against the real service."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from databricks.sdk.service import jobs

from tests.fixtures.server import FloeServer

pytestmark = pytest.mark.timeout(120)

WAIT = timedelta(seconds=60)


@pytest.fixture
def api(floe_server: FloeServer) -> httpx.Client:
    floe_server.script("ok.py", "print('ok')\n")
    floe_server.script("sleep.py", "import time\ntime.sleep(120)\n")
    return httpx.Client(
        base_url=f"{floe_server.url}/api/2.2",
        headers={"Authorization": f"Bearer {floe_server.token}"},
        timeout=30,
    )


def _job(api: httpx.Client, name: str, script: str = "ok.py", **extra: object) -> int:
    body = {
        "name": name,
        "max_concurrent_runs": 10,
        "tasks": [{"task_key": "t", "spark_python_task": {"python_file": script}}],
        **extra,
    }
    response = api.post("/jobs/create", json=body)
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


def _wait_final(api: httpx.Client, run_id: int) -> dict:
    deadline = time.monotonic() + 60
    while True:
        run = api.get("/jobs/runs/get", params={"run_id": run_id}).json()
        if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            return run
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_runs_list_filters_and_pages(api: httpx.Client) -> None:
    job_id = _job(api, "listed")
    other = _job(api, "other")
    finished = [api.post("/jobs/run-now", json={"job_id": job_id}).json()["run_id"] for _ in range(3)]
    for run_id in finished:
        _wait_final(api, run_id)
    api.post("/jobs/run-now", json={"job_id": other})

    seen, token = [], ""
    while True:  # Airflow's habits: an empty page_token first, Python-style booleans
        page = api.get(
            "/jobs/runs/list",
            params={
                "job_id": job_id,
                "limit": 1,
                "page_token": token,
                "expand_tasks": "False",
                "include_user_names": "False",
            },
        ).json()
        seen += [r["run_id"] for r in page.get("runs", [])]
        token = page.get("next_page_token")
        assert token != ""
        if not token:
            break
    assert seen == sorted(finished, reverse=True)  # newest first

    completed = api.get("/jobs/runs/list", params={"job_id": job_id, "completed_only": "true"}).json()
    assert len(completed["runs"]) == 3
    assert "tasks" not in completed["runs"][0]
    active = api.get("/jobs/runs/list", params={"job_id": job_id, "active_only": "True"}).json()
    assert "runs" not in active
    expanded = api.get(
        "/jobs/runs/list", params={"job_id": job_id, "expand_tasks": "true", "limit": 25}
    ).json()
    assert all(r["tasks"][0]["task_key"] == "t" for r in expanded["runs"])

    middle = api.get("/jobs/runs/get", params={"run_id": finished[1]}).json()
    window = api.get(
        "/jobs/runs/list",
        params={
            "job_id": job_id,
            "start_time_from": middle["start_time"],
            "start_time_to": middle["start_time"],
        },
    ).json()
    assert [r["run_id"] for r in window["runs"]] == [finished[1]]

    everything = api.get("/jobs/runs/list", params={"limit": 25}).json()
    assert set(finished) < {r["run_id"] for r in everything["runs"]}
    bad = api.get("/jobs/runs/list", params={"active_only": "true", "completed_only": "true"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_delete_refuses_an_active_run_and_removes_a_finished_one(
    api: httpx.Client, floe_server: FloeServer
) -> None:
    job_id = _job(api, "deleting", "sleep.py")
    run_id = api.post("/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    refused = api.post("/jobs/runs/delete", json={"run_id": run_id})
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "INVALID_STATE"
    api.post("/jobs/runs/cancel", json={"run_id": str(run_id)})  # the legacy CLI sends ids as strings
    assert _wait_final(api, run_id)["state"]["result_state"] == "CANCELED"
    assert api.post("/jobs/runs/delete", json={"run_id": run_id}).json() == {}
    missing = api.get("/jobs/runs/get", params={"run_id": run_id})
    assert missing.status_code == 400
    assert missing.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"Run {run_id} does not exist.",
    }
    assert "runs" not in api.get("/jobs/runs/list", params={"job_id": job_id}).json()


def test_cancel_all_cancels_every_active_run_of_a_job(api: httpx.Client, floe_server: FloeServer) -> None:
    job_id = _job(api, "cancel-all", "sleep.py")
    keep = _job(api, "keep", "ok.py")
    runs = [api.post("/jobs/run-now", json={"job_id": job_id}).json()["run_id"] for _ in range(3)]
    kept = api.post("/jobs/run-now", json={"job_id": keep}).json()["run_id"]
    assert api.post("/jobs/runs/cancel-all", json={"job_id": job_id}).json() == {}
    assert {_wait_final(api, r)["state"]["result_state"] for r in runs} == {"CANCELED"}
    assert _wait_final(api, kept)["state"]["result_state"] == "SUCCESS"
    assert not floe_server.host.floe.executor.supervisor.running()


def test_tasks_that_cannot_run_fail_with_a_clear_message(floe_server: FloeServer) -> None:
    w = floe_server.client()
    job = w.jobs.create(
        name="not-runnable",
        tasks=[
            jobs.Task(task_key="pipeline", pipeline_task=jobs.PipelineTask(pipeline_id="p-1")),
            jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path="/Users/me/nb")),
            jobs.Task(task_key="missing", spark_python_task=jobs.SparkPythonTask(python_file="nowhere.py")),
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    messages = {t.task_key: t.state.state_message for t in run.tasks}
    assert "pipeline_task cannot run on this host; supported: spark_python_task" in messages["pipeline"]
    assert "'/Users/me/nb' does not exist" in messages["nb"]
    assert "nowhere.py" in messages["missing"]


def test_a_library_that_does_not_install_fails_the_task_with_pip_output(floe_server: FloeServer) -> None:
    (floe_server.workspace / "broken-1.0-py3-none-any.whl").write_bytes(b"this is not a zip file")
    floe_server.script("ok.py", "print('never')\n")
    w = floe_server.client()
    job = w.jobs.create(
        name="bad-library",
        tasks=[
            jobs.Task(
                task_key="t",
                spark_python_task=jobs.SparkPythonTask(python_file="ok.py"),
                libraries=[jobs.compute.Library(whl="broken-1.0-py3-none-any.whl")],
            )
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    task = run.tasks[0]
    assert task.state.result_state == jobs.RunResultState.FAILED
    assert task.status.termination_details.code == jobs.TerminationCodeCode.LIBRARY_INSTALLATION_ERROR
    output = w.jobs.get_run_output(task.run_id)
    assert "broken-1.0-py3-none-any.whl" in output.error
    assert output.error_trace  # pip's own words
