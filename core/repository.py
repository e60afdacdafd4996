"""Where Floe's state lives in the storage ports, and the reads and writes the handlers make.

Tables, as PartitionKey / RowKey -> what the entity holds:

- jobs: `job` / job id -> name, spec_ref, created time, creator.
- runs: run id / `r` for the run and `t<task run id>` per attempt. One partition per run, so one query
  reads a run and one batch commits an engine step.
- runindex: `j<job id>` and `all` / inverted created ms + run id -> run id: newest-first listing.
- taskref: task run id >> 14 / task run id -> the run it belongs to. Ids made together (one run's tasks)
  share a partition, so a run's references are written in one batch.
- active: `run` / run id -> runs not final yet: what `tick` reconciles.
- idem: sha256(scope, token) / `t` -> the run an idempotency token started.
- meta: `token` or `host` / token hash or host id -> API tokens (hashes only), host heartbeats.

Job settings and run specs are JSON blobs addressed by their content hash (`specs/<sha256>.json`): a job
points at its current settings, and each run at the settings it executes, so starting a run copies a
reference instead of writing the settings again. Specs are immutable, so a process caches them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from core.codec import SCHEMA_VERSION, decode, encode
from core.engine.records import Run, TaskRun
from core.errors import JobNotFound, RunNotFound, SchemaVersionError
from core.store import BatchFailed, BatchOp, BlobExists, Entity, EntityExists, Storage

JOB_PARTITION = "job"
RUN_ROW = "r"
_TASKREF_SHIFT = 14
_INVERT = 10**13 - 1
_BATCH = 100


def _pad(number: int) -> str:
    return f"{number:016d}"


def run_partition(run_id: int) -> str:
    return _pad(run_id)


def task_row(task_run_id: int) -> str:
    return f"t{_pad(task_run_id)}"


def index_row(created_ms: int, run_id: int) -> str:
    return f"{_INVERT - created_ms:013d}{_pad(run_id)}"


@dataclass(frozen=True, slots=True)
class StoredJob:
    job_id: int
    name: str
    spec_ref: str
    created_time: int
    creator_user_name: str
    run_as_user_name: str
    etag: str | None = None


@dataclass(frozen=True)
class RunState:
    """A run as read in one partition query: the run, every task attempt by id, and their ETags."""

    run: Run
    tasks: dict[int, TaskRun]
    etags: dict[str, str]  # RowKey -> ETag of what was read


class Repository:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        tables = storage.tables
        self.jobs = tables.table("jobs")
        self.runs = tables.table("runs")
        self.runindex = tables.table("runindex")
        self.taskref = tables.table("taskref")
        self.active = tables.table("active")
        self.idem = tables.table("idem")
        self.meta = tables.table("meta")
        self.blobs = storage.blobs
        self._specs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._specs_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ specs

    def save_spec(self, settings: dict[str, Any]) -> str:
        """Store settings by content hash and return the reference (idempotent; cached)."""
        data = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ref = f"specs/{hashlib.sha256(data).hexdigest()}.json"
        with self._specs_lock:
            known = ref in self._specs
        if not known:
            try:
                self.blobs.put(ref, data, if_absent=True)
            except BlobExists:
                pass
            self._remember(ref, settings)
        return ref

    def load_spec(self, ref: str) -> dict[str, Any]:
        with self._specs_lock:
            spec = self._specs.get(ref)
            if spec is not None:
                self._specs.move_to_end(ref)
                return spec
        blob = self.blobs.get(ref)
        if blob is None:
            raise SchemaVersionError(f"the settings blob {ref} is missing from storage")
        spec = json.loads(blob.data)
        self._remember(ref, spec)
        return spec

    def _remember(self, ref: str, spec: dict[str, Any]) -> None:
        with self._specs_lock:
            self._specs[ref] = spec
            while len(self._specs) > 512:
                self._specs.popitem(last=False)

    # ------------------------------------------------------------------------------------------- jobs

    def insert_job(self, job: StoredJob) -> None:
        """Raises EntityExists if the id is taken (the caller draws another)."""
        self.jobs.insert(Entity(JOB_PARTITION, _pad(job.job_id), self._job_props(job)))

    def get_job(self, job_id: int) -> StoredJob:
        entity = self.jobs.get(JOB_PARTITION, _pad(job_id))
        if entity is None:
            raise JobNotFound(job_id)
        return self._job(entity)

    def replace_job(self, job: StoredJob) -> None:
        """Conditional on `job.etag`: EtagMismatch if it changed since it was read."""
        self.jobs.replace(Entity(JOB_PARTITION, _pad(job.job_id), self._job_props(job), job.etag))

    def delete_job(self, job_id: int) -> None:
        if self.jobs.get(JOB_PARTITION, _pad(job_id)) is None:
            raise JobNotFound(job_id)
        self.jobs.delete(JOB_PARTITION, _pad(job_id))

    def iter_jobs(self, after_job_id: int | None = None) -> Iterator[StoredJob]:
        """Jobs in ascending id order, starting after `after_job_id`."""
        start = _pad(after_job_id + 1) if after_job_id is not None else None
        for entity in self.jobs.scan(JOB_PARTITION, row_key_from=start):
            yield self._job(entity)

    @staticmethod
    def _job_props(job: StoredJob) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "name": job.name,
            "spec_ref": job.spec_ref,
            "created_time": job.created_time,
            "creator_user_name": job.creator_user_name,
            "run_as_user_name": job.run_as_user_name,
        }

    @staticmethod
    def _job(entity: Entity) -> StoredJob:
        version = int(entity.get("v", 1))
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(f"job {entity.row_key} has schema version {version}; upgrade Floe")
        return StoredJob(
            job_id=int(entity.row_key),
            name=entity.get("name", ""),
            spec_ref=entity["spec_ref"],  # type: ignore[arg-type]
            created_time=entity.get("created_time", 0),
            creator_user_name=entity.get("creator_user_name", ""),
            run_as_user_name=entity.get("run_as_user_name", ""),
            etag=entity.etag,
        )

    # ------------------------------------------------------------------------------------------- runs

    def insert_run(self, run: Run, tasks: Iterable[TaskRun]) -> RunState:
        """Write a new run with its first task attempts, then its lookups.

        The run entity goes in the LAST batch of its partition: a reader that finds the run finds all
        of its tasks. Raises EntityExists if the run id is taken (nothing was written then).
        """
        partition = run_partition(run.run_id)
        task_list = list(tasks)
        chunks = [task_list[i : i + _BATCH - 1] for i in range(0, len(task_list), _BATCH - 1)] or [[]]
        etags: dict[str, str] = {}
        for i, chunk in enumerate(chunks):
            ops = [BatchOp.insert(Entity(partition, task_row(t.run_id), encode(t))) for t in chunk]
            if i == len(chunks) - 1:
                ops.append(BatchOp.insert(Entity(partition, RUN_ROW, encode(run))))
            try:
                etags.update(_etags(self.runs.batch(ops)))
            except BatchFailed as failed:
                if isinstance(failed.cause, EntityExists) and i == 0:
                    raise failed.cause from failed
                raise
        self._write_taskrefs(run.run_id, [t.run_id for t in task_list])
        row = index_row(run.created_time, run.run_id)
        props = {"run_id": run.run_id, "job_id": run.job_id}
        self.runindex.upsert(Entity(f"j{_pad(run.job_id)}", row, props))
        self.runindex.upsert(Entity("all", row, props))
        if not run.is_final:
            self.active.upsert(Entity("run", _pad(run.run_id), {"job_id": run.job_id}))
        return RunState(run, {t.run_id: t for t in task_list}, etags)

    def _write_taskrefs(self, run_id: int, task_run_ids: Sequence[int]) -> None:
        by_partition: dict[str, list[BatchOp]] = {}
        for task_run_id in task_run_ids:
            partition = str(task_run_id >> _TASKREF_SHIFT)
            entity = Entity(partition, _pad(task_run_id), {"run_id": run_id})
            by_partition.setdefault(partition, []).append(BatchOp.upsert(entity))
        for ops in by_partition.values():
            for i in range(0, len(ops), _BATCH):
                self.taskref.batch(ops[i : i + _BATCH])

    def load_run(self, run_id: int) -> RunState:
        """The run and all its task attempts, in one partition query. RunNotFound if absent."""
        run: Run | None = None
        tasks: dict[int, TaskRun] = {}
        etags: dict[str, str] = {}
        for entity in self.runs.scan(run_partition(run_id)):
            etags[entity.row_key] = entity.etag or ""
            if entity.row_key == RUN_ROW:
                run = decode(Run, entity.properties)
            else:
                task = decode(TaskRun, entity.properties)
                tasks[task.run_id] = task
        if run is None:
            raise RunNotFound(run_id)
        return RunState(run, tasks, etags)

    def get_run_record(self, run_id: int) -> Run:
        entity = self.runs.get(run_partition(run_id), RUN_ROW)
        if entity is None:
            raise RunNotFound(run_id)
        return decode(Run, entity.properties)

    def save_step(self, state: RunState, run: Run, tasks: dict[int, TaskRun]) -> RunState:
        """Commit what one engine step changed, conditional on what `state` read; returns the new state
        with the new ETags, as a following read would find it.

        Raises BatchFailed (cause EtagMismatch or EntityExists) if anything changed meanwhile: the caller
        re-reads and applies its event again. Steps with more than 99 changed tasks commit in several
        batches, the run entity last.
        """
        partition = run_partition(run.run_id)
        ops: list[BatchOp] = []
        new_ids: list[int] = []
        for task in tasks.values():
            row = task_row(task.run_id)
            etag = state.etags.get(row)
            entity = Entity(partition, row, encode(task), etag)
            if etag is None:
                ops.append(BatchOp.insert(entity))
                new_ids.append(task.run_id)
            else:
                ops.append(BatchOp.replace(entity))
        if new_ids:
            self._write_taskrefs(run.run_id, new_ids)
        run_op = BatchOp.replace(Entity(partition, RUN_ROW, encode(run), state.etags[RUN_ROW]))
        etags = dict(state.etags)
        while len(ops) >= _BATCH:
            etags.update(_etags(self.runs.batch(ops[: _BATCH - 1])))
            ops = ops[_BATCH - 1 :]
        etags.update(_etags(self.runs.batch([*ops, run_op])))
        if run.is_final and not state.run.is_final:
            self.active.delete("run", _pad(run.run_id))
        elif state.run.is_final and not run.is_final:  # repaired
            self.active.upsert(Entity("run", _pad(run.run_id), {"job_id": run.job_id}))
        merged = dict(state.tasks)
        merged.update(tasks)
        return RunState(run, merged, etags)

    def run_id_of_task(self, task_run_id: int) -> int | None:
        entity = self.taskref.get(str(task_run_id >> _TASKREF_SHIFT), _pad(task_run_id))
        return None if entity is None else int(entity["run_id"])  # type: ignore[arg-type]

    def active_run_ids(self) -> list[int]:
        return [int(e.row_key) for e in self.active.scan("run")]

    def iter_run_ids(
        self,
        job_id: int | None,
        *,
        after_row: str | None = None,
        created_from: int | None = None,
        created_to: int | None = None,
    ) -> Iterator[tuple[str, int]]:
        """(index row, run id) newest first, optionally for one job and within created-time bounds."""
        partition = "all" if job_id is None else f"j{_pad(job_id)}"
        low = index_row(created_to, 0) if created_to is not None else None
        high = index_row(created_from, 10**16 - 1) if created_from is not None else None
        if after_row is not None and (low is None or after_row >= low):
            low = after_row + "\x00"
        for entity in self.runindex.scan(partition, row_key_from=low, row_key_to=high and high + "\x00"):
            yield entity.row_key, int(entity["run_id"])  # type: ignore[arg-type]

    def latest_run_ids(self, job_id: int, count: int) -> list[int]:
        """The ids of the job's `count` newest runs, newest first (one query)."""
        page = self.runindex.query(f"j{_pad(job_id)}", limit=count)
        return [int(e["run_id"]) for e in page.entities[:count]]  # type: ignore[arg-type]

    def delete_run(self, state: RunState) -> None:
        run = state.run
        partition = run_partition(run.run_id)
        rows = [task_row(t) for t in state.tasks] + [RUN_ROW]
        for i in range(0, len(rows), _BATCH):
            self.runs.batch([BatchOp.delete(Entity(partition, row)) for row in rows[i : i + _BATCH]])
        row = index_row(run.created_time, run.run_id)
        self.runindex.delete(f"j{_pad(run.job_id)}", row)
        self.runindex.delete("all", row)
        self.active.delete("run", _pad(run.run_id))
        for task_run_id in state.tasks:
            self.taskref.delete(str(task_run_id >> _TASKREF_SHIFT), _pad(task_run_id))

    # ---------------------------------------------------------------------------------- task values

    def save_values(self, run_id: int, task_run_id: int, values: dict[str, Any]) -> str:
        ref = f"values/{run_id}/{task_run_id}.json"
        self.blobs.put(ref, json.dumps(values, separators=(",", ":")).encode())
        return ref

    def load_values(self, ref: str) -> dict[str, Any]:
        blob = self.blobs.get(ref)
        return {} if blob is None else json.loads(blob.data)

    # ------------------------------------------------------------------------------------ idempotency

    def claim_token(self, scope: str, token: str, run_id: int) -> int | None:
        """Bind `token` (within `scope`) to `run_id`; if it was bound already, return that run id."""
        key = hashlib.sha256(f"{scope}\x00{token}".encode()).hexdigest()
        try:
            self.idem.insert(Entity(key, "t", {"run_id": run_id}))
        except EntityExists:
            existing = self.idem.get(key, "t")
            return int(existing["run_id"]) if existing is not None else None  # type: ignore[arg-type]
        return None

    def release_token(self, scope: str, token: str) -> None:
        self.idem.delete(hashlib.sha256(f"{scope}\x00{token}".encode()).hexdigest(), "t")

    # ----------------------------------------------------------------------------------- tokens, hosts

    def add_token(self, token_hash: str, user: str, created_ms: int) -> None:
        self.meta.upsert(Entity("token", token_hash, {"user": user, "created": created_ms}))

    def token_user(self, token_hash: str) -> str | None:
        entity = self.meta.get("token", token_hash)
        return None if entity is None else str(entity.get("user", ""))

    def has_tokens(self) -> bool:
        return bool(self.meta.query("token", limit=1).entities)

    def heartbeat(self, host_id: str, now_ms: int) -> None:
        self.meta.upsert(Entity("host", host_id, {"seen": now_ms}))

    def hosts(self) -> dict[str, int]:
        return {e.row_key: int(e.get("seen", 0)) for e in self.meta.scan("host")}

    def forget_host(self, host_id: str) -> None:
        self.meta.delete("host", host_id)


def _etags(stored: list[Entity | None]) -> dict[str, str]:
    return {e.row_key: e.etag or "" for e in stored if e is not None}


__all__ = ["JOB_PARTITION", "Repository", "RunState", "StoredJob"]
