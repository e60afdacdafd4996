"""`python -m core serve` as a user runs it: a real process, the README's tour, a restart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs

from tests.fixtures.server import free_port

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


def _serve(home: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")}
    env["FLOE_WORKSPACE"] = str(REPO / "examples" / "workspace")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "serve",
            "--home",
            str(home),
            "--port",
            str(port),
            "--deploy",
            str(REPO / "examples" / "jobs"),
        ],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def _wait_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, (
            f"serve exited early: {process.stderr.read() if process.stderr else ''}"
        )
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("serve did not become healthy in 30 s")


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return err


def test_the_readme_tour(tmp_path: Path, databricks_env: None) -> None:
    home, port = tmp_path / "home", free_port()
    url = f"http://127.0.0.1:{port}"
    serve = _serve(home, port)
    try:
        _wait_healthy(url, serve)
        assert httpx.get(f"{url}/api/2.2/jobs/list").status_code == 401
        assert httpx.get(f"{url}/.well-known/databricks-config").status_code in (200, 404)
    finally:
        first_err = _stop(serve)
    token = re.search(r"admin token \(shown once, keep it\): (\S+)", first_err)
    assert token, first_err
    assert "created job" in first_err and "(hello-floe)" in first_err

    serve = _serve(home, port)  # a restart keeps the token and updates the deployed jobs in place
    try:
        _wait_healthy(url, serve)
        w = WorkspaceClient(host=url, token=token.group(1))
        job = next(w.jobs.list(name="hello-floe"))
        run = w.jobs.run_now(job.job_id, job_parameters={"greeting": "bonjour"}).result(
            timeout=timedelta(seconds=60)
        )
        assert run.state.result_state == jobs.RunResultState.SUCCESS
        logs = {t.task_key: w.jobs.get_run_output(t.run_id).logs for t in run.tasks}
        assert logs["extract"].strip() == f"bonjour from run {run.run_id}: extracted 3 rows"
        assert re.fullmatch(r"report: report for \d{4}-\d{2}-\d{2} is ready", logs["report"].strip())
    finally:
        second_err = _stop(serve)
    assert "admin token" not in second_err
    assert "updated job" in second_err


def test_bad_settings_exit_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLOE_")}, "FLOE_PORTT": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "core", "serve", "--home", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown setting(s) FLOE_PORTT" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_example_jobs_run(floe_server) -> None:  # type: ignore[no-untyped-def]
    """Every job in examples/ deploys and runs to SUCCESS against the example workspace."""
    from core.model import validate_job_settings, validate_run_now
    from core.runtime.deploy import deploy_jobs

    floe = floe_server.host.floe
    floe.settings = floe.settings  # the example workspace below
    import shutil

    shutil.copytree(REPO / "examples" / "workspace", floe_server.workspace, dirs_exist_ok=True)
    lines = list(deploy_jobs(floe, [REPO / "examples" / "jobs"]))
    assert all(line.startswith("created job") for line in lines), lines
    w = WorkspaceClient(host=floe_server.url, token=floe_server.token)
    for job in w.jobs.list():
        run = w.jobs.run_now(job.job_id).result(timeout=timedelta(seconds=90))
        assert run.state.result_state == jobs.RunResultState.SUCCESS, (
            job.settings.name,
            run.state.state_message,
        )
    assert validate_job_settings and validate_run_now


def test_schedule_preview_from_the_command_line() -> None:
    args = [
        sys.executable,
        "-m",
        "core",
        "schedule",
        "next",
        "0 30 2 ? * SUN",
        "--tz",
        "America/New_York",
        "--after",
        "2026-03-01T00:00:00Z",
        "-n",
        "2",
    ]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # the second Sunday is the spring-forward day: 02:30 does not exist and fires at 03:30
    assert done.stdout.splitlines() == ["2026-03-01T02:30:00-05:00", "2026-03-08T03:30:00-04:00"]
    bad = subprocess.run(
        [sys.executable, "-m", "core", "schedule", "next", "0 0 12 * * *"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "exactly one of day-of-month and day-of-week must be '?'" in bad.stderr
    assert "Traceback" not in bad.stderr
