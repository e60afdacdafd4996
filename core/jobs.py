"""Jobs: create, read, list, update, reset, delete, and starting their runs (run-now, runs/submit)."""

from __future__ import annotations

import base64
from typing import Any

from core.clock import Clock, to_millis
from core.engine.records import Run
from core.engine.states import RunType, TriggerType
from core.errors import InvalidParameterValue, InvalidState, RunNotFound
from core.ids import new_id
from core.model import RunNowRequest, merge_update, validate_job_settings
from core.repository import Repository, StoredJob
from core.runs import RunService, new_run
from core.store import EntityExists, EtagMismatch
from core.views import JobPage, JobRecord

_MAX_RACES = 50


class JobService:
    def __init__(self, repo: Repository, runs: RunService, clock: Clock) -> None:
        self.repo = repo
        self.runs = runs
        self.clock = clock

    # ------------------------------------------------------------------------------------------ CRUD

    def create(self, settings: dict[str, Any], *, creator: str) -> int:
        """Store validated settings as a new job; returns its id."""
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

    def update(self, job_id: int, new_settings: Any, fields_to_remove: Any) -> None:
        def change(job: StoredJob) -> dict[str, Any]:
            current = self.repo.load_spec(job.spec_ref)
            merged = merge_update(current, new_settings, fields_to_remove)
            return validate_job_settings(
                merged,
                field="new_settings",
                queue_default=bool(current.get("queue", {}).get("enabled", False)),
            )

        self._replace(job_id, change)

    def reset(self, job_id: int, new_settings: dict[str, Any]) -> None:
        self._replace(job_id, lambda job: new_settings)

    def _replace(self, job_id: int, change: Any) -> None:
        for _ in range(_MAX_RACES):
            job = self.repo.get_job(job_id)
            settings = change(job)
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
                return
            except EtagMismatch:
                continue
        raise InvalidState(f"Job {job_id} changed {_MAX_RACES} times during one update; try again")

    def delete(self, job_id: int) -> None:
        self.repo.delete_job(job_id)

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
        return self._start(run, spec, scope=f"job:{job.job_id}")

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

    def _start(self, run: Run, spec: dict[str, Any], *, scope: str) -> Run:
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
            return self.runs.start(run, spec)
        except Exception:
            if token:
                self.repo.release_token(scope, token)
            raise


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
