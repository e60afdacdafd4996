"""The trigger-agnostic entry points every host calls: the HTTP service (`Floe`'s API methods, served by
`core.api`), `handle_message` (queue workers) and `tick` (the timer).

`Floe` is also the composition root: it builds the repository and services once from settings and the
storage it is given. Hosts that run task processes (the local runtime) pass `run_tasks=True`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import secrets
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.clock import Clock, SystemClock, to_millis
from core.compute.process import SpawnError
from core.engine import Advance, TaskEnded, TaskStarted, latest_attempts, resolve_all
from core.engine.records import Run, TaskRun
from core.engine.states import LifeCycle, Result, TerminationCode
from core.errors import FloeError, InvalidParameterValue, RunNotFound
from core.executor import Launch, Outcome, TaskExecutor, read_logs, read_trace, task_type
from core.jobs import JobService
from core.messages import WorkMessage
from core.model import RunNowRequest
from core.repository import Repository, RunState
from core.runs import RunService
from core.settings import Settings
from core.store import Storage
from core.views import JobPage, JobRecord, RunOutput, RunPage, RunView

log = logging.getLogger("floe")

HEARTBEAT_MS = 10_000  # how often a host proves it is alive
HOST_DEAD_MS = 60_000  # a host silent this long has lost its task processes
RECONCILE_MS = 30_000  # how often tick re-drives work that a lost message or host left behind
STUCK_PENDING_MS = 60_000  # a PENDING attempt this old has lost its task.start message


@dataclass
class TickReport:
    reconciled: bool = False
    redriven: int = 0
    lost: int = 0


class Floe:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        clock: Clock | None = None,
        host_id: str | None = None,
        run_tasks: bool = True,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.clock = clock or SystemClock()
        self.host_id = host_id or secrets.token_hex(6)
        self.repo = Repository(storage)
        self.runs = RunService(self.repo, storage.queues, self.clock, self.host_id)
        self.jobs = JobService(self.repo, self.runs, self.clock)
        self.executor: TaskExecutor | None = None
        if run_tasks:
            self.executor = TaskExecutor(
                home=settings.home,
                workspace=settings.workspace_dir,
                python=settings.python or sys.executable,
                blobs=storage.blobs,
                on_ended=self._task_ended,
            )
            self.runs.kill_local = self.executor.kill
        self._token_cache: dict[str, str] = {}
        self._last_heartbeat = 0
        self._last_reconcile = 0
        self._tick_lock = threading.Lock()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
        self.storage.close()

    # ------------------------------------------------------------------------------------------ auth

    def authenticate(self, token: str) -> str | None:
        """The user a bearer token belongs to, or None. Only token hashes are stored."""
        if self.settings.admin_token and hmac.compare_digest(
            token.encode(), self.settings.admin_token.encode()
        ):
            return "admin"
        digest = hashlib.sha256(token.encode()).hexdigest()
        user = self._token_cache.get(digest)
        if user is None:
            user = self.repo.token_user(digest)
            if user is not None:
                self._token_cache[digest] = user
        return user

    def ensure_admin_token(self) -> str | None:
        """Create an admin token on first start when none is configured; returns it (shown once) or None."""
        if self.settings.admin_token or self.repo.has_tokens():
            return None
        token = "floe_" + secrets.token_urlsafe(32)
        self.repo.add_token(hashlib.sha256(token.encode()).hexdigest(), "admin", to_millis(self.clock.now()))
        return token

    # ------------------------------------------------------------------------------------- jobs (API)

    def create_job(self, settings: dict[str, Any], *, creator: str) -> int:
        return self.jobs.create(settings, creator=creator)

    def get_job(self, job_id: int) -> JobRecord:
        return self.jobs.get(job_id)

    def list_jobs(self, *, name: str | None, limit: int, offset: int, page_token: str | None) -> JobPage:
        return self.jobs.list(name=name, limit=limit, offset=offset, page_token=page_token)

    def update_job(self, job_id: int, new_settings: dict[str, Any], fields_to_remove: list[str]) -> None:
        self.jobs.update(job_id, new_settings, fields_to_remove)

    def reset_job(self, job_id: int, new_settings: dict[str, Any]) -> None:
        self.jobs.reset(job_id, new_settings)

    def delete_job(self, job_id: int) -> None:
        self.jobs.delete(job_id)

    def run_now(self, request: RunNowRequest, *, creator: str) -> Run:
        return self.jobs.run_now(request, creator=creator)

    def submit(self, body: dict[str, Any], *, creator: str) -> Run:
        return self.jobs.submit(body, creator=creator)

    # ------------------------------------------------------------------------------------- runs (API)

    def get_run(self, run_id: int) -> RunView:
        return self.runs.get(run_id)

    def list_runs(self, **query: Any) -> RunPage:
        return self.runs.list(**query)

    def cancel_run(self, run_id: int) -> None:
        self.runs.cancel(run_id)

    def cancel_all_runs(self, *, job_id: int | None, all_queued_runs: bool) -> None:
        self.runs.cancel_all(job_id=job_id, all_queued_runs=all_queued_runs)

    def delete_run(self, run_id: int) -> None:
        self.runs.delete(run_id)

    def get_run_output(self, run_id: int) -> RunOutput:
        """The output of one task run. A job run id is accepted when the run has exactly one task."""
        found = self.runs.find_task(run_id)
        if found is None:
            state = self.repo.load_run(run_id)  # RunNotFound when it is neither
            latest = latest_attempts(state.tasks)
            if len(latest) != 1:
                raise InvalidParameterValue(
                    f"Run {run_id} is a job run with {len(latest)} tasks. Retrieving the output of runs with "
                    "multiple tasks is not supported; retrieve the output of each task run (tasks[].run_id)."
                )
            found = (state, next(iter(latest.values())))
        state, task = found
        logs, truncated = read_logs(self.storage.blobs, self.settings.home, state.run.run_id, task.run_id)
        trace = read_trace(self.storage.blobs, state.run.run_id, task.run_id)
        failed = task.result not in (None, Result.SUCCESS, Result.EXCLUDED, Result.DISABLED)
        return RunOutput(
            view=self.runs.view(state),
            task=task,
            logs=logs,
            logs_truncated=truncated,
            error=(task.error or task.state_message or None) if failed else None,
            error_trace=trace if failed else None,
            notebook_output=None,
        )

    # -------------------------------------------------------------------------------------- messages

    def handle_message(self, body: str) -> None:
        """Handle one queue message. Raises InvalidMessage for a message that can never succeed (the
        caller moves it to the poison queue) and any other error for one worth retrying."""
        message = WorkMessage.decode(body)
        try:
            if message.kind == "run.advance":
                self.runs.advance(message.run_id)
            elif message.kind == "task.start":
                self._start_task(message.run_id, message.task_run_id or 0)
            elif message.kind == "task.kill" and self.executor is not None:
                self.executor.kill(message.task_run_id or 0, message.reason or Result.CANCELED.value)
        except RunNotFound:
            log.info("dropping %s for run %s: the run no longer exists", message.kind, message.run_id)

    def _start_task(self, run_id: int, task_run_id: int) -> None:
        if self.executor is None:
            raise FloeError("this host does not run task processes")
        resolved: dict[str, Any] = {}

        def claim(state: RunState) -> Any:
            task = state.tasks.get(task_run_id)
            if task is None or task.life_cycle is not LifeCycle.PENDING or task.cancel_requested:
                return None
            return TaskStarted(task_run_id)

        def stamp(state: RunState, task: TaskRun) -> TaskRun:
            spec = self.repo.load_spec(state.run.spec_ref)
            settings = _task_settings(spec, task.task_key)
            kind = task_type(settings)
            ctx = self.runs.context(state.run, state.tasks, spec, task)
            values: dict[str, Any] = {}
            if kind is not None:
                try:
                    values = {kind: resolve_all(settings[kind], ctx)}
                except FloeError as bad:
                    resolved["error"] = bad.message
            resolved.update(settings=settings, values=values)
            return dataclasses.replace(task, lease_owner=self.host_id, resolved_values=values or None)

        step = self.runs.transact(run_id, claim, stamp=stamp)
        if step is None or task_run_id not in step.tasks:
            return  # already claimed, finished or cancelled: a duplicate delivery
        task = step.tasks[task_run_id]
        if "error" in resolved:
            self._task_ended(
                Outcome(
                    run_id,
                    task_run_id,
                    Result.FAILED,
                    resolved["error"],
                    TerminationCode.INVALID_RUN_CONFIGURATION,
                )
            )
            return
        settings = {**resolved["settings"], **resolved["values"]}
        try:
            self.executor.launch(
                Launch(
                    job_id=step.run.job_id,
                    run_id=run_id,
                    task_run_id=task_run_id,
                    task_key=task.task_key,
                    attempt=task.attempt_number,
                    task=settings,
                    overriding=step.run.overriding_parameters,
                    traceparent=step.run.traceparent,
                )
            )
        except (InvalidParameterValue, SpawnError) as bad:
            self._task_ended(
                Outcome(
                    run_id, task_run_id, Result.FAILED, bad.message, TerminationCode.INVALID_RUN_CONFIGURATION
                )
            )

    def _task_ended(self, outcome: Outcome) -> None:
        def ended(state: RunState) -> Any:
            task = state.tasks.get(outcome.task_run_id)
            if task is None or task.is_final:
                return None
            return TaskEnded(
                outcome.task_run_id, outcome.result, outcome.message, outcome.code, outcome.exit_code
            )

        def stamp(state: RunState, task: TaskRun) -> TaskRun:
            if task.run_id == outcome.task_run_id and outcome.result is not Result.SUCCESS:
                return dataclasses.replace(task, error=outcome.message or None)
            return task

        self.runs.transact(outcome.run_id, ended, stamp=stamp)

    # ------------------------------------------------------------------------------------------ tick

    def tick(self, now: datetime | None = None) -> TickReport:
        """The timer: heartbeat, and every RECONCILE_MS re-drive what lost messages or hosts left behind.
        Cheap when nothing is due: one write per HEARTBEAT_MS, and a scan of the active runs only."""
        now_ms = to_millis(now or self.clock.now())
        report = TickReport()
        with self._tick_lock:
            if now_ms - self._last_heartbeat >= HEARTBEAT_MS:
                self.repo.heartbeat(self.host_id, now_ms)
                self._last_heartbeat = now_ms
            if now_ms - self._last_reconcile < RECONCILE_MS:
                return report
            self._last_reconcile = now_ms
        report.reconciled = True
        hosts = self.repo.hosts()
        dead = {h for h, seen in hosts.items() if h != self.host_id and now_ms - seen > HOST_DEAD_MS}
        for run_id in self.repo.active_run_ids():
            try:
                self._reconcile(run_id, dead, now_ms, report)
            except RunNotFound:
                continue
            except Exception:
                log.exception("could not reconcile run %s", run_id)
        for host in dead:
            self.repo.forget_host(host)
        return report

    def _reconcile(self, run_id: int, dead: set[str], now_ms: int, report: TickReport) -> None:
        state = self.repo.load_run(run_id)
        for task in state.tasks.values():
            if task.life_cycle is LifeCycle.RUNNING and task.lease_owner in dead:
                report.lost += 1
                self._task_ended(
                    Outcome(
                        run_id,
                        task.run_id,
                        Result.FAILED,
                        f"Floe host {task.lease_owner}, which ran this attempt, stopped responding",
                        TerminationCode.INTERNAL_ERROR,
                    )
                )
            elif task.life_cycle is LifeCycle.PENDING and now_ms - task.queued_time > STUCK_PENDING_MS:
                report.redriven += 1
                self.runs.send(WorkMessage("task.start", run_id, task.run_id))
        self.runs.transact(run_id, lambda s: None if s.run.is_final else Advance())


def _task_settings(spec: dict[str, Any], task_key: str) -> dict[str, Any]:
    for task in spec.get("tasks") or []:
        if task.get("task_key") == task_key:
            return task
    raise InvalidParameterValue(f"task {task_key!r} is not in the run's settings")
