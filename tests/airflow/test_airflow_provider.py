"""Airflow's Databricks provider drives a real Floe server: `DatabricksHook` calls and
`DatabricksRunNowOperator.execute()`, a run that succeeds, one that fails, and repairs.

These tests run only in `.venv-airflow` (`make test-airflow`), because apache-airflow's pins conflict with
Floe's (airflow-core 3.3.2 wants fastapi<0.137, Floe pins 0.163.2). So the Floe server is not started in
this process: it is `python -m core serve` run by the project's own `.venv` interpreter, and Airflow only
talks to it over HTTP, as it would in production. The make target passes `--confcutdir=tests/airflow` so
the root `tests/conftest.py` (whose plugins import `core`) is not loaded here.

In the main suite (`.venv`, no Airflow) the whole module is skipped; `make test-airflow` sets
`REQUIRE_AIRFLOW_PROVIDER=1`, and then a missing provider or a missing `.venv` fails instead of skipping.

No scheduler and no metadata database: AIRFLOW_HOME is a temporary folder, the connection comes from the
`AIRFLOW_CONN_FLOE` environment variable (JSON form), and operators get a minimal context.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REQUIRED = os.environ.get("REQUIRE_AIRFLOW_PROVIDER", "").strip().lower() not in ("", "0", "false", "no")
SKIP_REASON = (
    "apache-airflow-providers-databricks is not installed: expected in the main .venv; "
    "these tests run in .venv-airflow with `make test-airflow`"
)

if importlib.util.find_spec("airflow") is None and not REQUIRED:
    pytest.skip(SKIP_REASON, allow_module_level=True)

# Before Airflow is imported: never read or write a developer's ~/airflow (config, logs, database).
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="floe-airflow-home-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

if REQUIRED:  # the airflow target: an import error is a failure, not a skip
    import airflow.providers.databricks  # noqa: F401
else:
    pytest.importorskip("airflow.providers.databricks", reason=SKIP_REASON)

from airflow.providers.databricks.hooks.databricks import (  # noqa: E402
    GET_RUN_ENDPOINT,
    DatabricksHook,
    RunState,
)
from airflow.providers.databricks.operators.databricks import DatabricksRunNowOperator  # noqa: E402

pytestmark = [
    pytest.mark.timeout(180),
    # The provider itself still uses the Airflow 2 providers manager; not ours to fix.
    pytest.mark.filterwarnings("ignore:ProvidersManager.hooks is deprecated"),
]

REPO = Path(__file__).resolve().parents[2]
FLOE_PYTHON = REPO / ".venv" / "bin" / "python"  # the project's venv, with Floe's own pins
TOKEN = "floe-test-token"
CONN_ID = "floe"
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.2


@dataclass
class Floe:
    url: str
    port: int
    workspace: Path

    def script(self, name: str, code: str) -> str:
        path = self.workspace / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
        return name


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(f"{url}/health", timeout=1) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serve(home: Path, workspace: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`python -m core serve` on a free loopback port; retried when the port was taken meanwhile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "AIRFLOW"))}
    env.update(
        FLOE_ADMIN_TOKEN=TOKEN,
        FLOE_WORKSPACE=str(workspace),
        FLOE_TICK_SECONDS="0.2",
        FLOE_WORKERS="4",
    )
    failure = ""
    for _ in range(3):
        port = _free_port()
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(FLOE_PYTHON), "-m", "core", "serve", "--home", str(home), "--port", str(port)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            if _healthy(f"http://127.0.0.1:{port}"):
                return process, port
            time.sleep(0.05)
        _stop(process)
        failure = log_path.read_text(errors="replace")[-3000:] or "no answer on /health within 30 s"
    pytest.fail(f"floe serve did not start (3 attempts):\n{failure}", pytrace=False)


@pytest.fixture(scope="module")
def floe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floe]:
    if not FLOE_PYTHON.exists():
        message = f"{FLOE_PYTHON} is missing: run `make install` first"
        if REQUIRED:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("floe")
    workspace = root / "workspace"
    workspace.mkdir()
    process, port = _serve(root / "home", workspace, root / "serve.log")
    url = f"http://127.0.0.1:{port}"
    conn = {"conn_type": "databricks", "host": "127.0.0.1", "port": port, "schema": "http", "password": TOKEN}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        try:
            yield Floe(url, port, workspace)
        finally:
            _stop(process)


@pytest.fixture(scope="module")
def scripts(floe: Floe) -> Floe:
    floe.script("hello.py", "import sys\nprint('hello', *sys.argv[1:])\n")
    floe.script("fail.py", "print('about to fail')\nraise ValueError('boom')\n")
    # Fails until the marker file (argv[1]) exists.
    floe.script(
        "needs_marker.py",
        "import pathlib, sys\n"
        "marker = pathlib.Path(sys.argv[1])\n"
        "if not marker.exists():\n"
        "    raise FileNotFoundError(f'marker {marker.name} is missing')\n"
        "print('marker found', *sys.argv[2:])\n",
    )
    # Fails once: creates its marker (argv[1]) and fails; the next attempt finds it and succeeds.
    floe.script(
        "fails_once.py",
        "import pathlib, sys\n"
        "marker = pathlib.Path(sys.argv[1])\n"
        "if not marker.exists():\n"
        "    marker.write_text('seen')\n"
        "    raise RuntimeError('first attempt fails')\n"
        "print('second attempt', *sys.argv[2:])\n",
    )
    return floe


@pytest.fixture
def hook(floe: Floe) -> DatabricksHook:
    return DatabricksHook(CONN_ID, retry_limit=2, retry_delay=0.5)


def _task(key: str, path: str, *params: str, depends_on: tuple[str, ...] = (), **extra: Any) -> dict:
    task: dict[str, Any] = {
        "task_key": key,
        "spark_python_task": {"python_file": path, "parameters": list(params)},
        **extra,
    }
    if depends_on:
        task["depends_on"] = [{"task_key": d} for d in depends_on]
    return task


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _wait_terminal(hook: DatabricksHook, run_id: int) -> RunState:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        state = hook.get_run_state(run_id)
        if state.is_terminal:
            return state
        assert time.monotonic() < deadline, f"run {run_id} still {state} after {WAIT_SECONDS:.0f} s"
        time.sleep(POLL_SECONDS)


class _TaskInstance:
    """The one thing the operators use from `context`: `ti.xcom_push`."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}
        self.stats_tags: dict[str, str] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def _context() -> tuple[dict[str, Any], _TaskInstance]:
    ti = _TaskInstance()
    return {"ti": ti}, ti


def _by_key(run: dict) -> dict[str, list[dict]]:
    """Task entries of a run by task_key, attempts in the order the server lists them."""
    out: dict[str, list[dict]] = {}
    for task in run.get("tasks", []):
        out.setdefault(task["task_key"], []).append(task)
    return out


# --- DatabricksHook --------------------------------------------------------------------------------------


def test_hook_runs_a_job_and_reads_its_state_page_url_and_output(scripts: Floe, hook: DatabricksHook) -> None:
    job_id = hook.create_job(
        {
            "name": _name("af-hook-run"),
            "parameters": [{"name": "greeting", "default": "hello"}],
            "tasks": [
                _task("first", "hello.py", "{{job.parameters.greeting}}", "run={{job.run_id}}"),
                _task("second", "hello.py", "after", depends_on=("first",)),
            ],
        }
    )
    assert isinstance(job_id, int)

    run_id = hook.run_now({"job_id": job_id, "job_parameters": {"greeting": "bonjour"}})
    assert isinstance(run_id, int)
    state = _wait_terminal(hook, run_id)
    assert state.life_cycle_state == "TERMINATED"
    assert state.is_successful, state
    assert hook.get_run_state_str(run_id).startswith("State: TERMINATED. Result: SUCCESS.")

    run = hook.get_run(run_id)
    assert run["run_id"] == run_id
    assert run["job_id"] == job_id == hook.get_job_id(run_id)
    assert "next_page_token" not in run
    tasks = _by_key(run)
    assert set(tasks) == {"first", "second"}
    assert all(t[-1]["state"]["result_state"] == "SUCCESS" for t in tasks.values())
    assert {p["name"]: p["value"] for p in run["job_parameters"]} == {"greeting": "bonjour"}

    page_url = hook.get_run_page_url(run_id)
    assert page_url == run["run_page_url"]
    assert page_url.startswith(scripts.url)

    output = hook.get_run_output(tasks["first"][-1]["run_id"])
    assert output["logs"].strip() == f"hello bonjour run={run_id}"
    assert output["metadata"]["task_key"] == "first"


def test_hook_list_jobs_pages_with_airflows_query_encoding(scripts: Floe, hook: DatabricksHook) -> None:
    """Airflow sends `expand_tasks=False&include_user_names=False&page_token=` and loops on
    `next_page_token`: an empty or endless token would hang here (the test timeout catches it)."""
    prefix = _name("af-list")
    ids = {
        hook.create_job({"name": f"{prefix}-{i}", "tasks": [_task("t", "hello.py", str(i))]})
        for i in range(5)
    }

    listed = hook.list_jobs(limit=2)  # three pages at least, page_token="" on the first
    listed_ids = [j["job_id"] for j in listed]
    assert len(listed_ids) == len(set(listed_ids)), "a job was listed twice across pages"
    assert ids <= set(listed_ids)
    assert all("tasks" not in j["settings"] for j in listed if j["job_id"] in ids)

    expanded = hook.list_jobs(limit=2, expand_tasks=True, include_user_names=True)
    by_id = {j["job_id"]: j for j in expanded}
    assert ids <= set(by_id)
    assert all(by_id[i]["settings"]["tasks"][0]["task_key"] == "t" for i in ids)

    named = hook.list_jobs(job_name=f"{prefix}-3")
    assert len(named) == 1
    assert named[0]["settings"]["name"] == f"{prefix}-3"
    assert hook.find_job_id_by_name(f"{prefix}-3") == named[0]["job_id"]
    assert hook.find_job_id_by_name(f"{prefix}-nope") is None


def test_hook_repairs_a_failed_run_until_it_succeeds(scripts: Floe, hook: DatabricksHook) -> None:
    """The flow of DatabricksRunNowOperator(repair_run=True), step by step: repair with
    rerun_all_failed_tasks, add latest_repair_id from the second repair on, poll the ORIGINAL run id."""
    marker = scripts.workspace / "markers" / uuid.uuid4().hex
    marker.parent.mkdir(parents=True, exist_ok=True)
    job_id = hook.create_job(
        {
            "name": _name("af-repair"),
            "tasks": [
                _task("prepare", "hello.py", "prepare"),
                _task("load", "needs_marker.py", str(marker), "load", depends_on=("prepare",)),
                _task("report", "hello.py", "report", depends_on=("load",)),
            ],
        }
    )
    run_id = hook.run_now({"job_id": job_id})
    state = _wait_terminal(hook, run_id)
    assert state.result_state == "FAILED", state
    assert hook.get_latest_repair_id(run_id) is None  # repair_history holds the ORIGINAL entry only

    failed = _by_key(hook.get_run(run_id))
    assert failed["prepare"][-1]["state"]["result_state"] == "SUCCESS"
    assert failed["load"][-1]["state"]["result_state"] == "FAILED"
    assert failed["report"][-1]["state"]["result_state"] == "UPSTREAM_FAILED"
    assert "marker" in hook.get_run_output(failed["load"][-1]["run_id"]).get("error", "")

    # First repair, the marker still missing: it fails again.
    first = hook.repair_run({"run_id": run_id, "rerun_all_failed_tasks": True})
    assert isinstance(first, int)
    assert _wait_terminal(hook, run_id).result_state == "FAILED"
    assert hook.get_latest_repair_id(run_id) == first

    # Second repair: it must name the latest one; now the marker is there.
    marker.write_text("ready")
    second = hook.repair_run({"run_id": run_id, "rerun_all_failed_tasks": True, "latest_repair_id": first})
    assert second != first
    # Visible at once on the original run id: no stale FAILED for a poller to stop on.
    right_after = hook.get_run_state(run_id)
    assert not (right_after.is_terminal and right_after.result_state == "FAILED"), right_after

    state = _wait_terminal(hook, run_id)  # Airflow (like the SDK) polls the original run id
    assert state.is_successful, state
    assert hook.get_latest_repair_id(run_id) == second

    repaired = _by_key(hook.get_run(run_id))
    assert len(repaired["prepare"]) == 1, "a task that succeeded is not rerun by rerun_all_failed_tasks"
    assert [t["state"]["result_state"] for t in repaired["load"]] == ["FAILED", "FAILED", "SUCCESS"]
    assert repaired["report"][-1]["state"]["result_state"] == "SUCCESS"
    assert hook.get_run_output(repaired["load"][-1]["run_id"])["logs"].strip() == "marker found load"

    # include_history=True goes out as Python's "True" here (get_latest_repair_id sends "true").
    history = hook._do_api_call(GET_RUN_ENDPOINT, {"run_id": run_id, "include_history": True})
    assert [entry["type"] for entry in history["repair_history"]] == ["ORIGINAL", "REPAIR", "REPAIR"]
    assert [entry.get("id") for entry in history["repair_history"][1:]] == [first, second]


# --- DatabricksRunNowOperator ----------------------------------------------------------------------------


def test_run_now_operator_completes_a_job_that_succeeds(scripts: Floe, hook: DatabricksHook) -> None:
    job_id = hook.create_job(
        {
            "name": _name("af-op-ok"),
            "parameters": [{"name": "greeting", "default": "hello"}],
            "tasks": [_task("only", "hello.py", "{{job.parameters.greeting}}")],
        }
    )
    operator = DatabricksRunNowOperator(
        task_id="floe_ok",
        databricks_conn_id=CONN_ID,
        job_id=job_id,  # sent as the string "<id>": Airflow stringifies numbers
        job_parameters={"greeting": "bonjour"},
        polling_period_seconds=POLL_SECONDS,
        databricks_retry_limit=2,
    )
    context, ti = _context()
    operator.execute(context)

    run_id = operator.run_id
    assert ti.xcom["run_id"] == run_id
    assert ti.xcom["run_page_url"] == hook.get_run_page_url(run_id)
    assert hook.get_run_state(run_id).is_successful
    only = _by_key(hook.get_run(run_id))["only"][-1]
    assert hook.get_run_output(only["run_id"])["logs"].strip() == "hello bonjour"


def test_run_now_operator_raises_on_a_job_that_fails(scripts: Floe, hook: DatabricksHook) -> None:
    job_id = hook.create_job(
        {
            "name": _name("af-op-fail"),
            "tasks": [_task("ok", "hello.py"), _task("broken", "fail.py", depends_on=("ok",))],
        }
    )
    operator = DatabricksRunNowOperator(
        task_id="floe_fail",
        databricks_conn_id=CONN_ID,
        job_id=job_id,
        polling_period_seconds=POLL_SECONDS,
        databricks_retry_limit=2,
    )
    context, _ = _context()
    # The operator reads runs/get-output of every FAILED task and puts its `error` in the message.
    with pytest.raises(Exception, match="floe_fail failed with terminal state") as failure:
        operator.execute(context)
    message = str(failure.value)
    assert "'task_key': 'broken'" in message
    assert "ValueError: boom" in message
    assert "'task_key': 'ok'" not in message
    assert hook.get_run_state(operator.run_id).result_state == "FAILED"


def test_run_now_operator_repair_run_reruns_the_failed_task(scripts: Floe, hook: DatabricksHook) -> None:
    """With `repair_run=True` the operator repairs a FAILED run once (rerun_all_failed_tasks, the job
    parameters again) and polls the original run id. Provider 7.23.0 still raises the first failure after
    a successful repair (the Airflow task fails; its retry starts a new run), so the run is checked here."""
    marker = scripts.workspace / "markers" / uuid.uuid4().hex
    marker.parent.mkdir(parents=True, exist_ok=True)
    job_id = hook.create_job(
        {
            "name": _name("af-op-repair"),
            "parameters": [{"name": "day", "default": "monday"}],
            "tasks": [
                _task("ok", "hello.py"),
                _task("flaky", "fails_once.py", str(marker), "{{job.parameters.day}}", depends_on=("ok",)),
            ],
        }
    )
    operator = DatabricksRunNowOperator(
        task_id="floe_repair",
        databricks_conn_id=CONN_ID,
        job_id=job_id,
        job_parameters={"day": "tuesday"},
        repair_run=True,
        polling_period_seconds=POLL_SECONDS,
        databricks_retry_limit=2,
    )
    context, _ = _context()
    with pytest.raises(Exception, match="floe_repair failed with terminal state") as failure:
        operator.execute(context)
    assert "first attempt fails" in str(failure.value)

    run_id = operator.run_id
    assert _wait_terminal(hook, run_id).is_successful
    assert hook.get_latest_repair_id(run_id) is not None
    flaky = _by_key(hook.get_run(run_id))["flaky"]
    assert [t["state"]["result_state"] for t in flaky] == ["FAILED", "SUCCESS"]
    assert hook.get_run_output(flaky[-1]["run_id"])["logs"].strip() == "second attempt tuesday"
