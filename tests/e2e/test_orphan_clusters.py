"""No job cluster outlives its run: not when the host running it dies, not when the run is cancelled.

Real Spark: each test starts a local job cluster (a Spark Connect server JVM) for a task that sleeps on it.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from core.clusters import job_cluster_id
from core.compute.clusters import ClusterState
from core.engine.states import LifeCycle, Result
from core.handlers import Floe
from core.messages import WORK_QUEUE
from core.model import validate_job_settings, validate_run_now
from core.runtime.host import LocalHost
from core.settings import Settings
from core.store import Storage
from core.upkeep import HOST_DEAD_MS, RECONCILE_MS
from tests.fixtures.processes import processes_naming
from tests.fixtures.services import service_missing

pytestmark = [pytest.mark.spark, pytest.mark.timeout(300)]

SLEEPER = """
import os, time
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
assert spark.range(10).count() == 10
with open({pid_file!r} + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace({pid_file!r} + ".tmp", {pid_file!r})
time.sleep(600)
"""


@pytest.fixture(autouse=True)
def _java() -> None:
    if shutil.which("java") is None:
        service_missing("Java")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait(what: str, condition: Callable[[], Any], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _job_settings(workspace: Path, pid_file: Path) -> dict[str, Any]:
    (workspace / "sleeper.py").write_text(SLEEPER.format(pid_file=str(pid_file)))
    return validate_job_settings(
        {
            "name": "sleeps-on-a-cluster",
            "job_clusters": [
                {
                    "job_cluster_key": "main",
                    "new_cluster": {
                        "spark_version": "15.4.x-scala2.12",
                        "num_workers": 1,
                        "spark_conf": {"spark.sql.shuffle.partitions": "1"},
                    },
                }
            ],
            "tasks": [
                {
                    "task_key": "sleep",
                    "job_cluster_key": "main",
                    "spark_python_task": {"python_file": "sleeper.py"},
                }
            ],
        }
    )


@pytest.fixture
def leftovers() -> Iterator[set[int]]:
    """Pids (process group leaders) the test may leave behind on failure; killed at teardown."""
    pids: set[int] = set()
    yield pids
    for pid in pids:
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


def test_a_dead_hosts_cluster_is_gone_after_the_next_tick(
    tmp_path: Path, sqlite_storage: Storage, leftovers: set[int]
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    pid_file = tmp_path / "task.pid"
    clock = FakeClock()
    host_a = Floe(
        Settings(home=tmp_path / "home-a", workspace=workspace), sqlite_storage, clock=clock, host_id="host-a"
    )
    host_a.tick()  # its heartbeat
    job_id = host_a.create_job(_job_settings(workspace, pid_file), creator="me")
    run = host_a.run_now(validate_run_now({"job_id": job_id}), creator="me")
    cluster_id = job_cluster_id(run.run_id, "main")

    # Host A's worker: take the task.start message and handle it (starts the cluster, then the task).
    queue = sqlite_storage.queues.queue(WORK_QUEUE)
    messages = _wait("the task.start message", lambda: queue.receive(max_messages=1, visibility_timeout=600))
    host_a.handle_message(messages[0].body)
    queue.delete(messages[0])

    task_pid = int(_wait("the task to use Spark", lambda: pid_file.exists() and pid_file.read_text()))
    leftovers.add(task_pid)
    cluster = host_a.clusters.get(cluster_id)
    assert cluster.state is ClusterState.RUNNING and cluster.owner_host == "host-a"
    assert cluster.handle is not None and cluster.handle.processes
    leftovers.update(p.pgid for p in cluster.handle.processes)
    jvms = processes_naming({cluster_id})
    assert jvms, "the cluster's JVM should be running"
    task = host_a.get_run(run.run_id).tasks[0]
    assert task.life_cycle is LifeCycle.RUNNING and task.lease_owner == "host-a"

    # Host A dies without cleaning up: nothing watches its processes any more, none is killed.
    assert host_a.executor is not None
    host_a.executor.supervisor.close(kill=False)
    host_a.provider.close()
    del host_a
    assert all(_alive(pid) for pid in jvms) and _alive(task_pid)

    host_b = Floe(
        Settings(home=tmp_path / "home-b", workspace=workspace),
        sqlite_storage,
        clock=clock,
        host_id="host-b",
        run_tasks=False,
    )
    clock.advance(seconds=(HOST_DEAD_MS + RECONCILE_MS) / 1000 + 1)
    report = host_b.tick()

    assert report.lost == 1
    ended = host_b.get_run(run.run_id)
    assert ended.run.result is Result.FAILED
    assert "host-a" in (ended.tasks[0].state_message + (ended.tasks[0].error or ""))
    assert host_b.clusters.get(cluster_id).state is ClusterState.TERMINATED
    assert not [pid for pid in jvms if _alive(pid)]
    assert not processes_naming({cluster_id})


def test_cancelling_a_run_leaves_no_spark_behind(tmp_path: Path, leftovers: set[int]) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    pid_file = tmp_path / "task.pid"
    host = LocalHost(Settings(home=tmp_path / "home", workspace=workspace, workers=2))
    host.start()
    floe = host.floe
    try:
        job_id = floe.create_job(_job_settings(workspace, pid_file), creator="me")
        run = floe.run_now(validate_run_now({"job_id": job_id}), creator="me")
        cluster_id = job_cluster_id(run.run_id, "main")
        task_pid = int(_wait("the task to use Spark", lambda: pid_file.exists() and pid_file.read_text()))
        leftovers.add(task_pid)
        cluster = floe.clusters.get(cluster_id)
        assert cluster.state is ClusterState.RUNNING and cluster.handle is not None
        leftovers.update(p.pgid for p in cluster.handle.processes)
        jvms = processes_naming({cluster_id})
        assert jvms
        assert floe.get_run(run.run_id).tasks[0].life_cycle is LifeCycle.RUNNING

        floe.cancel_run(run.run_id)

        ended = _wait("the run to end", lambda: (v := floe.get_run(run.run_id)).run.is_final and v, 60)
        assert ended.run.result is Result.CANCELED
        cluster = _wait(
            "the cluster to terminate",
            lambda: (c := floe.clusters.get(cluster_id)).state is ClusterState.TERMINATED and c,
            60,
        )
        assert cluster.state is ClusterState.TERMINATED
        assert not _alive(task_pid)
        assert not [pid for pid in jvms if _alive(pid)]
        assert not processes_naming({cluster_id})
    finally:
        host.stop()
