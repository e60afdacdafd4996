"""Authentication and the Databricks error shape, for every kind of failure."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.api.call import API_VERSIONS
from core.api.jobs import ROUTES as JOB_ROUTES
from core.api.runs import ROUTES as RUN_ROUTES
from core.errors import InvalidState, JobNotFound, RequestLimitExceeded, StorageError
from tests.api.fake import TOKEN, FakeFloe

ROUTES = [
    (method, f"/api/{v}/{path}") for v in API_VERSIONS for method, path, _ in (*JOB_ROUTES, *RUN_ROUTES)
]


def assert_shape(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    return body


# ---------------------------------------------------------------------------------------------- auth


def test_health_and_host_metadata_need_no_token(anonymous: TestClient) -> None:
    health = anonymous.get("/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert_shape(anonymous.get("/.well-known/databricks-config"), 404, "ENDPOINT_NOT_FOUND")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_api_route_needs_a_token(anonymous: TestClient, method: str, path: str) -> None:
    body = assert_shape(anonymous.request(method, path), 401, "UNAUTHENTICATED")
    assert "Authorization: Bearer" in body["message"]


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong-token", f"Basic {TOKEN}", "Bearer", "bearer  ", f"Token {TOKEN}"],
)
def test_a_bad_token_is_401_and_never_echoed(anonymous: TestClient, header: str) -> None:
    response = anonymous.get("/api/2.2/jobs/list", headers={"Authorization": header})
    body = assert_shape(response, 401, "UNAUTHENTICATED")
    assert "wrong-token" not in body["message"] and TOKEN not in body["message"]


def test_the_bearer_scheme_is_case_insensitive(anonymous: TestClient) -> None:
    assert (
        anonymous.get("/api/2.2/jobs/list", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    )


def test_auth_is_checked_before_the_body(anonymous: TestClient) -> None:
    assert_shape(anonymous.post("/api/2.2/jobs/create", content=b"{not json"), 401, "UNAUTHENTICATED")


# ------------------------------------------------------------------------------------ malformed input


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (
            b"{not json",
            "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (b'"text"', "must be a JSON object, not a string"),
        (b"null", "must be a JSON object, not null"),
        (b"12", "must be a JSON object, not a number"),
        (b'{"job_id": NaN}', "NaN is not valid JSON"),
        (b"\xff\xfe\xfa", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400_malformed_request(
    client: TestClient, content: bytes, fragment: str
) -> None:
    body = assert_shape(client.post("/api/2.2/jobs/run-now", content=content), 400, "MALFORMED_REQUEST")
    assert fragment in body["message"]


def test_unknown_endpoints_are_404_endpoint_not_found(client: TestClient) -> None:
    for path in ("/api/2.2/jobs/nope", "/api/2.3/jobs/get", "/api/2.2/jobs/runs/rewind", "/elsewhere"):
        body = assert_shape(client.get(path), 404, "ENDPOINT_NOT_FOUND")
        assert path in body["message"]


def test_a_wrong_method_is_405_in_the_shape(client: TestClient) -> None:
    response = client.get("/api/2.2/jobs/create")
    body = assert_shape(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"
    assert "POST" in body["message"]
    assert_shape(client.post("/api/2.1/jobs/runs/get", json={}), 405, "METHOD_NOT_ALLOWED")


def test_a_validation_error_is_400_invalid_parameter_value(client: TestClient) -> None:
    response = client.post("/api/2.2/jobs/create", json={"tasks": [{"task_key": "a"}]})
    body = assert_shape(response, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"].startswith("settings.tasks[0] must have exactly one task type")


# --------------------------------------------------------------------------------- service failures


def test_a_missing_job_is_400_with_the_databricks_wording(client: TestClient) -> None:
    body = assert_shape(client.get("/api/2.2/jobs/get", params={"job_id": 5}), 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == "Job 5 does not exist."
    body = assert_shape(client.get("/api/2.2/jobs/runs/get?run_id=9"), 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == "Run 9 does not exist."


def test_a_floe_error_keeps_its_code_and_status(client: TestClient, floe: FakeFloe) -> None:
    floe.fail_with = InvalidState("Run 3 is still active; cancel it first.")
    body = assert_shape(client.post("/api/2.2/jobs/runs/delete", json={"run_id": 3}), 400, "INVALID_STATE")
    assert body["message"] == "Run 3 is still active; cancel it first."
    floe.fail_with = StorageError("storage unavailable")
    response = client.post("/api/2.2/jobs/delete", json={"job_id": 3})
    assert_shape(response, 503, "TEMPORARILY_UNAVAILABLE")
    assert response.headers["retry-after"] == "1"  # so the SDK and Airflow retry it


def test_request_limit_exceeded_is_429_with_an_integer_retry_after(
    client: TestClient, floe: FakeFloe
) -> None:
    floe.fail_with = RequestLimitExceeded("Too many runs started; slow down.", retry_after_seconds=7)
    response = client.post("/api/2.2/jobs/run-now", json={"job_id": 1})
    assert_shape(response, 429, "REQUEST_LIMIT_EXCEEDED")
    assert response.headers["retry-after"] == "7"


def test_an_unexpected_exception_is_a_generic_500_without_a_trace(
    client: TestClient, floe: FakeFloe, caplog: pytest.LogCaptureFixture
) -> None:
    floe.fail_with = KeyError("secret-internal-detail")
    response = client.get("/api/2.2/jobs/get?job_id=1")
    body = assert_shape(response, 500, "INTERNAL_ERROR")
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text and "KeyError" not in response.text
    assert "Unexpected error" not in body["message"]  # the SDK would retry that wording for 5 minutes
    assert "secret-internal-detail" in caplog.text  # ... but the server log has it


def test_a_not_found_job_wins_over_nothing_else(client: TestClient, floe: FakeFloe) -> None:
    floe.fail_with = JobNotFound(77)
    body = assert_shape(
        client.post("/api/2.0/jobs/run-now", json={"job_id": 77}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert body["message"] == "Job 77 does not exist."


def test_bodies_nested_too_deeply_are_rejected_before_validation(client: TestClient) -> None:
    nested = "[" * 70 + "]" * 70
    response = client.post("/api/2.2/jobs/create", content=f'{{"name": "x", "x": {nested}}}')
    body = assert_shape(response, 400, "MALFORMED_REQUEST")
    assert body["message"] == "The request body is nested deeper than 64 levels."


def test_oversized_bodies_are_rejected(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.api.app.MAX_BODY_BYTES", 100)
    response = client.post("/api/2.2/jobs/create", json={"name": "x" * 200})
    body = assert_shape(response, 400, "MALFORMED_REQUEST")
    assert body["message"] == "The request body is 211 bytes; at most 100 are accepted."
