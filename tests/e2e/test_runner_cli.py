"""`floe serve --tasks runners` and `floe runner` as a user runs them: two processes on one home, the
first taking API calls and running no task, the second running every task attempt."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_cli import REPO, _stop, _wait_healthy
from tests.fixtures.server import free_port

pytestmark = pytest.mark.timeout(120)

TOKEN = "floe-runner-test-token"


def _floe(*args: str, workspace: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")}
    env.update(FLOE_WORKSPACE=str(workspace), FLOE_ADMIN_TOKEN=TOKEN)
    return subprocess.Popen(
        [sys.executable, "-m", "core", *args],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def _call(url: str, method: str, path: str, **body: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if method == "GET":
        response = httpx.get(f"{url}{path}", params=body, headers=headers, timeout=10)
    else:
        response = httpx.post(f"{url}{path}", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_runner_process_runs_what_serve_submits(tmp_path: Path) -> None:
    home, workspace, port = tmp_path / "home", tmp_path / "workspace", free_port()
    workspace.mkdir()
    (workspace / "hello.py").write_text("print('hello from a runner')\n")
    url = f"http://127.0.0.1:{port}"
    serve = _floe(
        "serve", "--home", str(home), "--port", str(port), "--tasks", "runners", workspace=workspace
    )
    runner: subprocess.Popen[str] | None = None
    try:
        _wait_healthy(url, serve)
        task = {"task_key": "hello", "spark_python_task": {"python_file": "hello.py"}}
        job_id = _call(url, "POST", "/api/2.2/jobs/create", name="on-a-runner", tasks=[task])["job_id"]
        run_id = _call(url, "POST", "/api/2.2/jobs/run-now", job_id=job_id)["run_id"]
        time.sleep(1.5)  # serve runs no task: without a runner the attempt waits
        waiting = _call(url, "GET", "/api/2.2/jobs/runs/get", run_id=run_id)
        assert waiting["tasks"][0]["state"]["life_cycle_state"] == "PENDING"

        runner = _floe("runner", "--home", str(home), workspace=workspace)
        deadline = time.monotonic() + 60
        while (run := _call(url, "GET", "/api/2.2/jobs/runs/get", run_id=run_id))["state"][
            "life_cycle_state"
        ] != "TERMINATED":
            assert time.monotonic() < deadline, run["state"]
            assert runner.poll() is None, runner.stderr.read() if runner.stderr else ""
            time.sleep(0.1)
        assert run["state"]["result_state"] == "SUCCESS", run["state"]
        output = _call(url, "GET", "/api/2.2/jobs/runs/get-output", run_id=run["tasks"][0]["run_id"])
        assert "hello from a runner" in output["logs"]
    finally:
        if runner is not None:
            runner_err = _stop(runner)
        _stop(serve)
    assert "Floe runner" in runner_err and "running task attempts" in runner_err
