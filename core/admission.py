"""`max_concurrent_runs` and run queueing, written once above the table port.

Each job that has runs has a slots entity (`jobs` table, PartitionKey `slots`, RowKey the job id): the ids of
its active runs and, in order, of its queued runs. Every admission and every release is a conditional
write of that one entity, so two hosts starting runs of one job at the same moment cannot both take the
last slot. A run id left in `active` by a crash (its run is final or was never written) is dropped the
next time the job is at its limit, so a lost release never blocks a job for good.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from core.store import Entity, EntityExists, EtagMismatch, Table

_PARTITION = "slots"
_MAX_RACES = 100


class Admission(Enum):
    START = "start"
    QUEUE = "queue"
    SKIP = "skip"


@dataclass
class _Slots:
    active: list[int]
    queued: list[int]
    etag: str | None


class Slots:
    def __init__(self, table: Table, is_final: Callable[[int], bool]) -> None:
        """`is_final(run_id)` says whether a run is over (or does not exist): used to drop stale ids."""
        self.table = table
        self.is_final = is_final

    def admit(self, job_id: int, run_id: int, *, limit: int, queue: bool) -> Admission:
        """Take a slot for a new run, or queue it (FIFO), or say it must be skipped."""
        for _ in range(_MAX_RACES):
            slots = self._read(job_id)
            if run_id in slots.active:
                return Admission.START
            if run_id in slots.queued:
                return Admission.QUEUE
            if len(slots.active) >= limit and slots.active:
                slots.active = [r for r in slots.active if not self.is_final(r)]
            if len(slots.active) < limit and not slots.queued:
                slots.active.append(run_id)
                decision = Admission.START
            elif queue and limit > 0:
                slots.queued.append(run_id)
                decision = Admission.QUEUE
            else:
                return Admission.SKIP
            if self._write(job_id, slots):
                return decision
        raise RuntimeError(f"the slots of job {job_id} changed {_MAX_RACES} times during one admission")

    def release(self, job_id: int, run_id: int, *, limit: int) -> list[int]:
        """Free the run's slot (or its place in the queue); returns the queued runs that may start now,
        which have been moved to `active` already."""
        for _ in range(_MAX_RACES):
            slots = self._read(job_id)
            if run_id not in slots.active and run_id not in slots.queued and not slots.queued:
                return []
            slots.active = [r for r in slots.active if r != run_id]
            slots.queued = [r for r in slots.queued if r != run_id]
            if slots.queued and len(slots.active) >= limit:
                slots.active = [r for r in slots.active if not self.is_final(r)]
            promoted: list[int] = []
            while slots.queued and len(slots.active) < limit:
                next_run = slots.queued.pop(0)
                if self.is_final(next_run):
                    continue  # cancelled while it waited
                slots.active.append(next_run)
                promoted.append(next_run)
            if self._write(job_id, slots):
                return promoted
        raise RuntimeError(f"the slots of job {job_id} changed {_MAX_RACES} times during one release")

    def active_runs(self, job_id: int) -> list[int]:
        """The job's runs that hold a slot and are not final (one read, plus one per listed run)."""
        return [r for r in self._read(job_id).active if not self.is_final(r)]

    def _read(self, job_id: int) -> _Slots:
        entity = self.table.get(_PARTITION, _key(job_id))
        if entity is None:
            return _Slots([], [], None)
        active = json.loads(str(entity.get("active", "[]")))
        return _Slots(active, json.loads(str(entity.get("queued", "[]"))), entity.etag)

    def _write(self, job_id: int, slots: _Slots) -> bool:
        props = {"active": json.dumps(slots.active), "queued": json.dumps(slots.queued)}
        entity = Entity(_PARTITION, _key(job_id), props, slots.etag)
        try:
            if slots.etag is None:
                self.table.insert(entity)
            else:
                self.table.replace(entity)
        except (EtagMismatch, EntityExists):
            return False
        return True


def _key(job_id: int) -> str:
    return f"{job_id:016d}"
