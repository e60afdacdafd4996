"""runs/repair, runs/export, and runs/get of a task run id: what the endpoints pass to the service and
what they answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.engine.states import LifeCycle
from core.model import RepairRequest
from tests.api.fake import USER, FakeFloe


def notebook(key: str, *deps: str) -> dict[str, Any]:
    task: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": f"/Shared/{key}"}}
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


def finished_run(client: TestClient, *tasks: dict[str, Any]) -> dict[str, Any]:
    created = client.post("/api/2.2/jobs/create", json={"name": "etl", "tasks": list(tasks)})
    run_id = client.post("/api/2.2/jobs/run-now", json={"job_id": created.json()["job_id"]}).json()["run_id"]
    return client.get(f"/api/2.2/jobs/runs/get?run_id={run_id}").json()


# ---------------------------------------------------------------------------------------------- repair


@pytest.mark.parametrize("version", ["2.0", "2.1", "2.2"])
def test_repair_passes_the_validated_request_and_answers_the_repair_id(
    client: TestClient, floe: FakeFloe, version: str
) -> None:
    run = finished_run(client, notebook("a"), notebook("b", "a"))
    body = {
        "run_id": str(run["run_id"]),
        "rerun_tasks": ["a"],
        "rerun_dependent_tasks": True,
        "notebook_params": {"day": 1},
        "performance_target": "STANDARD",
    }
    response = client.post(f"/api/{version}/jobs/runs/repair", json=body)
    assert response.status_code == 200, response.text
    repair_id = response.json()["repair_id"]
    assert response.json() == {"repair_id": repair_id}
    call = floe.last("repair_run")
    assert call == {
        "request": RepairRequest(
            run_id=run["run_id"],
            rerun_tasks=("a",),
            rerun_dependent_tasks=True,
            notebook_params={"day": "1"},
        ),
        "creator": USER,
    }


def test_two_repairs_show_in_the_history_of_the_original_run(client: TestClient) -> None:
    run = finished_run(client, notebook("a"), notebook("b", "a"))
    run_id = run["run_id"]
    first = client.post("/api/2.2/jobs/runs/repair", json={"run_id": run_id, "rerun_tasks": ["b"]}).json()
    again = client.post("/api/2.2/jobs/runs/repair", json={"run_id": run_id, "rerun_all_failed_tasks": True})
    assert again.status_code == 400
    latest = f"latest_repair_id must be {first['repair_id']}, the latest repair of run {run_id}."
    assert again.json()["message"] == latest
    second = client.post(
        "/api/2.2/jobs/runs/repair",
        json={"run_id": run_id, "rerun_tasks": ["a", "b"], "latest_repair_id": first["repair_id"]},
    ).json()

    got = client.get(f"/api/2.2/jobs/runs/get?run_id={run_id}&include_history=true").json()
    history = got["repair_history"]
    assert [(h["type"], h.get("id")) for h in history] == [
        ("ORIGINAL", None),
        ("REPAIR", first["repair_id"]),
        ("REPAIR", second["repair_id"]),
    ]
    assert history[0]["task_run_ids"] == [t["run_id"] for t in run["tasks"]]
    assert all(h["state"]["life_cycle_state"] == "TERMINATED" for h in history)
    ids = {(t["task_key"], t["attempt_number"]): t["run_id"] for t in got["tasks"]}
    assert list(ids) == [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("b", 2)]
    assert history[1]["task_run_ids"] == [ids["b", 1]]
    assert history[2]["task_run_ids"] == [ids["a", 1], ids["b", 2]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rerun_tasks": ["a"]}, "run_id is required."),
        (
            {"run_id": 5},
            "rerun_tasks is required: give rerun_tasks (a non-empty array of task keys) or "
            "rerun_all_failed_tasks: true.",
        ),
        (
            {"run_id": 5, "rerun_tasks": ["a"], "rerun_all_failed_tasks": True},
            "rerun_tasks cannot be combined with rerun_all_failed_tasks: true; give the task keys or ask for "
            "every failed task, not both.",
        ),
        ({"run_id": 5, "rerun_tasks": "a"}, "rerun_tasks must be a JSON array of strings; got 'a'."),
        (
            {"run_id": 5, "rerun_tasks": ["a"], "latest_repair_id": "x"},
            "latest_repair_id must be a positive integer id below 2**63 (a JSON number or a numeric string); "
            "got 'x'.",
        ),
    ],
)
def test_repair_validation_is_400_before_the_service(
    client: TestClient, floe: FakeFloe, body: dict[str, Any], message: str
) -> None:
    response = client.post("/api/2.2/jobs/runs/repair", json=body)
    assert response.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": message}
    assert not [m for m, _ in floe.calls if m == "repair_run"]


def test_repair_errors_from_the_service(client: TestClient, floe: FakeFloe) -> None:
    run = finished_run(client, notebook("a"))
    unknown = client.post("/api/2.2/jobs/runs/repair", json={"run_id": run["run_id"], "rerun_tasks": ["zz"]})
    assert (unknown.status_code, unknown.json()["message"]) == (
        400,
        f"rerun_tasks: run {run['run_id']} has no task 'zz'.",
    )
    missing = client.post("/api/2.2/jobs/runs/repair", json={"run_id": 999, "rerun_tasks": ["a"]})
    assert missing.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": "Run 999 does not exist."}
    view = floe.runs[run["run_id"]]
    floe.runs[run["run_id"]] = replace(view, run=replace(view.run, life_cycle=LifeCycle.RUNNING, result=None))
    active = client.post("/api/2.2/jobs/runs/repair", json={"run_id": run["run_id"], "rerun_tasks": ["a"]})
    assert active.status_code == 400 and active.json()["error_code"] == "INVALID_STATE"


# ---------------------------------------------------------------------------------------------- export


def test_export_defaults_to_code_and_answers_views(client: TestClient, floe: FakeFloe) -> None:
    run = finished_run(client, notebook("nb"))
    task_run_id = run["tasks"][0]["run_id"]
    body = client.get(f"/api/2.2/jobs/runs/export?run_id={task_run_id}").json()
    assert body == {"views": [{"content": "<html>/Shared/nb</html>", "name": "nb", "type": "NOTEBOOK"}]}
    assert floe.last("export_run") == {"run_id": task_run_id, "views": "CODE"}
    client.get(f"/api/2.1/jobs/runs/export?run_id={run['run_id']}&views_to_export=all")
    assert floe.last("export_run") == {"run_id": run["run_id"], "views": "ALL"}
    dashboards = client.get(f"/api/2.2/jobs/runs/export?run_id={task_run_id}&views_to_export=DASHBOARDS")
    assert dashboards.json() == {"views": []}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "run_id is required."),
        (
            "run_id=1&views_to_export=NOTEBOOK",
            "views_to_export must be one of CODE, DASHBOARDS, ALL; got 'NOTEBOOK'.",
        ),
    ],
)
def test_export_validation(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/api/2.2/jobs/runs/export?{query}")
    assert response.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": message}


def test_export_of_a_run_that_is_not_a_notebook_is_400(client: TestClient) -> None:
    run = finished_run(client, {"task_key": "py", "spark_python_task": {"python_file": "a.py"}})
    response = client.get(f"/api/2.2/jobs/runs/export?run_id={run['tasks'][0]['run_id']}")
    assert response.status_code == 400
    assert response.json()["message"].endswith("is not a notebook task run; only notebooks export.")


# ----------------------------------------------------------------------------- runs/get of a task run


def test_runs_get_of_a_for_each_task_run_pages_its_iterations_in_2_2(
    client: TestClient, floe: FakeFloe
) -> None:
    floe.add_for_each_run(230)
    job_run = client.get("/api/2.2/jobs/runs/get?run_id=10").json()
    assert [t["run_id"] for t in job_run["tasks"]] == [11] and "next_page_token" not in job_run
    assert job_run["tasks"][0]["for_each_task"]["stats"]["task_run_stats"]["succeeded_iterations"] == 230

    pages, token = [], ""
    while True:
        page = client.get(f"/api/2.2/jobs/runs/get?run_id=11&page_token={token}").json()
        pages.append(page)
        if "next_page_token" not in page:
            break
        token = page["next_page_token"]
    assert floe.last("get_run") == {"run_id": 11}
    assert [len(p["iterations"]) for p in pages] == [100, 100, 30]
    assert [i["run_id"] for p in pages for i in p["iterations"]] == list(range(1000, 1230))
    assert all(p["run_id"] == 11 and p["job_run_id"] == 10 and p["task_key"] == "each" for p in pages)

    whole = client.get("/api/2.1/jobs/runs/get?run_id=11").json()
    assert len(whole["iterations"]) == 230 and "next_page_token" not in whole
    one = client.get("/api/2.2/jobs/runs/get?run_id=1005").json()
    assert (one["run_id"], one["task_key"], one["job_run_id"]) == (1005, "item", 10)
    assert one["state"]["result_state"] == "SUCCESS" and "iterations" not in one
