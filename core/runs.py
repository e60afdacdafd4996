"""Runs: starting them, moving them through the engine, reading, listing, cancelling and deleting them.

Every change to a run goes through `RunService.transact`: read the run's partition, apply one engine
event, commit the step with a conditional batch, then carry out the step's commands. A lost race
(another worker committed first) re-reads and applies the event again, and a duplicate event is a no-op
in the engine, so every path here is safe under at-least-once delivery.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from core.admission import Admission
from core.clock import Clock, to_millis
from core.engine import (
    Advance,
    CancelRun,
    CancelTask,
    Dag,
    Enqueue,
    KillTask,
    ReferenceContext,
    RunFinished,
    RunStarted,
    Skip,
    StartChildRun,
    StartTask,
    Step,
    TaskEnded,
    WakeAt,
    apply,
    latest_attempts,
)
from core.engine.records import Run, TaskRun
from core.engine.states import LifeCycle, RunType, TriggerType
from core.errors import InvalidParameterValue, InvalidState, RunNotFound
from core.ids import new_id
from core.messages import TASK_QUEUE, WORK_QUEUE, WorkMessage, host_queue
from core.repository import Repository, RunState
from core.store import BatchFailed, EntityExists, EtagMismatch, QueueStore
from core.telemetry.context import new_traceparent, run_traceparent
from core.views import RunPage, RunView

log = logging.getLogger("floe.runs")

_MAX_RACES = 50
_CACHED_RUNS = 256
_MAX_DELAY_S = 7 * 24 * 3600 - 60


class RunService:
    def __init__(self, repo: Repository, queues: QueueStore, clock: Clock, host_id: str) -> None:
        self.repo = repo
        self.queues = queues
        self.work = queues.queue(WORK_QUEUE)
        # Where task.start goes, and how often a run is polled: see `use_runners`.
        self.tasks = self.work
        self.poll_seconds: float | None = None
        self.clock = clock
        self.host_id = host_id
        # Every step rewrites the run entity, so two steps of one run always race; within this process
        # they take turns instead of losing the race and re-reading (other hosts still race by ETag).
        self._run_locks = [threading.Lock() for _ in range(64)]
        self._dags: dict[str, Dag] = {}
        # The last state this process committed per active run: saves a partition read per event.
        self._states: OrderedDict[int, RunState] = OrderedDict()
        self._states_lock = threading.Lock()
        # Set by the host that runs task processes: kill(task_run_id, reason) -> bool.
        self.kill_local: Callable[[int, str], bool] | None = None
        # Called after a run reached a final state (clean-up, notifications, queued runs).
        self.on_finished: list[Callable[[Run], None]] = []
        # Called after every committed step with the run before and after it (`after.tasks` holds every
        # attempt; those the step did not change are the same objects as in `before.tasks`), before the
        # step's commands run: notifications derive starts and ends from it. Hooks must be quick (hand
        # slow work to a thread of their own); one that raises is logged, never seen by the caller.
        self.on_step: list[Callable[[RunState, RunState], None]] = []
        # Starts the child run of a run_job_task (set by the composition root, which knows jobs).
        self.start_child: Callable[[Run, StartChildRun], None] | None = None

    def use_runners(self, poll_seconds: float) -> None:
        """Hand task attempts to runner hosts: task.start goes to the floe-tasks queue, which only runners
        receive, and each run is followed by a chain of delayed run.poll messages on floe-work, one every
        `poll_seconds` while the run is not over, with which a dispatcher (a Functions invocation)
        checks the run's attempts without waiting for them (`Floe._poll_run`)."""
        self.tasks = self.queues.queue(TASK_QUEUE)
        self.poll_seconds = poll_seconds

    def start_task(self, run: Run, task_run_id: int) -> None:
        """Submit one pending attempt: its task.start message."""
        trace = run_traceparent(run)
        self.tasks.send(WorkMessage("task.start", run.run_id, task_run_id, traceparent=trace).encode())

    def poll_run(self, run: Run) -> None:
        """The next check of a run's attempts on runners, `poll_seconds` from now (nothing without runners).
        One chain per run: started with the run (and again by a repair, which revives a finished run), it
        sends itself again until the run is over."""
        if self.poll_seconds is not None:
            message = WorkMessage("run.poll", run.run_id, traceparent=run_traceparent(run))
            self.send(message, delay=self.poll_seconds)

    # ----------------------------------------------------------------------------------------- start

    def start(
        self, run: Run, spec: dict[str, Any], admission: Admission = Admission.START, reason: str = ""
    ) -> Run:
        """Persist a new run with its first step applied (started, queued or skipped, as admitted),
        then send its first task.start messages."""
        dag = self.dag(run.spec_ref, spec)
        now = to_millis(self.clock.now())
        event: Any = {
            Admission.START: RunStarted(),
            Admission.QUEUE: Enqueue(reason),
            Admission.SKIP: Skip(reason),
        }[admission]
        for _ in range(_MAX_RACES):
            # The run's span gets its ids now; it is exported when the run ends (core.telemetry).
            run = replace(
                run, created_time=run.created_time or now, traceparent=run.traceparent or new_traceparent()
            )
            step = apply(run, {}, dag, event, now, new_id, self.context(run, {}, spec))
            try:
                saved = self.repo.insert_run(step.run, step.tasks.values())
            except EntityExists:
                run = replace(run, run_id=new_id())  # another host drew the same id in the same ms
                continue
            self._remember(saved)
            self._report(RunState(run, {}, {}), saved)
            self._execute(step, saved)
            if not step.run.is_final:
                self.poll_run(step.run)
            return step.run
        raise InvalidState(f"could not allocate a run id after {_MAX_RACES} attempts")

    # -------------------------------------------------------------------------------------- transact

    def transact(
        self,
        run_id: int,
        make_event: Callable[[RunState], Any | None],
        stamp: Callable[[RunState, TaskRun], TaskRun] | None = None,
        *,
        spec_ref: str | None = None,
        stamp_run: Callable[[Run], Run] | None = None,
        prepare: Callable[[RunState], RunState] | None = None,
    ) -> Step | None:
        """Apply one event to the run and commit it, then carry out the step's commands.

        `make_event` sees the fresh state and may return None to do nothing. `stamp` may add host-side
        fields (a lease, resolved values) to the task runs the step changed, and `stamp_run` to the run,
        in the same write. `spec_ref` switches the run to other settings (a repair runs the job's current
        ones). `prepare` amends the state the engine sees (what an ending attempt produced, so the same step
        can resolve references to it). Returns the committed step (None when nothing changed).
        """
        with self._run_locks[run_id % len(self._run_locks)]:
            done = self._commit(run_id, make_event, stamp, spec_ref, stamp_run, prepare)
        if done is None:
            return None
        step, state, before = done
        self._report(before, state)
        self._execute(step, state)  # outside the lock: commands may transact other runs
        return step

    def _commit(
        self,
        run_id: int,
        make_event: Callable[[RunState], Any | None],
        stamp: Callable[[RunState, TaskRun], TaskRun] | None,
        spec_ref: str | None,
        stamp_run: Callable[[Run], Run] | None,
        prepare: Callable[[RunState], RunState] | None,
    ) -> tuple[Step, RunState, RunState] | None:
        """The committed step, the state after it and the state it was applied to (None: nothing to do)."""
        for _ in range(_MAX_RACES):
            # The state this process committed last is used optimistically: if anyone wrote the run since,
            # the commit's ETags no longer match and the loop reads it afresh. Deciding to do nothing is
            # only ever done on a fresh read.
            state = self._cached(run_id)
            fresh = state is None
            if state is None:
                state = self.repo.load_run(run_id)
            if prepare is not None:
                state = prepare(state)
            event = make_event(state)
            if event is None:
                if fresh:
                    return None
                self._forget(run_id)
                continue
            ref = spec_ref or state.run.spec_ref
            spec = self.repo.load_spec(ref)
            now = to_millis(self.clock.now())
            step = apply(
                state.run,
                state.tasks,
                self.dag(ref, spec),
                event,
                now,
                new_id,
                self.context(state.run, state.tasks, spec),
            )
            if step.run == state.run and not step.tasks and not step.commands:
                if fresh:
                    return None
                self._forget(run_id)
                continue
            if stamp is not None:
                step = replace(step, tasks={tid: stamp(state, t) for tid, t in step.tasks.items()})
            if spec_ref is not None:
                step = replace(step, run=replace(step.run, spec_ref=spec_ref))
            if stamp_run is not None:
                step = replace(step, run=stamp_run(step.run))
            try:
                saved = self.repo.save_step(state, step.run, dict(step.tasks))
            except (BatchFailed, EtagMismatch) as lost:
                self._forget(run_id)
                cause = getattr(lost, "cause", lost)
                if isinstance(cause, EtagMismatch | EntityExists) or not fresh:
                    continue
                raise
            self._remember(saved)
            return step, saved, state
        raise InvalidState(f"run {run_id} changed {_MAX_RACES} times while one event was applied; try again")

    def peek(self, run_id: int) -> RunState:
        """The run as this process last committed it, or as stored: for decisions that a later
        conditional commit re-checks."""
        return self._cached(run_id) or self.repo.load_run(run_id)

    def _cached(self, run_id: int) -> RunState | None:
        with self._states_lock:
            return self._states.get(run_id)

    def _forget(self, run_id: int) -> None:
        with self._states_lock:
            self._states.pop(run_id, None)

    def _remember(self, state: RunState) -> None:
        run_id = state.run.run_id
        with self._states_lock:
            if state.run.is_final:
                self._states.pop(run_id, None)
                return
            self._states[run_id] = state
            self._states.move_to_end(run_id)
            while len(self._states) > _CACHED_RUNS:
                self._states.popitem(last=False)

    def dag(self, spec_ref: str, spec: dict[str, Any]) -> Dag:
        """The parsed DAG of a spec; specs are immutable, so it is parsed once per process."""
        dag = self._dags.get(spec_ref)
        if dag is None:
            if len(self._dags) >= 512:
                self._dags.clear()
            dag = self._dags[spec_ref] = Dag.from_settings(spec)
        return dag

    def _report(self, before: RunState, after: RunState) -> None:
        for hook in self.on_step:
            try:
                hook(before, after)
            except Exception:
                log.exception("a step hook failed for run %s", after.run.run_id)

    def _execute(self, step: Step, state: RunState) -> None:
        for command in step.commands:
            if isinstance(command, StartTask):
                self.start_task(state.run, command.task_run_id)
            elif isinstance(command, KillTask):
                self._kill(state, command)
            elif isinstance(command, WakeAt):
                # Round up: a wake-up that arrives early finds nothing due and costs a second one.
                delay = max(0.0, (command.at_ms - to_millis(self.clock.now()) + 1) / 1000)
                advance = WorkMessage("run.advance", state.run.run_id, traceparent=run_traceparent(state.run))
                self.send(advance, delay=min(delay, _MAX_DELAY_S))
            elif isinstance(command, StartChildRun):
                if self.start_child is not None:
                    self.start_child(state.run, command)
            elif isinstance(command, RunFinished):
                for hook in self.on_finished:
                    try:
                        hook(state.run)
                    except Exception:
                        log.exception("a run-finished hook failed for run %s", state.run.run_id)

    def _kill(self, state: RunState, command: KillTask) -> None:
        """Stop an attempt: its own host kills the process; an attempt no host claimed yet never will
        (claims skip attempts with cancel_requested), so it ends here with the kill's reason."""
        task = state.tasks.get(command.task_run_id)
        owner = task.lease_owner if task else None
        reason = command.reason.value
        if task is not None and task.child_run_id:
            self.cancel(task.child_run_id)  # the child's end ends this task (see Floe._run_finished)
        elif owner is None:
            self.transact(state.run.run_id, lambda s: _end_unclaimed(s, command))
        elif owner == self.host_id and self.kill_local is not None:
            self.kill_local(command.task_run_id, reason)
        else:
            message = WorkMessage(
                "task.kill", state.run.run_id, command.task_run_id, reason, run_traceparent(state.run)
            )
            self.queues.queue(host_queue(owner)).send(message.encode())

    def send(self, message: WorkMessage, *, delay: float = 0) -> None:
        if delay > 0:
            message = replace(message, delay_ms=int(delay * 1000))
        self.work.send(message.encode(), delay_seconds=delay)

    def context(
        self, run: Run, tasks: dict[int, TaskRun], spec: dict[str, Any], task: TaskRun | None = None
    ) -> ReferenceContext:
        """What dynamic value references resolve against, for the run or for one of its task runs."""
        latest = latest_attempts(tasks)
        ctx = ReferenceContext(
            job_id=run.job_id,
            job_name=str(spec.get("name", run.run_name)),
            run_id=run.run_id,
            repair_count=sum(1 for entry in run.repair_history if entry.type == "REPAIR"),
            start_time_ms=run.created_time,
            trigger_type=run.trigger.value,
            trigger_time_ms=int(run.trigger_info.get("time_ms", 0)),
            file_arrival_location=str(run.trigger_info.get("file_arrival_location", "")),
            updated_tables=tuple(run.trigger_info.get("updated_tables") or ()),
            parameters=dict(run.job_parameters),
            task_values=TaskValues(self.repo, latest),
            task_results={k: t.result.value for k, t in latest.items() if t.result is not None},
            task_error_codes={k: t.termination.code.value for k, t in latest.items() if t.termination},
        )
        if task is None:
            return ctx
        executions = sum(
            1 for t in tasks.values() if t.task_key == task.task_key and t.iteration == task.iteration
        )
        return replace(
            ctx,
            task_key=task.task_key,
            task_run_id=task.run_id,
            attempt_number=task.attempt_number,
            execution_count=max(1, executions),
        ).for_iteration(task.input)

    # ----------------------------------------------------------------------------------------- reads

    def view(self, state: RunState) -> RunView:
        spec = self.repo.load_spec(state.run.spec_ref)
        tasks = sorted(state.tasks.values(), key=lambda t: t.run_id)
        return RunView(run=state.run, tasks=tasks, spec=spec, job_name=spec.get("name", state.run.run_name))

    def get(self, run_id: int) -> RunView:
        return self.view(self.repo.load_run(run_id))

    def find_task(self, task_run_id: int) -> tuple[RunState, TaskRun] | None:
        run_id = self.repo.run_id_of_task(task_run_id)
        if run_id is None:
            return None
        state = self.repo.load_run(run_id)
        task = state.tasks.get(task_run_id)
        return None if task is None else (state, task)

    def list(
        self,
        *,
        job_id: int | None,
        active_only: bool,
        completed_only: bool,
        run_type: str | None,
        start_time_from: int | None,
        start_time_to: int | None,
        limit: int,
        offset: int,
        page_token: str | None,
    ) -> RunPage:
        if active_only and completed_only:
            raise InvalidParameterValue("active_only and completed_only cannot both be true")
        after = _decode_token(page_token, "page_token") if page_token else None
        wanted = RunType(run_type) if run_type else None
        found: list[tuple[str, RunView]] = []
        skipped = 0
        for row, run_id in self.repo.iter_run_ids(
            job_id, after_row=after, created_from=start_time_from, created_to=start_time_to
        ):
            try:
                state = self.repo.load_run(run_id)
            except RunNotFound:
                continue  # deleted between the index read and now
            run = state.run
            if (active_only and run.is_final) or (completed_only and not run.is_final):
                continue
            if wanted is not None and run.run_type is not wanted:
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append((row, self.view(state)))
            if len(found) > limit:
                break
        has_more = len(found) > limit
        page = found[:limit]
        next_token = _encode_token(page[-1][0]) if has_more and page else None
        return RunPage(
            runs=[v for _, v in page], next_page_token=next_token, prev_page_token=None, has_more=has_more
        )

    # -------------------------------------------------------------------------------- cancel, delete

    def cancel(self, run_id: int) -> None:
        """Cancel a job run, or a single task run when `run_id` names one. Final runs are left alone."""
        try:
            self.repo.get_run_record(run_id)
        except RunNotFound:
            found = self.find_task(run_id)
            if found is None:
                raise
            state, _ = found
            self.transact(
                state.run.run_id, lambda s: None if s.tasks[run_id].is_final else CancelTask(run_id)
            )
            return
        self.transact(run_id, lambda s: None if s.run.is_final or s.run.cancel_requested else CancelRun())

    def cancel_all(self, *, job_id: int | None, all_queued_runs: bool) -> None:
        if job_id is None and not all_queued_runs:
            raise InvalidParameterValue("runs/cancel-all needs job_id, or all_queued_runs set to true")
        for run_id in self.repo.active_run_ids():
            try:
                run = self.repo.get_run_record(run_id)
            except RunNotFound:
                continue
            if job_id is not None and run.job_id != job_id:
                continue
            if job_id is None and run.life_cycle is not LifeCycle.QUEUED:
                continue
            self.cancel(run_id)

    def delete(self, run_id: int) -> None:
        state = self.repo.load_run(run_id)
        if not state.run.is_final:
            raise InvalidState(
                f"Run {run_id} is active ({state.run.life_cycle}); cancel it before deleting it"
            )
        self.repo.delete_run(state)

    def advance(self, run_id: int) -> None:
        self.transact(run_id, lambda s: None if s.run.is_final and not s.run.cancel_requested else Advance())


class TaskValues(Mapping[str, Mapping[str, Any]]):
    """Task values of a run's tasks by task key, read from blobs only when a reference asks for them."""

    def __init__(self, repo: Repository, latest: dict[str, TaskRun]) -> None:
        self._repo = repo
        self._tasks = {k: t for k, t in latest.items() if t.values or t.values_ref}
        self._loaded: dict[str, Mapping[str, Any]] = {}

    def __getitem__(self, task_key: str) -> Mapping[str, Any]:
        if task_key not in self._loaded:
            task = self._tasks[task_key]
            self._loaded[task_key] = task.values or self._repo.load_values(task.values_ref or "")
        return self._loaded[task_key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)


def _end_unclaimed(state: RunState, command: KillTask) -> TaskEnded | None:
    task = state.tasks.get(command.task_run_id)
    if task is None or task.is_final or task.lease_owner is not None:
        return None
    return TaskEnded(command.task_run_id, command.reason, "Stopped before it started.")


def new_run(
    *,
    job_id: int,
    spec_ref: str,
    run_name: str,
    run_type: RunType,
    trigger: TriggerType,
    creator: str,
    job_parameters: dict[str, str],
    overriding: dict[str, Any],
    idempotency_token: str | None,
    trigger_info: dict[str, Any] | None = None,
) -> Run:
    return Run(
        run_id=new_id(),
        job_id=job_id,
        run_name=run_name,
        run_type=run_type,
        trigger=trigger,
        trigger_info=trigger_info or {},
        creator_user_name=creator,
        life_cycle=LifeCycle.PENDING,
        job_parameters=job_parameters,
        overriding_parameters=overriding,
        idempotency_token=idempotency_token,
        spec_ref=spec_ref,
    )


def _encode_token(row: str) -> str:
    return base64.urlsafe_b64encode(row.encode()).decode().rstrip("=")


def _decode_token(token: str, field: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        raise InvalidParameterValue(
            f"{field}: {token[:64]!r} is not a page token this server issued"
        ) from None
