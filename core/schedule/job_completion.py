"""`trigger.job_completion`, exactly as the SDK defines it (`JobCompletionTriggerConfiguration`):

    {"jobs": [{"job_id": "123", "workspace_id": "..."}], "if_status": "SUCCESS" | "FAILED" | "DONE"}

At most 10 upstream jobs. `if_status` (default SUCCESS) is one status for all of them, and the trigger
fires once **every** upstream job has finished with a matching run since the last fire (the SDK:
"starts a run after every upstream job completes with a configured status"; its per-job state is
`has_seen_completion`). With one upstream job that is simply "each matching completion fires".

Matching: SUCCESS = result SUCCESS or SUCCESS_WITH_FAILURES; FAILED = FAILED, TIMEDOUT or an
INTERNAL_ERROR run; DONE = any finished run. A non-matching completion neither counts nor cancels a
matching one already seen. `job_id` is a string in the SDK and an int in Floe: both are accepted and
kept as the decimal string. `workspace_id` (required by the SDK) is optional: Floe is one workspace.

The run gets trigger `JOB_COMPLETION` and `trigger_info.job_completion.completed_jobs` from
`completed_jobs(settings, state)` read after the fire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from core.model.base import invalid, join_path
from core.schedule.debounce import dump_state, load_state, require_mapping

MAX_UPSTREAM_JOBS = 10
IF_STATUSES = ("SUCCESS", "FAILED", "DONE")
_MATCHES = {
    "SUCCESS": frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"}),
    "FAILED": frozenset({"FAILED", "TIMEDOUT", "INTERNAL_ERROR"}),
}


def validate_job_completion(
    settings: Any, field: str = "settings.trigger.job_completion", *, own_job_id: int | None = None
) -> None:
    settings = require_mapping(settings, field)
    jobs_field = join_path(field, "jobs")
    jobs = settings.get("jobs")
    if jobs is None:
        raise invalid(jobs_field, "is required")
    if not isinstance(jobs, list) or not jobs:
        raise invalid(jobs_field, "must be a non-empty list of {job_id}", jobs)
    if len(jobs) > MAX_UPSTREAM_JOBS:
        raise invalid(jobs_field, f"must have at most {MAX_UPSTREAM_JOBS} jobs (it has {len(jobs)})")
    ids = []
    for i, job in enumerate(jobs):
        job = require_mapping(job, join_path(jobs_field, i))
        job_id = job.get("job_id")
        id_field = join_path(jobs_field, i, "job_id")
        if job_id is None:
            raise invalid(id_field, "is required")
        if not _is_id(job_id):
            raise invalid(id_field, "must be a positive job id", job_id)
        if own_job_id is not None and int(job_id) == own_job_id:
            raise invalid(id_field, "must not be the job itself (it would trigger itself forever)", job_id)
        ids.append(int(job_id))
    if len(set(ids)) != len(ids):
        raise invalid(jobs_field, "must not repeat a job", ids)
    status = settings.get("if_status")
    if status is not None and status not in IF_STATUSES:
        raise invalid(join_path(field, "if_status"), f"must be one of {', '.join(IF_STATUSES)}", status)


def _is_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return value.isascii() and value.isdigit() and int(value) > 0
    return isinstance(value, int) and value > 0


def upstream_job_ids(settings: Mapping[str, Any]) -> list[str]:
    """The upstream job ids as decimal strings, in configured order (for the lead's reverse index:
    upstream job -> downstream triggers)."""
    return [str(int(job["job_id"])) for job in settings["jobs"]]


def matches_status(if_status: str | None, result_state: str) -> bool:
    status = if_status or "SUCCESS"
    return status == "DONE" or result_state in _MATCHES[status]


@dataclass(frozen=True)
class Completion:
    run_id: int
    end_ms: int
    result_state: str


@dataclass(frozen=True)
class JobCompletionState:
    """`last`: the latest matching completion of each upstream job (kept across fires, so a redelivered
    or older completion is recognised); `pending`: the jobs whose latest matching completion has not
    yet been used by a fire (the SDK's `has_seen_completion`)."""

    last: Mapping[str, Completion] = field(default_factory=lambda: MappingProxyType({}))
    pending: frozenset[str] = frozenset()

    def to_json(self) -> str:
        return dump_state(
            {
                "last": {j: [c.run_id, c.end_ms, c.result_state] for j, c in sorted(self.last.items())},
                "pending": sorted(self.pending),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> JobCompletionState:
        data = load_state(text, "job-completion trigger state")
        try:
            raw = data.get("last", {})
            last = {str(j): Completion(int(r), int(e), str(s)) for j, (r, e, s) in raw.items()}
            return cls(MappingProxyType(last), frozenset(str(j) for j in data.get("pending", ())))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a job-completion trigger state: {text[:200]!r}") from exc


def on_run_finished(
    settings: Mapping[str, Any],
    state: JobCompletionState,
    finished_job_id: int | str,
    run_id: int,
    result_state: str,
    end_ms: int,
    *,
    paused: bool = False,
) -> tuple[bool, JobCompletionState]:
    """A run of `finished_job_id` ended. Returns whether the downstream job starts a run now, and the
    state to persist with it (idempotency key: downstream job + the upstream `run_id` that completed
    the set). A redelivered or out-of-order (older) completion changes nothing."""
    job = str(int(finished_job_id))
    upstream = upstream_job_ids(settings)
    if paused or job not in upstream or not matches_status(settings.get("if_status"), result_state):
        return False, state
    known = state.last.get(job)
    if known is not None and (known.run_id == run_id or known.end_ms > end_ms):
        return False, state
    last = MappingProxyType({**state.last, job: Completion(run_id, end_ms, result_state)})
    pending = state.pending | {job}
    if all(j in pending for j in upstream):
        return True, replace(state, last=last, pending=frozenset())
    return False, replace(state, last=last, pending=pending)


def completed_jobs(settings: Mapping[str, Any], state: JobCompletionState) -> list[dict[str, Any]]:
    """`trigger_info.job_completion.completed_jobs` for the run a fire creates (configured order)."""
    out = []
    for job in upstream_job_ids(settings):
        seen = state.last.get(job)
        if seen is not None:
            out.append(
                {
                    "job_id": job,
                    "run_id": str(seen.run_id),
                    "completion_time": seen.end_ms,
                    "termination_code": seen.result_state,
                }
            )
    return out
