"""Where trigger state lives: one partition (`t`) of the `triggers` table, so a trigger's state, its index
entry and its side rows move together in one atomic batch.

| RowKey | holds |
|---|---|
| `s<job id><source>` | the state of one source of a job: `s` schedule, `t` trigger, `c` continuous |
| `d<due ms><job id><source>` | the index: look at this source once `due ms` has passed |
| `u<upstream job id><job id>` | job-completion triggers by upstream job (read when a run ends) |
| `a<job id>` | file-arrival trigger locations (read by blob events and the folder watcher) |
| `p<job id>` | a save of this job has not been planned yet |

A state larger than `INLINE_STATE_CHARS` (a file-arrival trigger's seen files) goes to a blob named by its
content hash and referenced from the state row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import FloeError, SchemaVersionError
from core.schedule import job_completion as completion_rules
from core.schedule.triggers import trigger_kind, trigger_settings
from core.store import BatchFailed, BatchOp, BlobStore, Entity, EntityExists, EtagMismatch, Table

PARTITION = "t"
INLINE_STATE_CHARS = 30_000  # larger trigger state (file listings) goes to a blob
_VERSION = 1


@dataclass(frozen=True)
class TriggerRecord:
    """The stored state of one source (`schedule`, `trigger` or `continuous`) of one job."""

    job_id: int
    source: str  # s | t | c
    kind: str  # cron | periodic | file_arrival | table_update | job_completion | continuous
    config: str  # hash of the settings this state was planned for
    paused: bool
    created_ms: int
    next_ms: int | None = None
    last_fire_ms: int | None = None
    last_check_ms: int | None = None
    fires: int = 0
    state: str = ""  # the kind's own state (`core.schedule` JSON); "" for cron and periodic
    error: str = ""  # why the last check failed (a location that cannot be listed), shown in jobs/get
    sides: tuple[str, ...] = ()  # the `u`/`a` rows that belong to it
    state_ref: str | None = None  # where `state` was read from, when it lives in a blob
    etag: str | None = None

    @property
    def row(self) -> str:
        return state_row(self.job_id, self.source)

    @property
    def index_row(self) -> str | None:
        return None if self.next_ms is None else index_row(self.next_ms, self.job_id, self.source)


def state_row(job_id: int, source: str) -> str:
    return f"s{job_id:016d}{source}"


def index_row(due_ms: int, job_id: int, source: str) -> str:
    return f"d{max(due_ms, 0):013d}{job_id:016d}{source}"


def mark_row(job_id: int) -> str:
    return f"p{job_id:016d}"


def sources(settings: Mapping[str, Any]) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """The trigger sources a job's settings define: source letter -> (kind, that setting)."""
    out: dict[str, tuple[str, Mapping[str, Any]]] = {}
    if settings.get("schedule"):
        out["s"] = ("cron", settings["schedule"])
    if settings.get("trigger"):
        out["t"] = (trigger_kind(settings["trigger"]), settings["trigger"])
    if settings.get("continuous") is not None:  # `{}` is an unpaused continuous job
        out["c"] = ("continuous", settings["continuous"])
    return out


def config_hash(kind: str, setting: Mapping[str, Any]) -> str:
    text = json.dumps({"kind": kind, "setting": setting}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def side_rows(job_id: int, kind: str, setting: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The side rows a source needs: reverse-index rows of a job-completion trigger, the location row
    of a file-arrival trigger."""
    if kind == "job_completion":
        inner = trigger_settings(setting)
        return {
            f"u{int(up):016d}{job_id:016d}": {"job_id": job_id}
            for up in completion_rules.upstream_job_ids(inner)
        }
    if kind == "file_arrival":
        return {f"a{job_id:016d}": {"url": str(trigger_settings(setting)["url"])}}
    return {}


class TriggerStore:
    """Reads and conditional writes of trigger rows (see the module docstring)."""

    def __init__(self, table: Table, blobs: BlobStore) -> None:
        self.table = table
        self.blobs = blobs

    def due(self, now_ms: int, limit: int) -> list[Entity]:
        """The index entries due at `now_ms` (at most `limit`), oldest first."""
        page = self.table.query(PARTITION, row_key_from="d", row_key_to=f"d{now_ms + 1:013d}", limit=limit)
        return page.entities

    def mark(self, job_id: int, at_ms: int) -> None:
        self.table.upsert(Entity(PARTITION, mark_row(job_id), {"at": at_ms}))

    def unmark(self, job_id: int) -> None:
        self.table.delete(PARTITION, mark_row(job_id))

    def marks(self) -> list[tuple[int, int]]:
        """(job id, when it was marked) of every job whose save has not been planned."""
        return [
            (int(e.row_key[1:]), int(e.get("at", 0)))
            for e in self.table.scan(PARTITION, row_key_from="p", row_key_to="q")
        ]

    def downstream(self, upstream_job_id: int) -> list[int]:
        """The jobs with a job-completion trigger on `upstream_job_id`."""
        low = f"u{upstream_job_id:016d}"
        return [
            int(e.row_key[17:33]) for e in self.table.scan(PARTITION, row_key_from=low, row_key_to=low + "~")
        ]

    def locations(self) -> list[tuple[int, str]]:
        """(job id, url) of every file-arrival trigger."""
        return [
            (int(e.row_key[1:]), str(e.get("url", "")))
            for e in self.table.scan(PARTITION, row_key_from="a", row_key_to="b")
        ]

    def records(self, job_id: int) -> list[TriggerRecord]:
        low = f"s{job_id:016d}"
        return [_decode(e) for e in self.table.scan(PARTITION, row_key_from=low, row_key_to=low + "~")]

    def record(self, job_id: int, source: str) -> TriggerRecord | None:
        entity = self.table.get(PARTITION, state_row(job_id, source))
        return None if entity is None else _decode(entity)

    def state_text(self, rec: TriggerRecord) -> str:
        if rec.state_ref is None:
            return rec.state
        blob = self.blobs.get(rec.state_ref)
        if blob is None:
            raise SchemaVersionError(f"the trigger state blob {rec.state_ref} is missing from storage")
        return blob.data.decode()

    def commit(
        self,
        old: TriggerRecord | None,
        new: TriggerRecord,
        *,
        sides: dict[str, dict[str, Any]] | tuple[str, ...],
    ) -> bool:
        """Write `new` over `old` (conditional on what was read) with its index entry and side rows, in
        one batch. False when the state changed meanwhile (nothing was written)."""
        side_rows = sides if isinstance(sides, dict) else {row: None for row in sides}
        props = self._props(new, tuple(side_rows))
        entity = Entity(PARTITION, new.row, props, old.etag if old else None)
        ops = [BatchOp.replace(entity) if old is not None else BatchOp.insert(entity)]
        old_index = old.index_row if old else None
        if old_index and old_index != new.index_row:
            ops.append(BatchOp.delete(Entity(PARTITION, old_index)))
        if new.index_row and new.index_row != old_index:
            ops.append(BatchOp.upsert(Entity(PARTITION, new.index_row, {"job_id": new.job_id})))
        for row in set(old.sides if old else ()) - set(side_rows):
            ops.append(BatchOp.delete(Entity(PARTITION, row)))
        for row, values in side_rows.items():
            if values is not None:
                ops.append(BatchOp.upsert(Entity(PARTITION, row, values)))
        try:
            self.table.batch(ops)
        except BatchFailed as failed:
            if isinstance(failed.cause, (EtagMismatch, EntityExists)) or failed.index == 0:
                return False
            raise
        if old is not None and old.state_ref and old.state_ref != props.get("state_ref"):
            self.blobs.delete(old.state_ref)
        return True

    def remove(self, rec: TriggerRecord) -> bool:
        ops = [BatchOp.delete(Entity(PARTITION, rec.row, etag=rec.etag))]
        if rec.index_row:
            ops.append(BatchOp.delete(Entity(PARTITION, rec.index_row)))
        ops += [BatchOp.delete(Entity(PARTITION, row)) for row in rec.sides]
        try:
            self.table.batch(ops)
        except BatchFailed as failed:
            if failed.index == 0:
                return False
            # An index or side row was gone already: delete what is left one by one.
            for op in ops:
                self.table.delete(PARTITION, op.entity.row_key)
        if rec.state_ref:
            self.blobs.delete(rec.state_ref)
        return True

    def delete_stale(self, entry: Entity) -> None:
        try:
            self.table.delete(PARTITION, entry.row_key, entry.etag)
        except FloeError:
            pass  # gone already

    def _props(self, rec: TriggerRecord, sides: tuple[str, ...]) -> dict[str, Any]:
        props: dict[str, Any] = {
            "v": _VERSION,
            "kind": rec.kind,
            "config": rec.config,
            "paused": rec.paused,
            "created_ms": rec.created_ms,
            "fires": rec.fires,
            "sides": json.dumps(sorted(sides)),
        }
        for name in ("next_ms", "last_fire_ms", "last_check_ms"):
            if getattr(rec, name) is not None:
                props[name] = getattr(rec, name)
        if rec.error:
            props["error"] = rec.error[:2000]
        if len(rec.state) <= INLINE_STATE_CHARS:
            props["state"] = rec.state
        else:
            digest = hashlib.sha256(rec.state.encode()).hexdigest()
            ref = f"triggers/{rec.job_id}/{rec.source}/{digest}.json"
            self.blobs.put(ref, rec.state.encode())
            props["state_ref"] = ref
        return props


def _decode(entity: Entity) -> TriggerRecord:
    version = int(entity.get("v", 1))
    if version > _VERSION:
        raise SchemaVersionError(f"trigger state {entity.row_key} has schema version {version}; upgrade Floe")
    return TriggerRecord(
        job_id=int(entity.row_key[1:17]),
        source=entity.row_key[17:],
        kind=str(entity["kind"]),
        config=str(entity["config"]),
        paused=bool(entity.get("paused", False)),
        created_ms=int(entity.get("created_ms", 0)),
        next_ms=entity.get("next_ms"),
        last_fire_ms=entity.get("last_fire_ms"),
        last_check_ms=entity.get("last_check_ms"),
        fires=int(entity.get("fires", 0)),
        state=str(entity.get("state", "")),
        error=str(entity.get("error", "")),
        sides=tuple(json.loads(str(entity.get("sides", "[]")))),
        state_ref=entity.get("state_ref"),
        etag=entity.etag,
    )
