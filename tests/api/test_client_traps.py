"""What the real clients send (reference/databricks-clients.md), each accepted as they send it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.fake import FakeFloe

TASK = {"task_key": "a", "spark_python_task": {"python_file": "a.py"}}
TEXT_JSON = {"Content-Type": "text/json"}


def create(client: TestClient, version: str = "2.2", **settings: Any) -> int:
    response = client.post(f"/api/{version}/jobs/create", json={"name": "j", "tasks": [TASK], **settings})
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


def run(client: TestClient, job_id: int) -> dict[str, Any]:
    return client.post("/api/2.2/jobs/run-now", json={"job_id": job_id}).json()


# ------------------------------------------------------------------------------------ legacy CLI (2.0)


def test_legacy_cli_string_ids_and_text_json_bodies(client: TestClient, floe: FakeFloe) -> None:
    job_id = create(client, "2.0")
    response = client.post("/api/2.0/jobs/run-now", content=f'{{"job_id": "{job_id}"}}', headers=TEXT_JSON)
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    assert floe.last("run_now")["request"].job_id == job_id

    got = client.get(f"/api/2.0/jobs/runs/get?run_id={run_id}", headers=TEXT_JSON).json()
    for key in ("state", "run_page_url"):  # what `runs submit --wait` reads
        assert key in got
    assert got["state"]["life_cycle_state"] == "TERMINATED" and got["state"]["result_state"] == "SUCCESS"
    assert "state_message" in got["state"]

    cancel = client.post("/api/2.0/jobs/runs/cancel", content=f'{{"run_id": "{run_id}"}}', headers=TEXT_JSON)
    assert (cancel.status_code, cancel.json()) == (200, {})
    delete = client.post("/api/2.0/jobs/delete", content=f'{{"job_id": "{job_id}"}}', headers=TEXT_JSON)
    assert (delete.status_code, delete.json()) == (200, {})
    assert floe.last("delete_job") == {"job_id": job_id}


def test_legacy_cli_lists_with_offset_limit_and_has_more(client: TestClient, floe: FakeFloe) -> None:
    for _ in range(3):
        create(client, "2.1")
    first = client.get("/api/2.1/jobs/list?expand_tasks=false&limit=2&offset=0", headers=TEXT_JSON).json()
    assert len(first["jobs"]) == 2 and first["has_more"] is True
    last = client.get("/api/2.1/jobs/list?expand_tasks=false&limit=2&offset=2", headers=TEXT_JSON).json()
    assert len(last["jobs"]) == 1 and last["has_more"] is False
    assert floe.last("list_jobs") == {"name": None, "limit": 2, "offset": 2, "page_token": None}


def test_jobs_created_through_2_0_and_2_1_do_not_queue_but_2_2_does(
    client: TestClient, floe: FakeFloe
) -> None:
    for version, queued in (("2.0", False), ("2.1", False), ("2.2", True)):
        job_id = create(client, version)
        assert floe.jobs[job_id].settings["queue"] == {"enabled": queued}
    job_id = create(client, "2.1", queue={"enabled": True})
    assert floe.jobs[job_id].settings["queue"] == {"enabled": True}


def test_an_empty_post_body_is_an_empty_object(client: TestClient, floe: FakeFloe) -> None:
    response = client.post("/api/2.2/jobs/create", content=b"")
    assert response.status_code == 200
    assert floe.last("create_job")["settings"]["name"] == "Untitled"
    no_job = client.post("/api/2.2/jobs/run-now", content=b"  \n")
    assert (no_job.status_code, no_job.json()["message"]) == (400, "job_id is required.")


# -------------------------------------------------------------------------------------------- Airflow


def test_airflow_python_booleans_empty_page_token_and_unknown_params(
    client: TestClient, floe: FakeFloe
) -> None:
    create(client)
    response = client.get(
        "/api/2.2/jobs/list?limit=25&expand_tasks=False&include_user_names=False&page_token="
    )
    assert response.status_code == 200, response.text
    assert floe.last("list_jobs") == {"name": None, "limit": 25, "offset": 0, "page_token": None}
    assert "tasks" not in response.json()["jobs"][0]["settings"]


@pytest.mark.parametrize("spelling", ["true", "True", "TRUE", "1"])
def test_boolean_query_values_in_any_spelling(client: TestClient, spelling: str) -> None:
    run_id = run(client, create(client))["run_id"]
    got = client.get(f"/api/2.2/jobs/runs/get?run_id={run_id}&include_history={spelling}&page_token=").json()
    assert got["repair_history"][0]["type"] == "ORIGINAL"


def test_a_bad_boolean_is_named(client: TestClient) -> None:
    response = client.get("/api/2.2/jobs/runs/list?active_only=yes")
    assert response.status_code == 400
    assert response.json()["message"] == "active_only must be a boolean (true or false); got 'yes'."


def test_airflow_repair_history_has_the_original_entry(client: TestClient) -> None:
    run_id = run(client, create(client))["run_id"]
    history = client.get(f"/api/2.2/jobs/runs/get?run_id={run_id}&include_history=true").json()[
        "repair_history"
    ]
    assert len(history) == 1  # Airflow: one entry means "no repair yet"
    assert history[0]["type"] == "ORIGINAL" and "id" not in history[0]


# ------------------------------------------------------------------------------------ SDK and paging


def test_no_empty_or_null_page_token_is_ever_sent(client: TestClient) -> None:
    job_id = create(client)
    run_id = run(client, job_id)["run_id"]
    replies = [
        client.get(f"/api/2.2/jobs/get?job_id={job_id}"),
        client.get("/api/2.2/jobs/list"),
        client.get("/api/2.2/jobs/list?expand_tasks=true"),
        client.get(f"/api/2.2/jobs/runs/get?run_id={run_id}&include_history=true"),
        client.get("/api/2.2/jobs/runs/list?expand_tasks=true"),
        client.get("/api/2.1/jobs/runs/list"),
    ]
    for reply in replies:
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert "next_page_token" not in body and "prev_page_token" not in body, body


def test_ids_in_query_strings_and_bodies_as_numbers_or_strings(client: TestClient, floe: FakeFloe) -> None:
    job_id = create(client)
    assert client.get("/api/2.2/jobs/get", params={"job_id": str(job_id)}).status_code == 200
    assert client.post("/api/2.2/jobs/run-now", json={"job_id": job_id}).status_code == 200
    assert client.post("/api/2.2/jobs/runs/cancel-all", json={"job_id": str(job_id)}).status_code == 200
    assert floe.last("cancel_all_runs") == {"job_id": job_id, "all_queued_runs": False}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "job_id=abc",
            "job_id must be a positive integer id below 2**63 (a JSON number or a numeric string); "
            "got 'abc'.",
        ),
        (
            "job_id=0",
            "job_id must be a positive integer id below 2**63 (a JSON number or a numeric string); got '0'.",
        ),
        ("", "job_id is required."),
    ],
)
def test_bad_ids_are_named(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/api/2.2/jobs/get?{query}")
    assert (response.status_code, response.json()["message"]) == (400, message)


def test_a_get_may_carry_its_parameters_as_a_json_body(client: TestClient) -> None:
    job_id = create(client)
    response = client.request(
        "GET", "/api/2.0/jobs/get", content=f'{{"job_id": {job_id}}}', headers=TEXT_JSON
    )
    assert response.status_code == 200 and response.json()["job_id"] == job_id
