"""Queues deliver at least once: every handler must be idempotent, and hosts sharing a storage account
must never run one task twice."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs

from core.handlers import Floe
from core.runtime.host import LocalHost, storage_from
from core.settings import Settings
from core.store import Storage
from tests.fixtures.server import TOKEN, free_port, start_server

pytestmark = pytest.mark.timeout(180)

RECORDER = """
import os, sys
with open(sys.argv[1], "a") as f:
    f.write(os.environ["FLOE_TASK_KEY"] + " " + os.environ["FLOE_RUN_ID"] + "\\n")
"""


class _TwiceQueue:
    """A queue that sends every message twice, as an at-least-once queue may deliver it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def send(self, body: str, *, delay_seconds: float = 0) -> None:
        self._inner.send(body, delay_seconds=delay_seconds)
        self._inner.send(body, delay_seconds=delay_seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _TwiceQueues:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def queue(self, name: str) -> Any:
        return _TwiceQueue(self._inner.queue(name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _fan_job(w: WorkspaceClient, log: Path, *, width: int) -> int:
    tasks = [
        jobs.Task(task_key="root", spark_python_task=jobs.SparkPythonTask("record.py", parameters=[str(log)]))
    ]
    for i in range(width):
        tasks.append(
            jobs.Task(
                task_key=f"leaf{i}",
                depends_on=[jobs.TaskDependency("root")],
                spark_python_task=jobs.SparkPythonTask("record.py", parameters=[str(log)]),
            )
        )
    tasks.append(
        jobs.Task(
            task_key="join",
            depends_on=[jobs.TaskDependency(f"leaf{i}") for i in range(width)],
            spark_python_task=jobs.SparkPythonTask("record.py", parameters=[str(log)]),
        )
    )
    return w.jobs.create(name="fan", tasks=tasks, max_concurrent_runs=100).job_id


def test_every_message_delivered_twice_runs_each_task_once(tmp_path: Path, databricks_env: None) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "record.py").write_text(RECORDER)
    settings = Settings(
        home=tmp_path / "home", admin_token=TOKEN, workspace=workspace, port=free_port(), workers=4
    )
    plain = storage_from(settings)
    doubled = Storage(tables=plain.tables, queues=_TwiceQueues(plain.queues), blobs=plain.blobs)  # type: ignore[arg-type]
    server, thread, runtime = start_server(settings, LocalHost(settings, Floe(settings, doubled)))
    try:
        w = WorkspaceClient(host=f"http://127.0.0.1:{settings.port}", token=TOKEN)
        log = tmp_path / "executions.txt"
        job_id = _fan_job(w, log, width=4)
        waiters = [w.jobs.run_now(job_id) for _ in range(3)]
        runs = [waiter.result(timeout=timedelta(seconds=90)) for waiter in waiters]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
    assert all(r.state.result_state == jobs.RunResultState.SUCCESS for r in runs)
    executions = Counter(log.read_text().splitlines())
    expected = {
        f"{key} {r.run_id}" for r in runs for key in ["root", "join"] + [f"leaf{i}" for i in range(4)]
    }
    assert set(executions) == expected
    assert set(executions.values()) == {1}


RUNS = 50


@pytest.mark.azurite
def test_two_hosts_on_one_azure_account_share_the_work(
    tmp_path: Path, azurite: str, databricks_env: None
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "record.py").write_text(RECORDER)
    prefix = "two" + tmp_path.name[-8:].replace("_", "").lower()[:8]
    hosts = []
    for name in ("a", "b"):
        settings = Settings(
            home=tmp_path / name,
            storage="azure",
            azure_connection_string=azurite,
            storage_prefix=prefix,
            admin_token=TOKEN,
            workspace=workspace,
            port=free_port(),
            workers=3,
        )
        hosts.append((settings, *start_server(settings)))
    try:
        log = tmp_path / "executions.txt"
        first = WorkspaceClient(host=f"http://127.0.0.1:{hosts[0][0].port}", token=TOKEN)
        second = WorkspaceClient(host=f"http://127.0.0.1:{hosts[1][0].port}", token=TOKEN)
        job_id = _fan_job(first, log, width=2)
        waiters = [(first if i % 2 else second).jobs.run_now(job_id) for i in range(RUNS)]
        runs = [waiter.result(timeout=timedelta(seconds=150)) for waiter in waiters]
        floe = hosts[0][3].floe
        owners = {t.lease_owner for r in runs for t in floe.get_run(r.run_id).tasks}
    finally:
        for _, server, thread, runtime in hosts:
            server.should_exit = True
            thread.join(timeout=10)
            runtime.stop()
    assert all(r.state.result_state == jobs.RunResultState.SUCCESS for r in runs)
    executions = Counter(log.read_text().splitlines())
    assert len(executions) == RUNS * 4
    assert set(executions.values()) == {1}
    assert owners == {runtime.floe.host_id for _, _, _, runtime in hosts}  # both hosts did some of the work
