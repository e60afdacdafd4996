"""The local cluster provider and the cluster service over real Spark (Java 17 + pyspark).

JVMs cost seconds each on a small machine, so these tests start two clusters in all: one the provider
makes directly, one the service makes for two racing tasks. A failing start costs no JVM (it exits at once).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import SystemClock
from core.clusters import ClusterService, job_cluster_id, task_environment
from core.compute.clusters import ClusterError, ClusterHandle, ClusterSpec, ClusterState
from core.compute.local_spark import LocalSparkProvider
from core.compute.process import process_alive
from core.store import Storage, open_storage
from tests.fixtures.services import service_missing

pytestmark = [pytest.mark.spark, pytest.mark.timeout(300)]

SUM_SCRIPT = (
    "from pyspark.sql import SparkSession\n"
    "spark = SparkSession.builder.getOrCreate()\n"
    "print('SUM', spark.range(10).groupBy().sum('id').collect()[0][0])\n"
)


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalSparkProvider]:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        service_missing("Java")
    p = LocalSparkProvider(start_timeout=180)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Storage]:
    s = open_storage("sqlite", root=tmp_path / "store")
    try:
        yield s
    finally:
        s.close()


class CountingProvider:
    """The real provider, counting the clusters it starts."""

    def __init__(self, inner: LocalSparkProvider) -> None:
        self.inner = inner
        self.created: list[str] = []
        self._lock = threading.Lock()

    def create(self, cluster_id, spec, log_dir, *, on_started=None):  # type: ignore[no-untyped-def]
        with self._lock:
            self.created.append(cluster_id)
        return self.inner.create(cluster_id, spec, log_dir, on_started=on_started)

    def register_remote(self, cluster_id: str, spec: ClusterSpec) -> ClusterHandle:
        return self.inner.register_remote(cluster_id, spec)

    def is_alive(self, handle: ClusterHandle) -> bool:
        return self.inner.is_alive(handle)

    def terminate(self, handle: ClusterHandle, *, grace_seconds: float = 10) -> None:
        self.inner.terminate(handle, grace_seconds=grace_seconds)


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != b"Z":
                members.append(int(entry))
    return members


def run_sum(url: str) -> str:
    env = {**os.environ, "SPARK_REMOTE": url}
    done = subprocess.run(
        [sys.executable, "-c", SUM_SCRIPT], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_local_cluster_serves_spark_connect_and_leaves_no_process(
    provider: LocalSparkProvider, tmp_path: Path
) -> None:
    spec = ClusterSpec.from_dict(
        {"num_workers": 2, "spark_conf": {"spark.sql.shuffle.partitions": "3"}, "spark_env_vars": {"X": "1"}}
    )
    began = time.monotonic()
    handle = provider.create("c-test", spec, tmp_path / "logs")
    print(f"cluster up in {time.monotonic() - began:.1f} s")
    assert handle.spark_connect_url and handle.spark_connect_url.startswith("sc://127.0.0.1:")
    assert provider.is_alive(handle)
    restored = ClusterHandle.from_json(handle.to_json())
    assert restored == handle

    assert "SUM 45" in run_sum(handle.spark_connect_url)

    pgids = [p.pgid for p in handle.processes]
    began = time.monotonic()
    provider.terminate(restored, grace_seconds=10)
    print(f"cluster down in {time.monotonic() - began:.1f} s")
    assert not provider.is_alive(handle)
    assert not any(process_alive(p) for p in handle.processes)
    assert all(group_members(g) == [] for g in pgids)
    provider.terminate(handle)  # idempotent
    assert (tmp_path / "logs" / "driver.log").stat().st_size > 0


def test_racing_tasks_share_one_job_cluster_and_reap_ends_it(
    provider: LocalSparkProvider, store: Storage, tmp_path: Path
) -> None:
    counting = CountingProvider(provider)
    service = ClusterService(
        store.tables, store.blobs, counting, SystemClock(), "host-a", log_root=tmp_path / "clusters"
    )
    spec = {"num_workers": 1, "spark_version": "15.4.x-scala2.12", "custom_tags": {"team": "data"}}
    results: list[object] = []

    def task() -> None:
        try:
            results.append(service.ensure_job_cluster(42, "shared", spec))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=task) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(200)
    assert len(counting.created) == 1
    ids = {getattr(r, "cluster_id", r) for r in results}
    assert ids == {job_cluster_id(42, "shared")}
    record = service.get(job_cluster_id(42, "shared"))
    assert record.state == ClusterState.RUNNING and record.owner_host == "host-a"
    assert record.custom_tags == {"team": "data"} and record.run_id == 42
    assert "SUM 45" in run_sum(task_environment(record)["SPARK_REMOTE"])

    # The run is still active and the host alive: nothing to reap.
    assert service.reap_orphans([42], ["host-a"]) == []
    # Then the run is gone (its host died before RunFinished): the next tick's reap terminates it.
    assert record.handle is not None
    assert service.reap_orphans([], ["host-a"]) == [record.cluster_id]
    done = service.get(record.cluster_id)
    assert done.state == ClusterState.TERMINATED and done.terminated_time
    assert not any(process_alive(p) for p in record.handle.processes)
    assert all(group_members(p.pgid) == [] for p in record.handle.processes)
    assert store.blobs.stat(f"clusters/{record.cluster_id}/driver.log") is not None
    service.terminate_run_clusters(42)  # idempotent
    service.close()


def test_a_start_that_fails_gives_error_with_the_log_tail(
    provider: LocalSparkProvider, store: Storage, tmp_path: Path
) -> None:
    service = ClusterService(
        store.tables, store.blobs, provider, SystemClock(), "host-a", log_root=tmp_path / "clusters"
    )
    spec = {"num_workers": 1, "spark_conf": {"spark.driver.memory": "lots"}}
    with pytest.raises(ClusterError, match=r"(?s)exited with code 1 while starting.*-Xmxlots"):
        service.ensure_job_cluster(7, "bad", spec)
    record = service.get(job_cluster_id(7, "bad"))
    assert record.state == ClusterState.ERROR
    assert "Invalid maximum heap size" in record.state_message
    blob = store.blobs.get(f"clusters/{record.cluster_id}/driver.log")
    assert blob is not None and b"-Xmxlots" in blob.data
    service.terminate_run_clusters(7)
    assert service.get(record.cluster_id).state == ClusterState.TERMINATED
    service.close()
