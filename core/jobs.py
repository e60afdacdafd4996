"""Jobs: create, read, list, update, reset, delete, and starting their runs (run-now, runs/submit)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core.admission import Admission, Slots
from core.clock import Clock, to_millis
from core.engine import RepairRun
from core.engine.records import Run
from core.engine.states import RunType, TriggerType
from core.errors import InvalidParameterValue, InvalidState, JobNotFound, RunNotFound
from core.ids import new_id
from core.model import RepairRequest, RunNowRequest, merge_update, validate_job_settings
from core.repository import Repository, StoredJob
from core.runs import RunService, new_run
from core.store import EntityExists, EtagMismatch
from core.views import JobPage, JobRecord

_MAX_RACES = 50


class JobService:
    def __init__(
        self, repo: Repository, runs: RunService, clock: Clock, *, trigger_min_seconds: int = 60
    ) -> None:
        """`trigger_min_seconds`: the floor of file-arrival and table-update timers (60, as Databricks;
        lower only for tests and laptops)."""
        self.repo = repo
        self.trigger_min_seconds = trigger_min_seconds
        self.runs = runs
        self.clock = clock
        self.slots = Slots(repo.jobs, self._is_final)

    def _is_final(self, run_id: int) -> bool:
        try:
            return self.repo.get_run_record(run_id).is_final
        except RunNotFound:
            return True

    # ------------------------------------------------------------------------------------------ CRUD

    def create(
        self, settings: dict[str, Any], *, creator: str, before_insert: Callable[[int], None] | None = None
    ) -> int:
        """Store validated settings as a new job; returns its id. `before_insert(job_id)` runs before the
        job is written (the triggers mark the save)."""
        self.check_run_job_tasks(None, settings)
        spec_ref = self.repo.save_spec(settings)
        while True:
            job = StoredJob(
                job_id=new_id(),
                name=str(settings.get("name", "")),
                spec_ref=spec_ref,
                created_time=to_millis(self.clock.now()),
                creator_user_name=creator,
                run_as_user_name=creator,
            )
            if before_insert is not None:
                before_insert(job.job_id)
            try:
                self.repo.insert_job(job)
                return job.job_id
            except EntityExists:
                continue  # another host drew the same id in the same millisecond

    def get(self, job_id: int) -> JobRecord:
        return self._record(self.repo.get_job(job_id))

    def _record(self, job: StoredJob) -> JobRecord:
        return JobRecord(
            job_id=job.job_id,
            settings=self.repo.load_spec(job.spec_ref),
            created_time=job.created_time,
            creator_user_name=job.creator_user_name,
            run_as_user_name=job.run_as_user_name,
        )

    def list(self, *, name: str | None, limit: int, offset: int, page_token: str | None) -> JobPage:
        """Jobs in creation order (ids are time-ordered); `name` is an exact, case-insensitive match."""
        after = _decode_token(page_token) if page_token else None
        wanted = name.casefold() if name else None
        found: list[StoredJob] = []
        skipped = 0
        for job in self.repo.iter_jobs(after):
            if wanted is not None and job.name.casefold() != wanted:
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(job)
            if len(found) > limit:
                break
        has_more = len(found) > limit
        page = found[:limit]
        next_token = _encode_token(page[-1].job_id) if has_more and page else None
        return JobPage(
            jobs=[self._record(j) for j in page],
            next_page_token=next_token,
            prev_page_token=None,
            has_more=has_more,
        )

    def update(self, job_id: int, new_settings: Any, fields_to_remove: Any) -> dict[str, Any]:
        """Merge, validate and store; returns the job's new settings."""

        def change(job: StoredJob) -> dict[str, Any]:
            current = self.repo.load_spec(job.spec_ref)
            merged = merge_update(current, new_settings, fields_to_remove)
            return validate_job_settings(
                merged,
                field="new_settings",
                queue_default=bool(current.get("queue", {}).get("enabled", False)),
                trigger_min_seconds=self.trigger_min_seconds,
            )

        return self._replace(job_id, change)

    def reset(self, job_id: int, new_settings: dict[str, Any]) -> dict[str, Any]:
        return self._replace(job_id, lambda job: new_settings)

    def _replace(self, job_id: int, change: Any) -> dict[str, Any]:
        for _ in range(_MAX_RACES):
            job = self.repo.get_job(job_id)
            settings = change(job)
            self.check_run_job_tasks(job_id, settings)
            spec_ref = self.repo.save_spec(settings)
            updated = StoredJob(
                job.job_id,
                str(settings.get("name", "")),
                spec_ref,
                job.created_time,
                job.creator_user_name,
                job.run_as_user_name,
                job.etag,
            )
            try:
                self.repo.replace_job(updated)
                return settings
            except EtagMismatch:
                continue
        raise InvalidState(f"Job {job_id} changed {_MAX_RACES} times during one update; try again")

    def delete(self, job_id: int) -> None:
        self.repo.delete_job(job_id)

    def check_run_job_tasks(self, job_id: int | None, settings: dict[str, Any]) -> None:
        """Every run_job_task names an existing job, and no chain of run_job_tasks leads back to this job
        (a job that starts itself, directly or through others, would never end)."""
        for path, child in _run_job_targets(settings):
            if child == job_id:
                raise InvalidParameterValue(f"{path}: job {child} is this job; a job cannot run itself")
            try:
                self.repo.get_job(child)
            except JobNotFound:
                raise InvalidParameterValue(f"{path}: Job {child} does not exist.") from None
            if job_id is not None:
                cycle = self._reaches(child, job_id, [job_id, child], set())
                if cycle:
                    chain = " -> ".join(str(j) for j in cycle)
                    raise InvalidParameterValue(f"{path}: run_job_task would start a cycle of jobs: {chain}")

    def _reaches(self, start: int, target: int, chain: list[int], seen: set[int]) -> list[int] | None:
        if start in seen or len(chain) > 50:
            return None
        seen.add(start)
        try:
            spec = self.repo.load_spec(self.repo.get_job(start).spec_ref)
        except JobNotFound:
            return None
        for _, child in _run_job_targets(spec):
            if child == target:
                return [*chain, target]
            found = self._reaches(child, target, [*chain, child], seen)
            if found:
                return found
        return None

    # ---------------------------------------------------------------------------------------- repair

    def repair(self, request: RepairRequest, *, creator: str) -> int:
        """Re-run chosen (or all failed) tasks of a finished run inside that run; returns the repair id."""
        run = self.repo.get_run_record(request.run_id)
        if not run.is_final:
            raise InvalidState(
                f"Run {run.run_id} is {run.life_cycle.value}; only a finished run can be repaired"
            )
        repairs = [entry.id for entry in run.repair_history if entry.type == "REPAIR"]
        if repairs and request.latest_repair_id != repairs[-1]:
            raise InvalidParameterValue(
                f"latest_repair_id: {request.latest_repair_id} is not the latest repair of run {run.run_id}; "
                f"pass latest_repair_id={repairs[-1]} to repair it again"
            )
        if run.run_type is RunType.SUBMIT_RUN:
            spec_ref = run.spec_ref
        else:
            spec_ref = self.repo.get_job(run.job_id).spec_ref  # a repair runs the job's current settings
        spec = self.repo.load_spec(spec_ref)
        parameters = None
        if request.job_parameters:
            parameters = {**run.job_parameters, **job_parameters(spec, dict(request.job_parameters))}
        overriding = request.overriding_parameters()
        repair_id = new_id()
        event = RepairRun(
            repair_id=repair_id,
            rerun_tasks=tuple(request.rerun_tasks or ()),
            rerun_all_failed_tasks=bool(request.rerun_all_failed_tasks),
            rerun_dependent_tasks=bool(request.rerun_dependent_tasks),
            job_parameters=parameters,
        )
        step = self.runs.transact(
            run.run_id,
            lambda state: event,
            spec_ref=spec_ref,
            stamp_run=lambda r: replace(r, overriding_parameters={**r.overriding_parameters, **overriding}),
        )
        if step is not None and not step.run.is_final:
            self.runs.poll_run(step.run)  # the run's poll chain ended with it: a new one for the repair
        return repair_id

    # ------------------------------------------------------------------------------------------ runs

    def run_now(
        self,
        request: RunNowRequest,
        *,
        creator: str,
        trigger: TriggerType = TriggerType.ONE_TIME,
        trigger_info: dict[str, Any] | None = None,
    ) -> Run:
        job = self.repo.get_job(request.job_id)
        spec = self.repo.load_spec(job.spec_ref)
        parameters = job_parameters(spec, request.job_parameters or {})
        overriding = request.overriding_parameters()
        run = new_run(
            job_id=job.job_id,
            spec_ref=job.spec_ref,
            run_name=str(spec.get("name", "")),
            run_type=RunType.JOB_RUN,
            trigger=trigger,
            creator=creator,
            job_parameters=parameters,
            overriding=overriding,
            idempotency_token=request.idempotency_token,
            trigger_info=trigger_info,
        )
        queue = request.queue_enabled
        if queue is None:
            queue = bool((spec.get("queue") or {}).get("enabled", False))
        if trigger is TriggerType.ONE_TIME and _runs_continuously(spec):
            # Run-now restarts a continuous job: its active run is cancelled, and the new one waits in the
            # queue for the slot the cancelled run frees.
            run = replace(run, trigger=TriggerType.CONTINUOUS_RESTART)
            for active in self.slots.active_runs(job.job_id):
                self.runs.cancel(active)
            queue = True
        return self._start(
            run, spec, scope=f"job:{job.job_id}", limit=int(spec.get("max_concurrent_runs", 1)), queue=queue
        )

    def submit(self, body: dict[str, Any], *, creator: str) -> Run:
        """A one-time run of the given tasks. It gets a job id of its own that no job listing shows."""
        spec = {k: v for k, v in body.items() if k not in ("idempotency_token", "access_control_list")}
        spec.setdefault("name", body.get("run_name") or "Untitled")
        run = new_run(
            job_id=new_id(),
            spec_ref=self.repo.save_spec(spec),
            run_name=str(body.get("run_name") or "Untitled"),
            run_type=RunType.SUBMIT_RUN,
            trigger=TriggerType.ONE_TIME,
            creator=creator,
            job_parameters={},
            overriding={},
            idempotency_token=body.get("idempotency_token"),
        )
        return self._start(run, spec, scope="submit")

    def _start(
        self, run: Run, spec: dict[str, Any], *, scope: str, limit: int | None = None, queue: bool = False
    ) -> Run:
        token = run.idempotency_token
        if token:
            existing = self.repo.claim_token(scope, token, run.run_id)
            if existing is not None:
                try:
                    return self.repo.get_run_record(existing)
                except RunNotFound:
                    # The token's run is being written by a concurrent call, or was deleted.
                    raise InvalidState(
                        f"idempotency_token {token!r} belongs to run {existing}, which is not available "
                        "(it was deleted, or is still being created); use a new token"
                    ) from None
        try:
            if limit is None:
                return self.runs.start(run, spec)
            admission = self.slots.admit(run.job_id, run.run_id, limit=limit, queue=queue)
            return self.runs.start(run, spec, admission, _admission_reason(admission, limit))
        except Exception:
            if token:
                self.repo.release_token(scope, token)
            raise


def _runs_continuously(spec: dict[str, Any]) -> bool:
    continuous = spec.get("continuous")
    return continuous is not None and continuous.get("pause_status") != "PAUSED"


def _admission_reason(admission: Admission, limit: int) -> str:
    if admission is Admission.QUEUE:
        return f"Queued: the job already has {limit} active run(s), its max_concurrent_runs."
    if admission is Admission.SKIP:
        if limit == 0:
            return "Skipped: max_concurrent_runs is 0, so every new run is skipped."
        return (
            f"Skipped: the job already has {limit} active run(s), its max_concurrent_runs; queueing is off."
        )
    return ""


def _run_job_targets(settings: dict[str, Any]) -> list[tuple[str, int]]:
    targets = []
    for i, task in enumerate(settings.get("tasks") or []):
        nested = (task.get("for_each_task") or {}).get("task") or {}
        for where, candidate in ((f"tasks[{i}]", task), (f"tasks[{i}].for_each_task.task", nested)):
            run_job = candidate.get("run_job_task")
            if run_job and run_job.get("job_id") is not None:
                targets.append((f"settings.{where}.run_job_task.job_id", int(run_job["job_id"])))
    return targets


def job_parameters(spec: dict[str, Any], overrides: dict[str, Any]) -> dict[str, str]:
    """Effective job parameters: the job's defaults, overridden by run-now values for known names."""
    defaults = {p["name"]: str(p.get("default", "")) for p in spec.get("parameters") or []}
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise InvalidParameterValue(
            f"job_parameters: {', '.join(repr(u) for u in unknown)} not defined in the job's parameters "
            f"(defined: {', '.join(sorted(defaults)) or 'none'})"
        )
    return {**defaults, **{k: str(v) for k, v in overrides.items()}}


def _encode_token(job_id: int) -> str:
    return base64.urlsafe_b64encode(str(job_id).encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except ValueError:
        raise InvalidParameterValue(
            f"page_token: {token[:64]!r} is not a page token this server issued"
        ) from None
