"""The cluster service: all-purpose clusters (Clusters API) and job clusters (one per run and
`job_cluster_key`), persisted in the table `clusters` (PartitionKey `cluster`, RowKey the cluster id).

Every state change is a conditional write (ETag): the loser of a race re-reads and decides again. The host
that claims a cluster (`owner_host`) starts its processes, and only processes on this host can be killed
from here (`ClusterProvider.is_alive` is False for another host's); a cluster whose owner is gone is
cleaned up by `reap_orphans`, called from `tick`.

Ids: all-purpose clusters get Databricks-like ids (`MMDD-HHMMSS-xxxxxxxx`); a job cluster's id is derived
from its run and key (`job-<run id>-<sha256(key)[:12]>`), so every task of a run that names the key finds
the same record, and a run's clusters are one RowKey range.

Starting: `create` / `start` / `restart` return at once with the cluster PENDING / RESTARTING and start it
on a background thread (as Databricks does; `wait_until_running` waits). `ensure_job_cluster` starts it in
the calling thread, because the task that asked needs it before it can run.

Logs: each cluster's local log files are shipped to blobs `clusters/<cluster id>/<file>` when it stops or
fails to start (and by `ship_logs`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.clock import Clock, to_millis
from core.compute.clusters import (
    ClusterError,
    ClusterHandle,
    ClusterProvider,
    ClusterSource,
    ClusterSpec,
    ClusterState,
)
from core.compute.logs import LogShipper
from core.errors import InvalidState, NotFound, SchemaVersionError
from core.store.ports import BlobStore, Entity, EntityExists, EntityNotFound, EtagMismatch, TableStore
from core.telemetry import cluster_span, clusters_seen
from core.telemetry.names import CLUSTER_CREATE_SPAN, CLUSTER_TERMINATE_SPAN

__all__ = ["ClusterNotFound", "ClusterRecord", "ClusterService", "job_cluster_id", "task_environment"]

log = logging.getLogger(__name__)

TABLE = "clusters"
PARTITION = "cluster"
_VERSION = 1
_JOB_PREFIX = "job-"
_ALNUM = string.ascii_lowercase + string.digits
_WAIT_POLL_SECONDS = 0.5
_WAITING_FOR_RUNNER = "Waiting for a runner to start Spark"

# Every legal change of state; `_transition` refuses any other, naming both states.
_S = ClusterState
TRANSITIONS: dict[ClusterState, frozenset[ClusterState]] = {
    _S.PENDING: frozenset({_S.RUNNING, _S.ERROR, _S.TERMINATING, _S.TERMINATED}),
    _S.RUNNING: frozenset({_S.RESTARTING, _S.TERMINATING, _S.TERMINATED, _S.ERROR}),
    _S.RESTARTING: frozenset({_S.RUNNING, _S.ERROR, _S.TERMINATING, _S.TERMINATED}),
    _S.TERMINATING: frozenset({_S.TERMINATED}),
    _S.TERMINATED: frozenset({_S.PENDING}),
    _S.ERROR: frozenset({_S.PENDING, _S.TERMINATING, _S.TERMINATED}),
    _S.RESIZING: frozenset({_S.RUNNING, _S.TERMINATING, _S.TERMINATED}),
    _S.UNKNOWN: frozenset(set(_S)),
}


class ClusterNotFound(NotFound):
    """The Clusters API answers a missing cluster with 400 INVALID_PARAMETER_VALUE "Cluster X does not
    exist"; the Databricks SDK turns exactly that into `ResourceDoesNotExist` (errors/overrides.py)."""

    def __init__(self, cluster_id: str) -> None:
        super().__init__("Cluster", cluster_id)


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    """One cluster as stored. Times are epoch ms; `handle` holds endpoints and processes once started."""

    cluster_id: str
    spec: dict[str, Any]
    state: ClusterState
    cluster_source: ClusterSource
    creator: str = ""
    state_message: str = ""
    owner_host: str = ""
    run_id: int | None = None
    job_cluster_key: str | None = None
    start_time: int = 0
    terminated_time: int | None = None
    handle: ClusterHandle | None = None
    etag: str | None = field(default=None, compare=False)

    @property
    def parsed_spec(self) -> ClusterSpec:
        return ClusterSpec.from_dict(self.spec)

    @property
    def cluster_name(self) -> str:
        return str(self.spec.get("cluster_name") or "")

    @property
    def custom_tags(self) -> dict[str, str]:
        return dict(self.spec.get("custom_tags") or {})

    @property
    def spark_connect_url(self) -> str | None:
        return self.handle.spark_connect_url if self.handle else None

    @property
    def master_url(self) -> str | None:
        return self.handle.master_url if self.handle else None


def job_cluster_id(run_id: int, job_cluster_key: str) -> str:
    """The id of the job cluster `job_cluster_key` of run `run_id`: the same on every host and thread."""
    digest = hashlib.sha256(job_cluster_key.encode()).hexdigest()[:12]
    return f"{_JOB_PREFIX}{run_id}-{digest}"


def runs_elsewhere(record: ClusterRecord, host_id: str) -> bool:
    """Whether a cluster's processes run on another machine, owned by another host: a local cluster
    listens on that machine's loopback, so only tasks started there can reach it."""
    handle = record.handle
    if handle is None or handle.remote or not record.owner_host or record.owner_host == host_id:
        return False
    return not _on_this_machine(handle)


def task_environment(record: ClusterRecord) -> dict[str, str]:
    """What a task process on this cluster gets in its environment: `SPARK_REMOTE` for its Spark Connect
    endpoint (sessions of Python code and notebooks) and `FLOE_SPARK_MASTER` for its `spark://` master
    (what spark-submit and JAR tasks submit to), each when the cluster has it."""
    env = {}
    if record.spark_connect_url:
        env["SPARK_REMOTE"] = record.spark_connect_url
    if record.master_url:
        env["FLOE_SPARK_MASTER"] = record.master_url
    if not env:
        raise InvalidState(f"Cluster {record.cluster_id} is {record.state.value} and has no endpoint.")
    return env


class ClusterService:
    """Clusters over the storage ports and a `ClusterProvider`. Thread-safe."""

    def __init__(
        self,
        tables: TableStore,
        blobs: BlobStore,
        provider: ClusterProvider,
        clock: Clock,
        host_id: str,
        *,
        log_root: Path,
        wait_timeout: float = 300.0,
        grace_seconds: float = 10.0,
    ) -> None:
        self._table = tables.table(TABLE)
        self._blobs = blobs
        self._shipper = LogShipper(blobs)
        self._provider = provider
        self._clock = clock
        self.host_id = host_id
        self._log_root = log_root
        self._wait_timeout = wait_timeout
        self._grace = grace_seconds
        self._changed = threading.Condition()
        self._starting: set[str] = set()  # clusters this process is bringing up right now
        self._background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="floe-cluster-start")
        # Set on a host that runs no Spark itself (a dispatcher whose tasks run on runners): called as
        # hand_off(kind, cluster_id, owner) to pass a cluster's start to any runner ("cluster.start") and
        # a restart or termination to the runner that owns it ("cluster.restart", "cluster.terminate").
        self.hand_off: Callable[[str, str, str], None] | None = None

    def close(self) -> None:
        self._background.shutdown(wait=True)

    # ------------------------------------------------------------------------------------------- reads

    def get(self, cluster_id: str) -> ClusterRecord:
        """Raises `ClusterNotFound`."""
        record = self._read(cluster_id)
        if record is None:
            raise ClusterNotFound(cluster_id)
        return record

    def list(self) -> list[ClusterRecord]:
        """Every cluster, all-purpose and job, in cluster id order."""
        return [_decode(e) for e in self._table.scan(PARTITION)]

    # ------------------------------------------------------------------------------------------- Clusters API

    def create(self, spec: dict[str, Any], *, creator: str) -> str:
        """Store an all-purpose cluster (PENDING) and start it in the background; returns its id. A spec
        with `spark_connect_url` / `master_url` registers a remote cluster, RUNNING at once."""
        parsed = ClusterSpec.from_dict(spec, field_name="cluster")
        handed_off = self._hands_off(parsed)
        while True:
            cluster_id = self._new_id()
            record = ClusterRecord(
                cluster_id,
                dict(spec),
                ClusterState.PENDING,
                ClusterSource.API,
                creator=creator,
                owner_host="" if handed_off else self.host_id,
                start_time=self._now(),
                state_message=_WAITING_FOR_RUNNER if handed_off else "Starting Spark",
            )
            try:
                stored = self._insert(record)
                break
            except EntityExists:
                continue
        if handed_off:
            self.hand_off("cluster.start", cluster_id, "")  # type: ignore[misc]
        else:
            self._launch(stored, parsed, background=True)
        return cluster_id

    def start(self, cluster_id: str) -> None:
        """Start a TERMINATED (or ERROR) cluster again; a no-op for one that is PENDING or RUNNING."""
        record = self.get(cluster_id)
        if record.state in (ClusterState.PENDING, ClusterState.RUNNING, ClusterState.RESTARTING):
            return
        if not record.state.is_final:
            raise InvalidState(
                f"Cluster {cluster_id} is in unexpected state {record.state.value}; "
                "wait until it is TERMINATED."
            )
        if self._hands_off(record.parsed_spec):
            try:
                self._write(
                    replace(
                        record,
                        state=ClusterState.PENDING,
                        state_message=_WAITING_FOR_RUNNER,
                        owner_host="",
                        start_time=self._now(),
                        terminated_time=None,
                        handle=None,
                    )
                )
            except EtagMismatch:
                return  # started by another caller meanwhile
            self.hand_off("cluster.start", cluster_id, "")  # type: ignore[misc]
            return
        claimed = self._claim(record)
        if claimed is not None:
            self._launch(claimed, claimed.parsed_spec, background=True)

    def take_start(self, cluster_id: str) -> None:
        """A runner's part of a start handed off by a dispatcher: claim the cluster if it is still PENDING
        and unclaimed, and bring it up in the background. A duplicate message finds it claimed."""
        record = self._read(cluster_id)
        if record is None or record.state != ClusterState.PENDING or record.owner_host:
            return
        try:
            claimed = self._write(replace(record, owner_host=self.host_id, state_message="Starting Spark"))
        except EtagMismatch:
            return
        self._launch(claimed, claimed.parsed_spec, background=True)

    def restart(self, cluster_id: str) -> None:
        """Replace the processes of a RUNNING cluster (RESTARTING, then RUNNING); start a TERMINATED one."""
        record = self.get(cluster_id)
        if record.state.is_final:
            return self.start(cluster_id)
        if record.state != ClusterState.RUNNING:
            raise InvalidState(
                f"Cluster {cluster_id} is in unexpected state {record.state.value}; only a RUNNING or "
                "TERMINATED cluster can be restarted."
            )
        if self._hands_off(record.parsed_spec) and record.owner_host != self.host_id:
            self.hand_off("cluster.restart", cluster_id, record.owner_host)  # type: ignore[misc]
            return
        try:
            moved = self._transition(record, ClusterState.RESTARTING, "Restarting Spark", owner=self.host_id)
        except EtagMismatch:
            return self.restart(cluster_id)
        self._background.submit(self._restart, moved)

    def edit(self, cluster_id: str, spec: dict[str, Any]) -> None:
        """Replace the spec. A RUNNING cluster restarts with it; a TERMINATED one uses it when started."""
        ClusterSpec.from_dict(spec, field_name="cluster")
        while True:
            record = self.get(cluster_id)
            if record.state not in (ClusterState.RUNNING, ClusterState.TERMINATED, ClusterState.ERROR):
                raise InvalidState(
                    f"Cluster {cluster_id} is in unexpected state {record.state.value}; a cluster can be "
                    "edited when RUNNING or TERMINATED."
                )
            try:
                self._write(replace(record, spec=dict(spec)))
            except EtagMismatch:
                continue
            if record.state == ClusterState.RUNNING:
                self.restart(cluster_id)
            return

    def terminate(self, cluster_id: str, *, reason: str = "Terminated by request") -> None:
        """Terminate (Clusters API `delete`). Idempotent. Processes on this machine are killed now; another
        machine's cluster is left TERMINATING for its owner: told at once with `hand_off`, else at its
        next `reap_orphans`."""
        while True:
            record = self.get(cluster_id)
            if record.state == ClusterState.TERMINATED:
                return
            try:
                if record.state != ClusterState.TERMINATING:
                    record = self._transition(record, ClusterState.TERMINATING, reason)
            except EtagMismatch:
                continue
            if not self._finish_termination(record) and self.hand_off is not None:
                self.hand_off("cluster.terminate", cluster_id, record.owner_host)  # now, not at its reap
            return

    def permanent_delete(self, cluster_id: str) -> None:
        """Terminate and forget the cluster."""
        self.terminate(cluster_id)
        self._table.delete(PARTITION, cluster_id)
        with self._changed:
            self._changed.notify_all()

    def wait_until(
        self, cluster_id: str, states: Iterable[ClusterState], *, timeout: float | None = None
    ) -> ClusterRecord:
        """Poll the record until its state is one of `states`; ClusterError after `timeout` seconds."""
        wanted = frozenset(states)
        deadline = time.monotonic() + (self._wait_timeout if timeout is None else timeout)
        while True:
            record = self.get(cluster_id)
            if record.state in wanted:
                return record
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClusterError(
                    f"Cluster {cluster_id} is still {record.state.value} after waiting "
                    f"{self._wait_timeout if timeout is None else timeout:g} s."
                )
            with self._changed:
                self._changed.wait(min(left, _WAIT_POLL_SECONDS))

    # ------------------------------------------------------------------------------------------- job clusters

    def ensure_job_cluster(
        self, run_id: int, job_cluster_key: str, spec: dict[str, Any], *, creator: str = ""
    ) -> ClusterRecord:
        """The RUNNING job cluster `job_cluster_key` of run `run_id`, started if needed. Blocking.

        Concurrent callers (threads or hosts) share one cluster: the first insert claims it and starts
        Spark in its own thread; the others wait (bounded) until it is RUNNING. Raises `ClusterError`
        when it goes to ERROR (with the Spark log tail) or does not come up in time. A cluster found
        TERMINATED or ERROR by the first read (a repair or retry after the run's clusters ended) is
        claimed again and restarted.
        """
        cluster_id = job_cluster_id(run_id, job_cluster_key)
        parsed = ClusterSpec.from_dict(spec)
        record = self._read(cluster_id)
        if record is None:
            fresh = ClusterRecord(
                cluster_id,
                dict(spec),
                ClusterState.PENDING,
                ClusterSource.JOB,
                creator=creator,
                owner_host=self.host_id,
                run_id=run_id,
                job_cluster_key=job_cluster_key,
                start_time=self._now(),
                state_message="Starting Spark",
            )
            try:
                record = self._insert(fresh)
                with cluster_span(CLUSTER_CREATE_SPAN, cluster_id, run_id=run_id, host_id=self.host_id):
                    return self._launch(record, parsed, background=False)
            except EntityExists:
                record = self.get(cluster_id)
        if record.state.is_final:
            claimed = self._claim(replace(record, spec=dict(spec)))
            if claimed is not None:
                with cluster_span(CLUSTER_CREATE_SPAN, cluster_id, run_id=run_id, host_id=self.host_id):
                    return self._launch(claimed, parsed, background=False)
        record = self.wait_until(
            cluster_id, (ClusterState.RUNNING, ClusterState.ERROR, ClusterState.TERMINATED)
        )
        if record.state != ClusterState.RUNNING:
            raise ClusterError(
                f"Job cluster {job_cluster_key!r} of run {run_id} is {record.state.value}: "
                f"{record.state_message}"
            )
        return record

    def run_clusters(self, run_id: int) -> list[ClusterRecord]:
        prefix = f"{_JOB_PREFIX}{run_id}-"
        return [_decode(e) for e in self._table.scan(PARTITION, row_key_from=prefix, row_key_to=prefix + "~")]

    def terminate_run_clusters(
        self, run_id: int, *, reason: str = "The run ended", traceparent: str | None = None
    ) -> None:
        """Terminate every job cluster of the run. Idempotent; call when the run ends, however it ends.
        `traceparent`: the run's trace context, the parent of the termination spans."""
        for record in self.run_clusters(run_id):
            if record.state != ClusterState.TERMINATED:
                with cluster_span(
                    CLUSTER_TERMINATE_SPAN,
                    record.cluster_id,
                    run_id=run_id,
                    host_id=self.host_id,
                    traceparent=traceparent,
                ):
                    self.terminate(record.cluster_id, reason=reason)

    def reap_orphans(self, active_run_ids: Iterable[int], live_hosts: Iterable[str]) -> list[str]:
        """Terminate what nobody will terminate: job clusters whose run is no longer active, clusters whose
        owning host is gone, and TERMINATING clusters owned by this host. Processes still alive on this
        host are killed. Returns the ids of the clusters it terminated. Meant for `tick`."""
        active = set(active_run_ids)
        hosts = {*live_hosts, self.host_id}
        reaped = []
        records = self.list()
        clusters_seen(sum(1 for r in records if not r.state.is_final))
        for record in records:
            if record.state == ClusterState.TERMINATED:
                continue
            orphan = record.cluster_source == ClusterSource.JOB and record.run_id not in active
            host_gone = record.owner_host not in hosts
            mine_to_finish = record.state == ClusterState.TERMINATING and record.owner_host == self.host_id
            if record.state == ClusterState.ERROR and not orphan:
                continue
            if record.state == ClusterState.PENDING and not record.owner_host and not orphan:
                continue  # handed off, waiting for a runner to take it
            if orphan or host_gone or mine_to_finish:
                why = "The run is no longer active" if orphan else "The host that ran it is gone"
                try:
                    self._take_over_and_terminate(record, why)
                    reaped.append(record.cluster_id)
                except (EtagMismatch, EntityNotFound):
                    continue  # someone else changed it; the next tick looks again
        return reaped

    def ship_logs(self, record: ClusterRecord) -> None:
        """Copy the cluster's local log files (on this host) to `clusters/<id>/<file>`."""
        if record.handle is None or record.handle.log_dir is None:
            return
        folder = Path(record.handle.log_dir)
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.log")):
            try:
                self._shipper.ship(path, f"clusters/{record.cluster_id}/{path.name}")
            except Exception:
                log.exception("cannot ship the log %s of cluster %s", path, record.cluster_id)

    # ------------------------------------------------------------------------------------------- internals

    def _hands_off(self, spec: ClusterSpec) -> bool:
        return self.hand_off is not None and not spec.is_remote

    def _launch(self, record: ClusterRecord, spec: ClusterSpec, *, background: bool) -> ClusterRecord:
        if spec.is_remote:
            handle = self._provider.register_remote(record.cluster_id, spec)
            return self._commit_started(record, handle)
        if background:
            self._background.submit(self._bring_up_logged, record, spec)
            return record
        return self._bring_up(record, spec)

    def _bring_up_logged(self, record: ClusterRecord, spec: ClusterSpec) -> None:
        try:
            self._bring_up(record, spec)
        except ClusterError:
            pass  # recorded as ERROR
        except Exception:
            log.exception("starting cluster %s failed", record.cluster_id)

    def _bring_up(self, record: ClusterRecord, spec: ClusterSpec) -> ClusterRecord:
        """Start the processes of a claimed record and move it to RUNNING (or ERROR). If the record was
        terminated meanwhile, kill what was started and leave it TERMINATED."""
        with self._changed:
            self._starting.add(record.cluster_id)
        try:
            return self._bring_up_claimed(record, spec)
        finally:
            with self._changed:
                self._starting.discard(record.cluster_id)

    def _bring_up_claimed(self, record: ClusterRecord, spec: ClusterSpec) -> ClusterRecord:
        current = [record]
        log_dir = self._log_root / record.cluster_id / str(self._now())

        def persist(handle: ClusterHandle) -> None:
            # The processes exist: write them down so a crash of this host leaves them findable.
            try:
                current[0] = self._write(replace(current[0], handle=handle))
            except EtagMismatch:
                pass  # terminated meanwhile; the commit below notices

        try:
            handle = self._provider.create(record.cluster_id, spec, log_dir, on_started=persist)
        except ClusterError as exc:
            failed = self._settle(current[0], ClusterState.ERROR, exc.message, None)
            if failed is not None:
                self.ship_logs(
                    replace(failed, handle=ClusterHandle(record.cluster_id, None, log_dir=str(log_dir)))
                )
            raise
        return self._commit_started(current[0], handle)

    def _commit_started(self, record: ClusterRecord, handle: ClusterHandle) -> ClusterRecord:
        started = self._settle(record, ClusterState.RUNNING, "", handle)
        if started is None or started.state != ClusterState.RUNNING:
            self._provider.terminate(handle, grace_seconds=0)
            raise ClusterError(f"Cluster {record.cluster_id} was terminated while it was starting.")
        return started

    def _settle(
        self, record: ClusterRecord, state: ClusterState, message: str, handle: ClusterHandle | None
    ) -> ClusterRecord | None:
        """Move a starting record to `state`; if it was asked to terminate meanwhile, make it TERMINATED
        instead. Returns the stored record (None if it was deleted)."""
        while True:
            if record.state == ClusterState.TERMINATING:
                if handle is not None:
                    self._provider.terminate(handle, grace_seconds=0)
                state, message = ClusterState.TERMINATED, record.state_message
            if record.state.is_final and record.state != state:
                if handle is not None:
                    self._provider.terminate(handle, grace_seconds=0)
                return record
            try:
                return self._transition(record, state, message, handle=handle or record.handle)
            except EtagMismatch:
                latest = self._read(record.cluster_id)
                if latest is None:
                    if handle is not None:
                        self._provider.terminate(handle, grace_seconds=0)
                    return None
                record = latest

    def _restart(self, record: ClusterRecord) -> None:
        if record.handle is not None:
            self._provider.terminate(record.handle, grace_seconds=self._grace)
            self.ship_logs(record)
        self._bring_up_logged(record, record.parsed_spec)

    def _claim(self, record: ClusterRecord) -> ClusterRecord | None:
        """Take a TERMINATED / ERROR record back to PENDING on this host; None if another caller did."""
        try:
            return self._transition(
                replace(record, start_time=self._now(), terminated_time=None, handle=None),
                ClusterState.PENDING,
                "Starting Spark",
                owner=self.host_id,
            )
        except EtagMismatch:
            return None

    def _finish_termination(self, record: ClusterRecord) -> bool:
        """Kill what runs of it on this machine and mark it TERMINATED. A cluster still starting in this
        process is finished by its starter (it sees TERMINATING); a live cluster of another machine is left
        TERMINATING for its owner (False), whose `reap_orphans` ends it (or anyone's, once that host is
        gone) unless a `cluster.terminate` reaches it first."""
        with self._changed:
            if record.cluster_id in self._starting:
                return True
        handle = record.handle
        if handle is not None and not handle.remote:
            if not _on_this_machine(handle) and record.owner_host != self.host_id:
                return False
            self._provider.terminate(handle, grace_seconds=self._grace)
        self._mark_terminated(record)
        return True

    def _take_over_and_terminate(self, record: ClusterRecord, reason: str) -> None:
        if record.state != ClusterState.TERMINATING:
            record = self._transition(record, ClusterState.TERMINATING, reason)
        if record.handle is not None:
            self._provider.terminate(record.handle, grace_seconds=self._grace)
        self._mark_terminated(record)

    def _mark_terminated(self, record: ClusterRecord) -> None:
        while True:
            try:
                done = self._transition(record, ClusterState.TERMINATED, record.state_message)
            except EtagMismatch:
                latest = self._read(record.cluster_id)
                if latest is None or latest.state == ClusterState.TERMINATED:
                    return
                record = latest
                continue
            except EntityNotFound:
                return
            self.ship_logs(done)
            return

    def _transition(
        self,
        record: ClusterRecord,
        state: ClusterState,
        message: str,
        *,
        handle: ClusterHandle | None = None,
        owner: str | None = None,
    ) -> ClusterRecord:
        if state != record.state and state not in TRANSITIONS[record.state]:
            raise InvalidState(
                f"Cluster {record.cluster_id} cannot go from {record.state.value} to {state.value}."
            )
        changed = replace(
            record,
            state=state,
            state_message=message,
            handle=handle if handle is not None else record.handle,
            owner_host=owner or record.owner_host,
            terminated_time=self._now() if state == ClusterState.TERMINATED else record.terminated_time,
        )
        return self._write(changed)

    def _read(self, cluster_id: str) -> ClusterRecord | None:
        entity = self._table.get(PARTITION, cluster_id)
        return None if entity is None else _decode(entity)

    def _insert(self, record: ClusterRecord) -> ClusterRecord:
        stored = self._table.insert(_encode(record))
        self._notify()
        return replace(record, etag=stored.etag)

    def _write(self, record: ClusterRecord) -> ClusterRecord:
        stored = self._table.replace(_encode(record))
        self._notify()
        return replace(record, etag=stored.etag)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _now(self) -> int:
        return to_millis(self._clock.now())

    def _new_id(self) -> str:
        now = self._clock.now()
        suffix = "".join(secrets.choice(_ALNUM) for _ in range(8))
        return f"{now:%m%d-%H%M%S}-{suffix}"


# ------------------------------------------------------------------------------------------------ codec


def _encode(record: ClusterRecord) -> Entity:
    props: dict[str, Any] = {
        "v": _VERSION,
        "cluster_name": record.cluster_name,
        "state": record.state.value,
        "state_message": record.state_message[:30_000],
        "spec": json.dumps(record.spec, separators=(",", ":")),
        "cluster_source": record.cluster_source.value,
        "creator": record.creator,
        "owner_host": record.owner_host,
        "run_id": record.run_id,
        "job_cluster_key": record.job_cluster_key,
        "start_time": record.start_time,
        "terminated_time": record.terminated_time,
        "custom_tags": json.dumps(record.custom_tags, separators=(",", ":")),
        "spark_connect_url": record.spark_connect_url,
        "master_url": record.master_url,
        "handle": record.handle.to_json() if record.handle else None,
    }
    return Entity(
        PARTITION, record.cluster_id, {k: v for k, v in props.items() if v is not None}, record.etag
    )


def _decode(entity: Entity) -> ClusterRecord:
    version = int(entity.get("v", 1))
    if version > _VERSION:
        raise SchemaVersionError(
            f"Cluster {entity.row_key} was written by a newer Floe (record version {version} > {_VERSION})."
        )
    handle = entity.get("handle")
    run_id = entity.get("run_id")
    terminated = entity.get("terminated_time")
    return ClusterRecord(
        cluster_id=entity.row_key,
        spec=json.loads(entity["spec"]),
        state=ClusterState(entity["state"]),
        cluster_source=ClusterSource(entity["cluster_source"]),
        creator=str(entity.get("creator", "")),
        state_message=str(entity.get("state_message", "")),
        owner_host=str(entity.get("owner_host", "")),
        run_id=None if run_id is None else int(run_id),
        job_cluster_key=entity.get("job_cluster_key"),
        start_time=int(entity.get("start_time", 0)),
        terminated_time=None if terminated is None else int(terminated),
        handle=ClusterHandle.from_json(handle) if handle else None,
        etag=entity.etag,
    )


_BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def _on_this_machine(handle: ClusterHandle) -> bool:
    """Whether the cluster's processes were started in this boot of this machine (so /proc can see them)."""
    try:
        boot_id = _BOOT_ID_PATH.read_text().strip()
    except OSError:
        return False
    return bool(handle.processes) and all(p.boot_id == boot_id for p in handle.processes)
