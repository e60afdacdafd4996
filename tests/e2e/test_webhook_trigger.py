"""A signed webhook delivery starts a real run on a real server, and the task sees the parameter."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest

from tests.fixtures.server import FloeServer

pytestmark = pytest.mark.timeout(120)


def test_a_webhook_delivery_runs_the_job_with_its_parameter(floe_server: FloeServer) -> None:
    floe_server.script("greet.py", "import sys\nprint('greeting:', *sys.argv[1:])\n")
    api = httpx.Client(
        base_url=floe_server.url, headers={"Authorization": f"Bearer {floe_server.token}"}, timeout=30
    )
    created = api.post(
        "/api/2.2/jobs/create",
        json={
            "name": "webhooked",
            "parameters": [{"name": "greeting", "default": "hello"}],
            "tasks": [
                {
                    "task_key": "greet",
                    "spark_python_task": {
                        "python_file": "greet.py",
                        "parameters": ["{{job.parameters.greeting}}"],
                    },
                }
            ],
        },
    )
    job_id = created.json()["job_id"]
    hook = api.post("/api/floe/jobs/webhook-secret", json={"job_id": job_id}).json()
    assert hook["url"] == f"{floe_server.url}/webhooks/jobs/{job_id}"

    body = json.dumps({"greeting": "bonjour", "unrelated": [1, 2]}).encode()
    signature = "sha256=" + hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Floe-Signature": signature, "X-Floe-Delivery": "e2e-1", "Content-Type": "application/json"}
    unsigned = httpx.post(hook["url"], content=body, timeout=30)  # no token, no signature
    delivered = httpx.post(hook["url"], content=body, headers=headers, timeout=30)
    replayed = httpx.post(hook["url"], content=body, headers=headers, timeout=30)

    assert unsigned.status_code == 401 and unsigned.json()["error_code"] == "UNAUTHENTICATED"
    assert delivered.status_code == 200, delivered.text
    assert replayed.json() == delivered.json()
    run_id = delivered.json()["run_id"]
    run = _wait_final(api, run_id)
    assert (run["state"]["life_cycle_state"], run["state"].get("result_state")) == ("TERMINATED", "SUCCESS")
    listed = api.get("/api/2.2/jobs/runs/list", params={"job_id": job_id}).json()["runs"]
    assert [r["run_id"] for r in listed] == [run_id]
    output = api.get("/api/2.2/jobs/runs/get-output", params={"run_id": run["tasks"][0]["run_id"]}).json()
    assert output["logs"].strip() == "greeting: bonjour"


def _wait_final(api: httpx.Client, run_id: int) -> dict:
    deadline = time.monotonic() + 60
    while True:
        run = api.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}).json()
        if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            return run
        assert time.monotonic() < deadline, run["state"]
        time.sleep(0.05)
