"""The trigger-agnostic entry points every host calls: the HTTP service (`Floe`'s API methods, served by
`core.api`), `handle_message` (queue workers) and `tick` (the timer).

`Floe` is also the composition root: it builds the repository and services once from settings and the
storage it is given. Hosts that run task processes (the local runtime) pass `run_tasks=True`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import secrets
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from core.clock import Clock, SystemClock, to_millis
from core.clusters import ClusterNotFound, ClusterRecord, ClusterService, runs_elsewhere
from core.clusters import task_environment as cluster_environment
from core.compute.clusters import ClusterError, ClusterState
from core.compute.local_spark import LocalSparkProvider
from core.compute.process import SpawnError
from core.engine import (
    Dequeue,
    StartChildRun,
    TaskEnded,
    TaskStarted,
    latest_attempts,
    resolve_all,
)
from core.engine.records import Run, TaskRun
from core.engine.states import LifeCycle, Result, RunType, TerminationCode, TriggerType, task_type
from core.errors import FloeError, InvalidParameterValue, InvalidState, JobNotFound, RunNotFound
from core.executor import (
    Launch,
    Outcome,
    TaskExecutor,
    notebook_blob,
    read_exit,
    read_logs,
    read_sql,
    read_trace,
    trace_blob,
)
from core.jobs import JobService
from core.messages import WORK_QUEUE, WorkMessage, host_queue
from core.model import RepairRequest, RunNowRequest, validate_run_now
from core.notify import Notifier
from core.repository import Repository, RunState
from core.runs import RunService
from core.schedule.listing import list_location
from core.settings import Settings
from core.store import Storage
from core.tasks.libraries import LibraryInstallError
from core.telemetry import RunTelemetry, message_span, run_traceparent, task_context
from core.triggers import TriggerService
from core.upkeep import Upkeep
from core.views import ExportedView, JobPage, JobRecord, RunOutput, RunPage, RunView
from core.webhooks import WebhookService

log = logging.getLogger("floe")

INLINE_VALUES_CHARS = 16_000  # task values larger than this (as JSON) go to a blob
MAX_RUN_JOB_DEPTH = 10  # run_job_tasks starting runs that start runs...: refused beyond this depth


class Floe(Upkeep):
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
        if settings.tasks == "runners":
            self.runs.use_runners(settings.task_poll_seconds)
        self.trigger_min_seconds = settings.trigger_min_seconds
        self.jobs = JobService(self.repo, self.runs, self.clock, trigger_min_seconds=self.trigger_min_seconds)
        self.webhooks = WebhookService(self.repo, self.jobs, self.clock)
        self.notifier = Notifier.from_settings(settings, self.repo, self.clock, host_id=self.host_id)
        self.destinations = self.notifier.destinations  # /api/2.0/notification-destinations
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
        self.provider = LocalSparkProvider()
        self.clusters = ClusterService(
            storage.tables,
            storage.blobs,
            self.provider,
            self.clock,
            self.host_id,
            log_root=settings.home / "clusters",
        )
        if not run_tasks and settings.tasks == "runners":
            self.clusters.hand_off = self._hand_off_cluster  # no Spark on this host: runners start it
        self.triggers = TriggerService(
            self.repo,
            self.jobs,
            self.clock,
            poll_ms=int(settings.trigger_poll_seconds * 1000),
            list_location=functools.partial(
                list_location,
                azure_connection_string=settings.azure_connection_string,
                azure_client_id=settings.azure_client_id,
            ),
        )
        self.runs.on_finished.append(self._run_finished)
        self.runs.on_finished.append(self.triggers.on_run_finished)  # after the slot is free
        self.runs.on_finished.append(self.notifier.on_run_finished)  # hands the sending to its own threads
        self.runs.on_step.append(self.notifier.on_step)  # starts and task ends notify; duration timers
        self.runs.on_step.append(RunTelemetry(self.repo.load_spec, self.host_id).on_step)  # spans, metrics
        self.runs.start_child = self._start_child
        self._token_cache: dict[str, str] = {}
        self._last_heartbeat = 0
        self._last_reconcile = 0
        self._previous_reconcile = 0
        self._tick_lock = threading.Lock()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
        self.clusters.close()
        self.provider.close()
        self.notifier.close()  # before the storage its deliveries record into
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
        has_triggers = any(settings.get(k) is not None for k in ("schedule", "trigger", "continuous"))
        job_id = self.jobs.create(
            settings, creator=creator, before_insert=self.triggers.mark if has_triggers else None
        )
        self.triggers.plan(job_id, settings)
        return job_id

    def get_job(self, job_id: int) -> JobRecord:
        return self.jobs.get(job_id)

    def list_jobs(self, *, name: str | None, limit: int, offset: int, page_token: str | None) -> JobPage:
        return self.jobs.list(name=name, limit=limit, offset=offset, page_token=page_token)

    def update_job(self, job_id: int, new_settings: dict[str, Any], fields_to_remove: list[str]) -> None:
        self.triggers.mark(job_id)
        self.triggers.plan(job_id, self.jobs.update(job_id, new_settings, fields_to_remove))

    def reset_job(self, job_id: int, new_settings: dict[str, Any]) -> None:
        self.triggers.mark(job_id)
        self.triggers.plan(job_id, self.jobs.reset(job_id, new_settings))

    def delete_job(self, job_id: int) -> None:
        self.jobs.delete(job_id)
        self.triggers.forget(job_id)
        self.webhooks.forget(job_id)

    def trigger_state(self, job_id: int) -> dict[str, Any]:
        self.jobs.get(job_id)  # JobNotFound for a job that does not exist
        return self.triggers.describe(job_id)

    def handle_blob_created(self, url: str, size: int, modified_ms: int | None = None) -> int:
        """A file appeared at `url` (Event Grid, a blob trigger or the folder watcher): record it for the
        file-arrival triggers watching a folder above it; `tick` starts their runs once their timers
        allow. Returns how many triggers took it as new."""
        return self.triggers.blob_created(url, size, modified_ms)

    def run_now(self, request: RunNowRequest, *, creator: str) -> Run:
        return self.jobs.run_now(request, creator=creator)

    def submit(self, body: dict[str, Any], *, creator: str) -> Run:
        return self.jobs.submit(body, creator=creator)

    # ------------------------------------------------------------------------------------- runs (API)

    def get_run(self, run_id: int) -> RunView:
        """A job run, or one task run (shown as a Run, with its iterations for a for-each task)."""
        try:
            return self.runs.get(run_id)
        except RunNotFound:
            found = self.runs.find_task(run_id)
            if found is None:
                raise
            return dataclasses.replace(self.runs.view(found[0]), focus_task_run_id=run_id)

    def repair_run(self, request: RepairRequest, *, creator: str) -> int:
        return self.jobs.repair(request, creator=creator)

    def export_run(self, run_id: int, views: str) -> list[ExportedView]:
        """The executed notebook of a notebook task run, as HTML (views CODE or ALL; DASHBOARDS has none)."""
        state, task = self._task_of(run_id)
        settings = _task_settings(self.repo.load_spec(state.run.spec_ref), task.task_key)
        if "notebook_task" not in settings:
            raise InvalidParameterValue(
                f"Run {run_id} is a {task_type(settings) or 'task'} run; "
                "only notebook task runs can be exported"
            )
        if views == "DASHBOARDS":
            return []
        executed = self.storage.blobs.get(notebook_blob(state.run.run_id, task.run_id))
        if executed is None:
            raise InvalidState(f"Run {run_id} has no executed notebook to export (it has not run yet)")
        from core.tasks.export import notebook_html

        name = Path(str(settings["notebook_task"].get("notebook_path", task.task_key))).name
        return [ExportedView(name=name, content=notebook_html(executed.data), type="NOTEBOOK")]

    def _task_of(self, run_id: int) -> tuple[RunState, TaskRun]:
        """A task run by its id, or the only task of a job run given by the job run's id."""
        found = self.runs.find_task(run_id)
        if found is not None:
            return found
        state = self.repo.load_run(run_id)  # RunNotFound when it is neither
        latest = latest_attempts(state.tasks)
        if len(latest) != 1:
            raise InvalidParameterValue(
                f"Run {run_id} is a job run with {len(latest)} tasks. Retrieving the output of runs with "
                "multiple tasks is not supported; retrieve the output of each task run (tasks[].run_id)."
            )
        return state, next(iter(latest.values()))

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
        state, task = self._task_of(run_id)
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
            notebook_output=read_exit(self.storage.blobs, state.run.run_id, task.run_id),
            sql_output=read_sql(self.storage.blobs, state.run.run_id, task.run_id),
        )

    def poison_messages(
        self, *, limit: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The queue messages kept as poison (`core.poison`), newest first, and the next page's token."""
        from core.poison import listing

        return listing(self.storage.blobs, limit=limit, page_token=page_token)

    # ------------------------------------------------------------------------------ runs among runs

    def _run_finished(self, run: Run) -> None:
        """A run ended: free its slot and start the queued runs that may start now; if it was started by a
        run_job_task, that task ends with the child's result."""
        if run.run_type is RunType.JOB_RUN:
            self._promote_queued(run.job_id, run.run_id)
        if _names_compute(self.repo.load_spec(run.spec_ref)):
            self.clusters.terminate_run_clusters(run.run_id, traceparent=run_traceparent(run))
        if run.trigger is TriggerType.RUN_JOB_TASK and "parent_run_id" in run.trigger_info:
            ok = run.result is not None and run.result.is_success
            result = run.result.value if run.result else run.life_cycle.value
            self._task_ended(
                Outcome(
                    int(run.trigger_info["parent_run_id"]),
                    int(run.trigger_info["run_id"]),
                    Result.SUCCESS if ok else Result.FAILED,
                    "" if ok else f"Run {run.run_id} of job {run.job_id} ended {result}",
                    None if ok else TerminationCode.RUN_EXECUTION_ERROR,
                )
            )

    def _promote_queued(self, job_id: int, finished_run_id: int) -> None:
        """Free the slot of a finished run (0: none) and start the job's queued runs that fit now."""
        try:
            limit = int(self.repo.load_spec(self.repo.get_job(job_id).spec_ref).get("max_concurrent_runs", 1))
        except JobNotFound:
            limit = 0
        for queued in self.jobs.slots.release(job_id, finished_run_id, limit=limit):
            self.runs.transact(queued, lambda s: Dequeue() if s.run.life_cycle is LifeCycle.QUEUED else None)

    def _start_child(self, parent: Run, command: StartChildRun) -> None:
        """Start the run of a run_job_task. Idempotent: the child run's idempotency token is the task run
        id, so starting it again (a re-driven message) finds the same child."""
        depth = int(parent.trigger_info.get("depth", 0)) + 1
        try:
            if depth > MAX_RUN_JOB_DEPTH:
                raise InvalidParameterValue(f"run_job_task nesting is deeper than {MAX_RUN_JOB_DEPTH} runs")
            request = validate_run_now(
                {
                    "job_id": command.job_id,
                    "job_parameters": dict(command.job_parameters),
                    "idempotency_token": f"run-job-task-{command.task_run_id}",
                }
            )
            child = self.jobs.run_now(
                request,
                creator=parent.creator_user_name,
                trigger=TriggerType.RUN_JOB_TASK,
                trigger_info={"run_id": command.task_run_id, "parent_run_id": parent.run_id, "depth": depth},
            )
        except FloeError as bad:
            self._task_ended(
                Outcome(
                    parent.run_id,
                    command.task_run_id,
                    Result.FAILED,
                    bad.message,
                    TerminationCode.INVALID_RUN_CONFIGURATION,
                )
            )
            return
        tid = command.task_run_id
        self.runs.transact(
            parent.run_id,
            lambda s: TaskStarted(tid) if s.tasks[tid].life_cycle is LifeCycle.PENDING else None,
            stamp=lambda s, t: dataclasses.replace(t, child_run_id=child.run_id) if t.run_id == tid else t,
        )

    # -------------------------------------------------------------------------------------- messages

    def handle_message(
        self,
        body: str,
        *,
        queue: str = WORK_QUEUE,
        enqueued_at: datetime | None = None,
        dequeue_count: int | None = None,
    ) -> None:
        """Handle one queue message. Raises InvalidMessage for a message that can never succeed (the
        caller moves it to the poison queue) and any other error for one worth retrying. What the caller
        knows of the delivery (queue, enqueue time, dequeue count) goes into the message's span."""
        with message_span(
            body, queue=queue, host_id=self.host_id, enqueued_at=enqueued_at, dequeue_count=dequeue_count
        ):
            self._handle_message(body)

    def _handle_message(self, body: str) -> None:
        message = WorkMessage.decode(body)
        try:
            if message.kind == "run.advance":
                self.runs.advance(message.run_id)
            elif message.kind == "task.start":
                self._start_task(message.run_id, message.task_run_id or 0)
            elif message.kind == "run.poll":
                self._poll_run(message.run_id)
            elif message.kind == "task.kill" and self.executor is not None:
                self.executor.kill(message.task_run_id or 0, message.reason or Result.CANCELED.value)
            elif message.kind.startswith("cluster."):
                self._cluster_message(message.kind, message.cluster_id or "")
        except RunNotFound:
            log.info("dropping %s for run %s: the run no longer exists", message.kind, message.run_id)

    def _hand_off_cluster(self, kind: str, cluster_id: str, owner: str) -> None:
        """Send a cluster's start to the runners' queue, or its restart or termination to its owner's."""
        queue = self.runs.tasks if kind == "cluster.start" else self.storage.queues.queue(host_queue(owner))
        queue.send(WorkMessage(kind, 0, cluster_id=cluster_id).encode())  # type: ignore[arg-type]

    def _cluster_message(self, kind: str, cluster_id: str) -> None:
        if self.executor is None:
            raise FloeError(f"{kind} for cluster {cluster_id} reached a host that runs no Spark")
        try:
            if kind == "cluster.start":
                self.clusters.take_start(cluster_id)
            elif kind == "cluster.restart":
                self.clusters.restart(cluster_id)
            else:
                self.clusters.terminate(cluster_id)
        except ClusterNotFound:
            log.info("dropping %s: cluster %s no longer exists", kind, cluster_id)

    def _start_task(self, run_id: int, task_run_id: int) -> None:
        try:
            cluster = self._cluster_for(run_id, task_run_id)  # the attempt stays PENDING meanwhile
        except FloeError as bad:
            code = TerminationCode.CLUSTER_ERROR
            self._task_ended(Outcome(run_id, task_run_id, Result.FAILED, bad.message, code))
            return
        if cluster is not None and runs_elsewhere(cluster, self.host_id):
            # Its Spark listens on another machine's loopback: the attempt runs on that machine.
            trace = run_traceparent(self.runs.peek(run_id).run)
            message = WorkMessage("task.start", run_id, task_run_id, traceparent=trace)
            self.storage.queues.queue(host_queue(cluster.owner_host)).send(message.encode())
            return
        resolved: dict[str, Any] = {}
        child: list[tuple[Run, StartChildRun]] = []

        def claim(state: RunState) -> Any:
            task = state.tasks.get(task_run_id)
            if task is None or task.life_cycle is not LifeCycle.PENDING or task.cancel_requested:
                return None
            spec = self.repo.load_spec(state.run.spec_ref)
            settings = _task_settings(spec, task.task_key)
            if "run_job_task" in settings:  # re-driven: its child run was maybe never started
                ctx = self.runs.context(state.run, state.tasks, spec, task)
                parameters = resolve_all(settings["run_job_task"].get("job_parameters") or {}, ctx)
                job_id = int(settings["run_job_task"]["job_id"])
                child.append((state.run, StartChildRun(task_run_id, task.task_key, job_id, parameters)))
                return None
            if self.executor is None:
                raise FloeError("this host does not run task processes")
            return TaskStarted(task_run_id)

        def stamp(state: RunState, task: TaskRun) -> TaskRun:
            if task.run_id != task_run_id:
                return task
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
            upstream = {key: dict(v) for key, v in ctx.task_values.items() if key != task.task_key}
            resolved.update(settings=settings, values=values, upstream=upstream)
            return dataclasses.replace(
                task,
                lease_owner=self.host_id,
                resolved_values=values or None,
                cluster_id=cluster.cluster_id if cluster else None,
            )

        step = self.runs.transact(run_id, claim, stamp=stamp)
        for parent, command in child:
            self._start_child(parent, command)
        if step is None or task_run_id not in step.tasks or self.executor is None:
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
        attempt = task_context(step.run, task)
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
                    job_parameters=step.run.job_parameters,
                    upstream_values=resolved["upstream"],
                    cluster_env=cluster_environment(cluster) if cluster else {},
                    traceparent=attempt.traceparent if attempt else None,  # its floe.task span's
                    tracestate=attempt.tracestate if attempt else None,
                )
            )
        except LibraryInstallError as bad:
            self.storage.blobs.put(trace_blob(run_id, task_run_id), bad.output.encode(errors="replace"))
            code = TerminationCode.LIBRARY_INSTALLATION_ERROR
            self._task_ended(Outcome(run_id, task_run_id, Result.FAILED, bad.message, code))
        except (InvalidParameterValue, SpawnError) as bad:
            self._task_ended(
                Outcome(
                    run_id, task_run_id, Result.FAILED, bad.message, TerminationCode.INVALID_RUN_CONFIGURATION
                )
            )
        except Exception as bug:  # claimed but not started: never leave the attempt RUNNING with no process
            log.exception("could not start task run %s", task_run_id)
            self._task_ended(
                Outcome(
                    run_id,
                    task_run_id,
                    Result.FAILED,
                    f"Floe could not start the task process: {bug!r}",
                    TerminationCode.INTERNAL_ERROR,
                )
            )

    def _cluster_for(self, run_id: int, task_run_id: int) -> ClusterRecord | None:
        """The RUNNING cluster a pending attempt runs on, started first if it must be (blocking, about ten
        seconds for a new local cluster); None for a task that names no compute."""
        state = self.runs.peek(run_id)
        task = state.tasks.get(task_run_id)
        if task is None or task.life_cycle is not LifeCycle.PENDING:
            return None
        spec = self.repo.load_spec(state.run.spec_ref)
        settings = _task_settings(spec, task.task_key)
        creator = state.run.creator_user_name
        if settings.get("job_cluster_key"):
            key = str(settings["job_cluster_key"])
            clusters = {
                c.get("job_cluster_key"): c.get("new_cluster") for c in spec.get("job_clusters") or []
            }
            if not clusters.get(key):
                raise InvalidParameterValue(f"job_cluster_key {key!r} is not one of the job's job_clusters")
            users = [t for t in spec.get("tasks") or [] if t.get("job_cluster_key") == key]
            cluster_spec = _with_master(clusters[key], users)
            return self.clusters.ensure_job_cluster(run_id, key, cluster_spec, creator=creator)
        if settings.get("new_cluster"):
            key = f"__task_{task.task_key}"
            cluster_spec = _with_master(settings["new_cluster"], [settings])
            return self.clusters.ensure_job_cluster(run_id, key, cluster_spec, creator=creator)
        if settings.get("existing_cluster_id"):
            cluster_id = str(settings["existing_cluster_id"])
            self.clusters.start(cluster_id)  # a no-op when it is running or starting
            record = self.clusters.wait_until(
                cluster_id, (ClusterState.RUNNING, ClusterState.ERROR, ClusterState.TERMINATED)
            )
            if record.state is not ClusterState.RUNNING:
                raise ClusterError(f"Cluster {cluster_id} is {record.state.value}: {record.state_message}")
            return record
        return None

    def _task_ended(self, outcome: Outcome) -> None:
        tid = outcome.task_run_id
        values, values_ref = outcome.values or None, None
        if values and len(json.dumps(values)) > INLINE_VALUES_CHARS:
            values, values_ref = None, self.repo.save_values(outcome.run_id, tid, values)

        def with_values(state: RunState) -> RunState:
            # The task values belong to the step that ends the attempt: downstream conditions and
            # for-each inputs evaluated in that same step can read them.
            task = state.tasks.get(tid)
            if task is None or task.is_final or not (values or values_ref):
                return state
            tasks = {**state.tasks, tid: dataclasses.replace(task, values=values, values_ref=values_ref)}
            return RunState(state.run, tasks, state.etags)

        def ended(state: RunState) -> Any:
            task = state.tasks.get(tid)
            if task is None or task.is_final:
                return None
            return TaskEnded(tid, outcome.result, outcome.message, outcome.code, outcome.exit_code)

        def stamp(state: RunState, task: TaskRun) -> TaskRun:
            if task.run_id != tid or outcome.result is Result.SUCCESS:
                return task
            return dataclasses.replace(task, error=outcome.message or None)

        self.runs.transact(outcome.run_id, ended, stamp=stamp, prepare=with_values)


def _with_master(cluster_spec: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """A local cluster is a Spark Connect server over `local[N]` unless a task on it submits applications
    (JAR, spark-submit): those need a master to submit to, so the cluster runs a standalone master and
    workers under its Connect server."""
    if not any("spark_jar_task" in t or "spark_submit_task" in t for t in tasks):
        return cluster_spec
    conf = {"floe.cluster.mode": "standalone", **(cluster_spec.get("spark_conf") or {})}
    return {**cluster_spec, "spark_conf": conf}


def _names_compute(spec: dict[str, Any]) -> bool:
    """Whether a run of these settings can have job clusters to terminate."""
    return bool(spec.get("job_clusters")) or any(t.get("new_cluster") for t in spec.get("tasks") or [])


def _task_settings(spec: dict[str, Any], task_key: str) -> dict[str, Any]:
    """A task's settings by key: a top-level task, or the task a for_each_task runs per iteration."""
    for task in spec.get("tasks") or []:
        if task.get("task_key") == task_key:
            return task
        nested = (task.get("for_each_task") or {}).get("task") or {}
        if nested.get("task_key") == task_key:
            return nested
    raise InvalidParameterValue(f"task {task_key!r} is not in the run's settings")
