"""The webhook routes through the ASGI app, over a real Floe on SQLite (no task processes)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk.service import jobs
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from core.api import create_app
from core.api.webhooks import DELIVERY_PATH, delivery_route
from core.clock import FakeClock
from core.handlers import Floe
from core.settings import Settings
from core.store import Storage

TOKEN = "webhook-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BAD_SIGNATURE = "X-Floe-Signature does not match the request body"


@pytest.fixture
def real_floe(tmp_path: Path, sqlite_storage: Storage) -> Floe:
    settings = Settings(home=tmp_path / "home", workspace=tmp_path, admin_token=TOKEN)
    return Floe(settings, sqlite_storage, clock=FakeClock(), host_id="h1", run_tasks=False)


@pytest.fixture
def api(real_floe: Floe) -> Iterator[TestClient]:
    """No default headers: the webhook route is called without a token, the Jobs API with `AUTH`."""
    with TestClient(create_app(real_floe, clock=FakeClock()), raise_server_exceptions=False) as client:
        yield client


def assert_error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code
    return str(body["message"])


def create_job(api: TestClient, *parameters: tuple[str, str]) -> int:
    body = {
        "name": "hooked",
        "max_concurrent_runs": 10,
        "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "x.py"}}],
        "parameters": [{"name": name, "default": default} for name, default in parameters],
    }
    response = api.post("/api/2.2/jobs/create", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return int(response.json()["job_id"])


def new_secret(api: TestClient, job_id: int) -> str:
    response = api.post("/api/floe/jobs/webhook-secret", json={"job_id": job_id}, headers=AUTH)
    assert response.status_code == 200, response.text
    return str(response.json()["secret"])


def deliver(
    api: TestClient, job_id: int | str, body: bytes, *, secret: str, delivery: str | None = None
) -> Any:
    headers = {"X-Floe-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    if delivery is not None:
        headers["X-Floe-Delivery"] = delivery
    return api.post(f"/webhooks/jobs/{job_id}", content=body, headers=headers)


def run_ids(api: TestClient, job_id: int) -> list[int]:
    page = api.get("/api/2.2/jobs/runs/list", params={"job_id": job_id}, headers=AUTH).json()
    return [run["run_id"] for run in page.get("runs", [])]


# -------------------------------------------------------------------------------------- secret route


def test_the_secret_route_answers_the_secret_and_the_url(api: TestClient) -> None:
    job_id = create_job(api)

    response = api.post("/api/floe/jobs/webhook-secret", json={"job_id": str(job_id)}, headers=AUTH)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"job_id", "secret", "url"}
    assert body["job_id"] == job_id and body["secret"].startswith("whsec_")
    assert body["url"] == f"http://testserver/webhooks/jobs/{job_id}"


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}"])
def test_the_secret_route_needs_a_token(api: TestClient, header: str | None) -> None:
    job_id = create_job(api)
    headers = {"Authorization": header} if header else {}

    response = api.post("/api/floe/jobs/webhook-secret", json={"job_id": job_id}, headers=headers)

    assert_error(response, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "job_id is required"),
        ({"job_id": "abc"}, "job_id must be a positive integer id"),
        ({"job_id": 424242}, "Job 424242 does not exist."),
    ],
)
def test_the_secret_route_names_a_bad_job_id(api: TestClient, body: dict[str, Any], message: str) -> None:
    response = api.post("/api/floe/jobs/webhook-secret", json=body, headers=AUTH)

    assert message in assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_the_routes_take_post_only(api: TestClient) -> None:
    assert_error(api.get("/webhooks/jobs/1"), 405, "METHOD_NOT_ALLOWED")
    assert_error(api.get("/api/floe/jobs/webhook-secret", headers=AUTH), 405, "METHOD_NOT_ALLOWED")


# ------------------------------------------------------------------------------------ delivery route


def test_a_signed_delivery_starts_a_run_with_the_declared_parameters(api: TestClient) -> None:
    job_id = create_job(api, ("branch", "main"), ("sha", ""))
    secret = new_secret(api, job_id)
    body = json.dumps({"branch": "release", "sha": "abc123", "pusher": "ignored"}).encode()

    response = deliver(api, job_id, body, secret=secret, delivery="d-1")

    assert response.status_code == 200, response.text
    assert set(response.json()) == {"run_id", "number_in_job"}
    run_id = response.json()["run_id"]
    assert run_ids(api, job_id) == [run_id]
    run = api.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=AUTH).json()
    assert {p["name"]: p["value"] for p in run["job_parameters"]} == {"branch": "release", "sha": "abc123"}
    assert run["trigger"] == "ONE_TIME" and run["creator_user_name"] == "webhook"
    assert run["trigger_info"] == {"webhook_delivery_id": "d-1"}
    parsed = jobs.Run.from_dict(run)  # the SDK reads a webhook run like any other
    assert parsed.trigger == jobs.TriggerType.ONE_TIME and parsed.trigger_info.run_id is None


@pytest.mark.parametrize(
    "signature", [None, "", "sha256=" + "0" * 64, "sha256=nothex", "sha1=" + "0" * 40, "Bearer x"]
)
def test_a_bad_signature_is_401_and_starts_nothing(api: TestClient, signature: str | None) -> None:
    job_id = create_job(api)
    new_secret(api, job_id)
    headers = {"X-Floe-Signature": signature} if signature is not None else {}

    response = api.post(f"/webhooks/jobs/{job_id}", content=b"{}", headers=headers)

    assert "X-Floe-Signature" in assert_error(response, 401, "UNAUTHENTICATED")
    assert run_ids(api, job_id) == []


def test_a_bearer_token_is_no_substitute_for_the_signature(api: TestClient) -> None:
    job_id = create_job(api)
    new_secret(api, job_id)

    response = api.post(f"/webhooks/jobs/{job_id}", content=b"{}", headers=AUTH)

    assert_error(response, 401, "UNAUTHENTICATED")
    assert run_ids(api, job_id) == []


@pytest.mark.parametrize("path_id", ["999999999", "abc", "0", "-1", "1.5", "9" * 30])
def test_a_path_naming_no_job_is_answered_like_a_wrong_signature(api: TestClient, path_id: str) -> None:
    job_id = create_job(api)
    wrong = deliver(api, job_id, b"{}", secret="whsec_not-the-secret")
    no_job = deliver(api, path_id, b"{}", secret="whsec_not-the-secret")

    assert assert_error(no_job, 401, "UNAUTHENTICATED") == assert_error(wrong, 401, "UNAUTHENTICATED")
    assert BAD_SIGNATURE in no_job.json()["message"]


def test_a_replayed_delivery_returns_the_same_run(api: TestClient) -> None:
    job_id = create_job(api, ("p", "x"))
    secret = new_secret(api, job_id)

    first = deliver(api, job_id, b'{"p": "1"}', secret=secret, delivery="evt-42").json()
    replay = deliver(api, job_id, b'{"p": "1"}', secret=secret, delivery="evt-42").json()
    undelivered = deliver(api, job_id, b'{"p": "1"}', secret=secret).json()

    assert first == replay and undelivered["run_id"] != first["run_id"]
    assert sorted(run_ids(api, job_id)) == sorted([first["run_id"], undelivered["run_id"]])


def test_a_rotated_secret_invalidates_the_old_one(api: TestClient) -> None:
    job_id = create_job(api)
    old = new_secret(api, job_id)
    new = new_secret(api, job_id)

    assert BAD_SIGNATURE in assert_error(deliver(api, job_id, b"", secret=old), 401, "UNAUTHENTICATED")
    assert deliver(api, job_id, b"", secret=new).status_code == 200
    assert len(run_ids(api, job_id)) == 1


def test_deleting_the_job_turns_its_deliveries_away(api: TestClient) -> None:
    job_id = create_job(api)
    secret = new_secret(api, job_id)

    assert api.post("/api/2.2/jobs/delete", json={"job_id": job_id}, headers=AUTH).status_code == 200

    assert_error(deliver(api, job_id, b"{}", secret=secret), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"[]", "body must be a JSON object, not an array"), (b"{oops", "body must be a JSON object")],
)
def test_a_signed_body_that_is_not_an_object_is_400(api: TestClient, body: bytes, message: str) -> None:
    job_id = create_job(api)
    secret = new_secret(api, job_id)

    assert message in assert_error(deliver(api, job_id, body, secret=secret), 400, "INVALID_PARAMETER_VALUE")
    assert run_ids(api, job_id) == []


def test_a_malformed_delivery_id_is_400_naming_the_header(api: TestClient) -> None:
    job_id = create_job(api)
    secret = new_secret(api, job_id)

    response = deliver(api, job_id, b"{}", secret=secret, delivery="x" * 57)

    message = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert message.startswith("X-Floe-Delivery must be 1 to 56 characters")
    assert run_ids(api, job_id) == []


def test_an_oversized_body_is_refused_before_it_is_read_whole(real_floe: Floe) -> None:
    app = Starlette()
    app.add_route(DELIVERY_PATH, delivery_route(real_floe, max_body_bytes=10), methods=["POST"])
    client = TestClient(app, raise_server_exceptions=False)

    declared = client.post("/webhooks/jobs/1", content=b"x" * 11)
    streamed = client.post("/webhooks/jobs/1", content=iter([b"12345", b"67890", b"1"]))  # chunked, no length

    assert "at most 10 are accepted" in assert_error(declared, 400, "MALFORMED_REQUEST")
    assert "more than 10 bytes" in assert_error(streamed, 400, "MALFORMED_REQUEST")
