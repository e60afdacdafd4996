"""Each endpoint: what it passes to the service and what it answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.api import create_app
from core.clock import FakeClock
from tests.api.conftest import AUTH
from tests.api.fake import T0, USER, FakeFloe


def py(key: str) -> dict[str, Any]:
    return {"task_key": key, "spark_python_task": {"python_file": f"{key}.py"}}


def create(client: TestClient, **settings: Any) -> int:
    body = {"name": "etl", "tasks": [py("a")], **settings}
    response = client.post("/api/2.2/jobs/create", json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"job_id"}
    return response.json()["job_id"]


# ------------------------------------------------------------------------------------------------ jobs


def test_create_validates_and_passes_the_creator(client: TestClient, floe: FakeFloe) -> None:
    create(client, access_control_list=[{"user_name": "x", "permission_level": "IS_OWNER"}])
    call = floe.last("create_job")
    assert call["creator"] == USER
    assert call["settings"]["format"] == "MULTI_TASK"
    assert "access_control_list" not in call["settings"]


def test_get_answers_the_job_object(client: TestClient) -> None:
    job_id = create(client)
    assert client.get(f"/api/2.2/jobs/get?job_id={job_id}&include_trigger_state=true").json() == {
        "job_id": job_id,
        "creator_user_name": USER,
        "run_as_user_name": USER,
        "created_time": T0,
        "settings": {
            "name": "etl",
            "tasks": [py("a")],
            "format": "MULTI_TASK",
            "max_concurrent_runs": 1,
            "timeout_seconds": 0,
            "email_notifications": {},
            "webhook_notifications": {},
            "queue": {"enabled": True},
        },
    }


def test_get_shows_the_trigger_state_when_asked(client: TestClient) -> None:
    schedule = {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"}
    job_id = create(client, schedule=schedule)
    assert "trigger_state" not in client.get(f"/api/2.2/jobs/get?job_id={job_id}").json()
    state = client.get(f"/api/2.2/jobs/get?job_id={job_id}&include_trigger_state=true").json()[
        "trigger_state"
    ]
    assert state == {"schedule": {"pause_status": "UNPAUSED", "fire_count": 0}}


def test_get_pages_settings_arrays_by_100_in_2_2_only(client: TestClient) -> None:
    tasks = [py(f"t{i:03}") for i in range(250)]
    params = [{"name": f"p{i}", "default": ""} for i in range(120)]
    job_id = create(client, tasks=tasks, parameters=params)

    pages, token = [], ""
    while True:
        body = client.get(f"/api/2.2/jobs/get?job_id={job_id}&page_token={token}").json()
        pages.append(body)
        if "next_page_token" not in body:
            break
        token = body["next_page_token"]
        assert token
    assert [len(p["settings"].get("tasks", [])) for p in pages] == [100, 100, 50]
    assert [len(p["settings"].get("parameters", [])) for p in pages] == [100, 20, 0]
    assert [t["task_key"] for p in pages for t in p["settings"]["tasks"]] == [t["task_key"] for t in tasks]
    assert all(p["settings"]["name"] == "etl" for p in pages)  # settings on every page

    whole = client.get(f"/api/2.1/jobs/get?job_id={job_id}").json()
    assert len(whole["settings"]["tasks"]) == 250 and "next_page_token" not in whole


def test_a_bad_page_token_is_named(client: TestClient) -> None:
    job_id = create(client)
    response = client.get(f"/api/2.2/jobs/get?job_id={job_id}&page_token=zz")
    assert response.status_code == 400
    assert response.json()["message"] == "page_token is not a page token this server issued; got 'zz'."


def test_list_hides_tasks_unless_expanded_and_caps_expanded_jobs_in_2_2(client: TestClient) -> None:
    create(client, tasks=[py(f"t{i}") for i in range(150)], job_clusters=[])
    plain = client.get("/api/2.2/jobs/list").json()
    assert plain["has_more"] is False
    item = plain["jobs"][0]
    assert set(item) == {"job_id", "creator_user_name", "created_time", "settings"}
    assert "tasks" not in item["settings"] and "job_clusters" not in item["settings"]

    expanded = client.get("/api/2.2/jobs/list?expand_tasks=true").json()["jobs"][0]
    assert len(expanded["settings"]["tasks"]) == 100 and expanded["has_more"] is True
    assert (
        len(client.get("/api/2.1/jobs/list?expand_tasks=true").json()["jobs"][0]["settings"]["tasks"]) == 150
    )


def test_list_omits_jobs_when_empty_and_passes_filters(client: TestClient, floe: FakeFloe) -> None:
    assert client.get("/api/2.2/jobs/list?name=ETL&limit=0&page_token=5").json() == {
        "has_more": False,
        "prev_page_token": "5",
    }
    assert floe.last("list_jobs") == {"name": "ETL", "limit": 20, "offset": 0, "page_token": "5"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=101", "limit must be between 0 and 100; got '101'."),
        ("limit=-1", "limit must be between 0 and 100; got '-1'."),
        ("offset=-1", "offset must be at least 0; got '-1'."),
        ("limit=x", "limit must be an integer between 0 and 100; got 'x'."),
    ],
)
def test_list_limits(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/api/2.2/jobs/list?{query}")
    assert (response.status_code, response.json()["message"]) == (400, message)


def test_list_pages_through_service_tokens(client: TestClient) -> None:
    for _ in range(5):
        create(client)
    seen, token = [], None
    while True:
        body = client.get(
            "/api/2.2/jobs/list", params={"limit": 2, **({"page_token": token} if token else {})}
        ).json()
        seen += [j["job_id"] for j in body.get("jobs", [])]
        token = body.get("next_page_token")
        if not token:
            break
    assert len(seen) == 5 == len(set(seen))


def test_update_passes_the_raw_request_to_the_service(client: TestClient, floe: FakeFloe) -> None:
    job_id = create(client, tags={"a": "1"})
    body = {"job_id": str(job_id), "new_settings": {"tasks": [py("b")]}, "fields_to_remove": ["tags"]}
    assert client.post("/api/2.2/jobs/update", json=body).json() == {}
    assert floe.last("update_job") == {
        "job_id": job_id,
        "new_settings": {"tasks": [py("b")]},
        "fields_to_remove": ["tags"],
    }
    assert [t["task_key"] for t in floe.jobs[job_id].settings["tasks"]] == ["a", "b"]
    assert client.post("/api/2.2/jobs/update", json={"job_id": job_id}).status_code == 200
    assert floe.last("update_job")["new_settings"] == {} and floe.last("update_job")["fields_to_remove"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"new_settings": {}}, "job_id is required."),
        ({"job_id": 1, "new_settings": [1]}, "new_settings must be a JSON object; got [1]."),
        (
            {"job_id": 1, "fields_to_remove": "tags"},
            "fields_to_remove must be a JSON array of strings; got 'tags'.",
        ),
    ],
)
def test_update_shapes(client: TestClient, body: dict[str, Any], message: str) -> None:
    response = client.post("/api/2.2/jobs/update", json=body)
    assert (response.status_code, response.json()["message"]) == (400, message)


def test_reset_validates_new_settings_with_that_name(client: TestClient, floe: FakeFloe) -> None:
    job_id = create(client)
    bad = client.post(
        "/api/2.2/jobs/reset", json={"job_id": job_id, "new_settings": {"tasks": [{"task_key": "x"}]}}
    )
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("new_settings.tasks[0] must have exactly one task type")
    missing = client.post("/api/2.2/jobs/reset", json={"job_id": job_id})
    assert missing.json()["message"] == "new_settings is required."

    ok = client.post(
        "/api/2.1/jobs/reset", json={"job_id": job_id, "new_settings": {"name": "n", "tasks": [py("z")]}}
    )
    assert ok.json() == {}
    assert floe.last("reset_job")["new_settings"]["queue"] == {"enabled": False}


def test_delete(client: TestClient, floe: FakeFloe) -> None:
    job_id = create(client)
    assert client.post("/api/2.2/jobs/delete", json={"job_id": job_id}).json() == {}
    assert job_id not in floe.jobs


def test_run_now_answers_run_id_and_number_in_job(client: TestClient, floe: FakeFloe) -> None:
    job_id = create(client, parameters=[{"name": "p", "default": "d"}])
    body = client.post(
        "/api/2.2/jobs/run-now",
        json={
            "job_id": job_id,
            "job_parameters": {"p": 1},
            "idempotency_token": "once",
            "python_params": ["x"],
        },
    ).json()
    assert set(body) == {"run_id", "number_in_job"} and body["run_id"] == body["number_in_job"]
    request = floe.last("run_now")["request"]
    assert (request.job_parameters, request.idempotency_token, request.python_params) == (
        {"p": "1"},
        "once",
        ("x",),
    )


def test_run_now_validation_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/2.2/jobs/run-now", json={"job_id": 1, "jar_params": ["a"], "notebook_params": {}}
    )
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "jar_params cannot be combined with notebook_params.",
    }


# ------------------------------------------------------------------------------------------------ runs


def test_submit_answers_run_id(client: TestClient, floe: FakeFloe) -> None:
    body = client.post(
        "/api/2.2/jobs/runs/submit", json={"tasks": [py("a")], "access_control_list": []}
    ).json()
    assert set(body) == {"run_id"}
    assert floe.last("submit")["body"] == {"tasks": [py("a")], "run_name": "Untitled"}
    bad = client.post("/api/2.2/jobs/runs/submit", json={"tasks": [{"task_key": "a"}]})
    assert bad.json()["message"].startswith("tasks[0] must have exactly one task type")


def test_runs_list_passes_filters_and_hides_tasks_unless_expanded(client: TestClient, floe: FakeFloe) -> None:
    job_id = create(client)
    client.post("/api/2.2/jobs/run-now", json={"job_id": job_id})
    query = (
        f"job_id={job_id}&active_only=false&completed_only=True&run_type=JOB_RUN&start_time_from=1"
        "&start_time_to=&limit=0&offset=0&page_token=&include_user_names=false"
    )
    body = client.get(f"/api/2.2/jobs/runs/list?{query}").json()
    assert floe.last("list_runs") == {
        "job_id": job_id,
        "active_only": False,
        "completed_only": True,
        "run_type": "JOB_RUN",
        "start_time_from": 1,
        "start_time_to": None,
        "limit": 25,
        "offset": 0,
        "page_token": None,
    }
    assert body["has_more"] is False and "tasks" not in body["runs"][0]
    assert body["runs"][0]["state"]["result_state"] == "SUCCESS"
    expanded = client.get("/api/2.2/jobs/runs/list?expand_tasks=true").json()
    assert [t["task_key"] for t in expanded["runs"][0]["tasks"]] == ["a"]
    assert client.get("/api/2.2/jobs/runs/list").json()["runs"]
    assert floe.last("list_runs")["limit"] == 20


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=26", "limit must be between 0 and 25; got '26'."),
        ("active_only=true&completed_only=true", "completed_only cannot be true together with active_only."),
        ("run_type=NIGHTLY", "run_type must be one of JOB_RUN, SUBMIT_RUN, WORKFLOW_RUN; got 'NIGHTLY'."),
        ("start_time_from=-5", "start_time_from must be at least 0; got '-5'."),
    ],
)
def test_runs_list_rules(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/api/2.2/jobs/runs/list?{query}")
    assert (response.status_code, response.json()["message"]) == (400, message)


def test_runs_list_omits_runs_when_empty(client: TestClient) -> None:
    assert client.get("/api/2.2/jobs/runs/list").json() == {"has_more": False}


def test_get_output_renders_the_task_run(client: TestClient) -> None:
    run_id = client.post("/api/2.2/jobs/run-now", json={"job_id": create(client)}).json()["run_id"]
    task_run_id = client.get(f"/api/2.2/jobs/runs/get?run_id={run_id}").json()["tasks"][0]["run_id"]
    body = client.get(f"/api/2.2/jobs/runs/get-output?run_id={task_run_id}").json()
    assert set(body) == {"metadata", "logs", "logs_truncated"}
    assert body["logs"] == "output of a\n" and body["logs_truncated"] is False
    meta = body["metadata"]
    assert (meta["run_id"], meta["job_run_id"], meta["task_key"]) == (task_run_id, run_id, "a")
    assert meta["state"]["result_state"] == "SUCCESS" and meta["status"]["state"] == "TERMINATED"


def test_cancel_cancel_all_and_delete(client: TestClient, floe: FakeFloe) -> None:
    run_id = client.post("/api/2.2/jobs/run-now", json={"job_id": create(client)}).json()["run_id"]
    assert client.post("/api/2.2/jobs/runs/cancel", json={"run_id": run_id}).json() == {}
    assert client.post("/api/2.2/jobs/runs/cancel-all", json={"all_queued_runs": True}).json() == {}
    assert floe.last("cancel_all_runs") == {"job_id": None, "all_queued_runs": True}
    neither = client.post("/api/2.2/jobs/runs/cancel-all", json={})
    assert neither.json()["message"] == "job_id is required unless all_queued_runs is true."
    assert client.post("/api/2.2/jobs/runs/delete", json={"run_id": run_id}).json() == {}
    assert run_id not in floe.runs


def test_links_use_the_public_url_when_one_is_set(floe: FakeFloe) -> None:
    app = create_app(floe, clock=FakeClock(), public_url="https://floe.example.com/")
    client = TestClient(app, raise_server_exceptions=False, headers=AUTH)
    job_id = create(client)
    run_id = client.post("/api/2.2/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    got = client.get(f"/api/2.2/jobs/runs/get?run_id={run_id}").json()
    assert got["run_page_url"].startswith("https://floe.example.com/#job/")
