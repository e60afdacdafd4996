"""Every trigger kind against a real `floe serve` on the embedded default: the run starts by itself, runs its
task process and sees its trigger. Periodic triggers (at least a minute apart) are covered with a fake clock
in `test_triggers.py`; webhooks in `test_webhook_trigger.py`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.server import FloeServer

pytestmark = pytest.mark.timeout(120)

REPORT = """
import json, sys
from pathlib import Path
Path(sys.argv[1]).write_text(json.dumps(sys.argv[2:]))
"""


@pytest.fixture
def api(floe_server: FloeServer) -> httpx.Client:
    floe_server.script("report.py", REPORT)
    return httpx.Client(
        base_url=f"{floe_server.url}/api/2.2",
        headers={"Authorization": f"Bearer {floe_server.token}"},
        timeout=30,
    )


def _job(api: httpx.Client, name: str, out: Path, **extra: Any) -> int:
    parameters = [
        str(out),
        "{{job.trigger.type}}",
        "{{job.trigger.file_arrival.location}}",
        "{{job.trigger.table_update.updated_tables}}",
    ]
    body = {
        "name": name,
        "tasks": [
            {"task_key": "t", "spark_python_task": {"python_file": "report.py", "parameters": parameters}}
        ],
        **extra,
    }
    response = api.post("/jobs/create", json=body)
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


def _runs(api: httpx.Client, job_id: int) -> list[dict[str, Any]]:
    return api.get("/jobs/runs/list", params={"job_id": job_id}).json().get("runs", [])


def _until(check: Callable[[], Any], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _finished(api: httpx.Client, job_id: int, count: int = 1) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        runs = _runs(api, job_id)
        final = [r for r in runs if r["state"]["life_cycle_state"] == "TERMINATED"]
        return final if len(final) >= count else None

    return _until(done)


def test_a_cron_schedule_starts_runs(api: httpx.Client, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    schedule = {"quartz_cron_expression": "0/10 * * * * ?", "timezone_id": "Europe/Paris"}
    job_id = _job(api, "cron", out, schedule=schedule)
    state = api.get("/jobs/get", params={"job_id": job_id, "include_trigger_state": "true"}).json()
    next_fire = state["trigger_state"]["schedule"]["next_fire_time"]
    assert next_fire % 10_000 == 0
    [run] = _finished(api, job_id)
    assert run["trigger"] == "PERIODIC"
    assert run["schedule"] == schedule
    assert run["state"]["result_state"] == "SUCCESS"
    assert json.loads(out.read_text())[0] == "PERIODIC"
    api.post(
        "/jobs/update",
        json={"job_id": job_id, "new_settings": {"schedule": {**schedule, "pause_status": "PAUSED"}}},
    )


def test_a_file_dropped_in_a_watched_folder_starts_a_run(api: httpx.Client, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    out = tmp_path / "out.json"
    url = landing.as_uri() + "/"
    trigger = {"file_arrival": {"url": url, "wait_after_last_change_seconds": 2}}
    job_id = _job(api, "files", out, trigger=trigger)
    _until(
        lambda: (
            api.get("/jobs/get", params={"job_id": job_id, "include_trigger_state": "true"})
            .json()["trigger_state"]
            .get("file_arrival", {})
            .get("last_listing_time")
        )
    )
    dropped = time.monotonic()
    (landing / "orders.csv").write_text("id,amount\n1,10\n")
    [run] = _finished(api, job_id)
    assert time.monotonic() - dropped >= 2  # after the debounce
    assert run["trigger"] == "FILE_ARRIVAL"
    assert json.loads(out.read_text()) == ["FILE_ARRIVAL", url, "[]"]
    state = api.get("/jobs/get", params={"job_id": job_id, "include_trigger_state": "true"}).json()
    assert state["trigger_state"]["file_arrival"]["pending_files"] == 0
    assert state["trigger_state"]["fire_count"] == 1


def test_a_new_delta_version_starts_a_run(api: httpx.Client, tmp_path: Path) -> None:
    table = tmp_path / "sales"
    log = table / "_delta_log"
    log.mkdir(parents=True)
    (log / f"{0:020d}.json").write_text("{}")
    out = tmp_path / "out.json"
    job_id = _job(api, "table", out, trigger={"table_update": {"table_names": [str(table)]}})
    _until(
        lambda: (
            api.get("/jobs/get", params={"job_id": job_id, "include_trigger_state": "true"})
            .json()["trigger_state"]
            .get("table", {})
            .get("last_seen_table_states")
        )
    )
    (log / f"{1:020d}.json").write_text("{}")
    [run] = _finished(api, job_id)
    assert run["trigger"] == "TABLE"
    assert json.loads(out.read_text()) == ["TABLE", "", json.dumps([str(table)], separators=(",", ":"))]


def test_a_continuous_job_restarts_when_its_run_ends(api: httpx.Client, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    job_id = _job(api, "continuous", out, continuous={"pause_status": "UNPAUSED"})
    runs = _finished(api, job_id, count=2)
    assert {r["trigger"] for r in runs} == {"CONTINUOUS"}
    api.post(
        "/jobs/update", json={"job_id": job_id, "new_settings": {"continuous": {"pause_status": "PAUSED"}}}
    )
    state = api.get("/jobs/get", params={"job_id": job_id, "include_trigger_state": "true"}).json()
    assert state["trigger_state"]["continuous"]["pause_status"] == "PAUSED"
    assert "next_check_time" not in state["trigger_state"]["continuous"]  # nothing will start


def test_an_upstream_success_starts_the_downstream_job(api: httpx.Client, tmp_path: Path) -> None:
    upstream = _job(api, "upstream", tmp_path / "up.json")
    trigger = {"job_completion": {"jobs": [{"job_id": str(upstream)}], "if_status": "SUCCESS"}}
    downstream = _job(api, "downstream", tmp_path / "down.json", trigger=trigger)
    run_id = api.post("/jobs/run-now", json={"job_id": upstream}).json()["run_id"]
    [run] = _finished(api, downstream)
    assert run["trigger"] == "JOB_COMPLETION"
    assert run["trigger_info"]["job_completion"]["completed_jobs"][0]["run_id"] == str(run_id)
