"""The run state machine: `apply(run, tasks, dag, event, now, new_id) -> Step`.

A pure function. It reads no clock (time is `now`, epoch ms), makes no ids of its own (`new_id`), does
no I/O. A handler loads a run and all its task runs, applies one event, writes back `Step.run` and the
task runs in `Step.tasks` (only those created or changed) with conditional writes, and then carries out
`Step.commands`. Queues deliver at least once and out of order, so an event that no longer applies (a
second `TaskEnded` for the same attempt, a `TaskStarted` for an attempt already over) returns an
unchanged Step with no commands.

After every event the run is advanced: blocked tasks whose dependencies all finished are decided
(`rules.decide`), due retries start, overdue attempts are killed, and a run whose tasks are all final
ends with its result (`rules.run_outcome`). Every change of life cycle goes through the two tables
below; anything else raises `IllegalTransition`.

Deadlines. `Run.wake_at` holds the run's earliest future deadline (a retry falling due, a task or job
timeout). A step carries `WakeAt(at)` when no wake-up is on its way by `at` already; an `Advance`
carries the next deadline again, since it may be the wake-up that was on its way (or one that arrived
early). So one chain of wake-ups per run, at most one message per deadline in the usual case. A handler
turns `WakeAt` into a delayed `run.advance` message, rounding the delay up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from core.engine import rules
from core.engine.dag import Dag, Node
from core.engine.events import (
    ENDED_RESULTS,
    Advance,
    CancelRun,
    CancelTask,
    Command,
    Event,
    KillTask,
    RunFinished,
    RunStarted,
    StartTask,
    Step,
    TaskEnded,
    TaskStarted,
    WakeAt,
)
from core.engine.records import Run, TaskRun
from core.engine.references import ReferenceContext, resolve
from core.engine.states import LifeCycle, Result, TerminationCode
from core.errors import InvalidParameterValue, InvalidState, NotFound

_L = LifeCycle

# Every legal change of a task run's life cycle. A task run is created BLOCKED (by RunStarted) or
# WAITING_FOR_RETRY (a retry); a final attempt never changes again (a repair creates new attempts).
TASK_TRANSITIONS: dict[LifeCycle, frozenset[LifeCycle]] = {
    _L.BLOCKED: frozenset({_L.PENDING, _L.TERMINATED}),  # ready to start; or not run / canceled
    _L.WAITING_FOR_RETRY: frozenset({_L.PENDING, _L.TERMINATED}),  # retry due; or canceled
    _L.PENDING: frozenset({_L.RUNNING, _L.TERMINATED}),  # launched; or failed to launch / killed
    _L.RUNNING: frozenset({_L.TERMINATED}),
    _L.QUEUED: frozenset(),  # runs only
    _L.TERMINATING: frozenset(),  # runs only
    _L.TERMINATED: frozenset(),
    _L.SKIPPED: frozenset(),
    _L.INTERNAL_ERROR: frozenset(),
}

# Every legal change of a run's life cycle. A run is created QUEUED or PENDING by whoever accepts it.
RUN_TRANSITIONS: dict[LifeCycle, frozenset[LifeCycle]] = {
    _L.QUEUED: frozenset({_L.PENDING, _L.TERMINATED}),  # promoted; or canceled while queued
    _L.PENDING: frozenset({_L.RUNNING, _L.TERMINATED}),  # started; or canceled before it started
    _L.RUNNING: frozenset({_L.TERMINATING, _L.TERMINATED}),  # cancel / timeout; or all tasks final
    _L.TERMINATING: frozenset({_L.TERMINATED}),  # the last killed attempt ended
    _L.BLOCKED: frozenset(),  # tasks only
    _L.WAITING_FOR_RETRY: frozenset(),  # tasks only
    _L.TERMINATED: frozenset(),
    _L.SKIPPED: frozenset(),
    _L.INTERNAL_ERROR: frozenset(),
}


class IllegalTransition(InvalidState):
    """A record was asked to change life cycle in a way the transition tables forbid."""

    def __init__(self, record: str, from_state: LifeCycle, to_state: LifeCycle, why: str = "") -> None:
        super().__init__(f"{record} cannot go from {from_state} to {to_state}" + (f": {why}" if why else ""))
        self.from_state = from_state
        self.to_state = to_state


def describe_task_run(task_run: TaskRun) -> str:
    return f"task run {task_run.run_id} (task {task_run.task_key!r})"


def check_task_transition(task_run: TaskRun, to: LifeCycle) -> None:
    """Raise `IllegalTransition` unless `TASK_TRANSITIONS` allows `task_run` to move to `to`."""
    if to not in TASK_TRANSITIONS[task_run.life_cycle]:
        raise IllegalTransition(describe_task_run(task_run), task_run.life_cycle, to)


def check_run_transition(run: Run, to: LifeCycle) -> None:
    """Raise `IllegalTransition` unless `RUN_TRANSITIONS` allows `run` to move to `to`."""
    if to not in RUN_TRANSITIONS[run.life_cycle]:
        raise IllegalTransition(f"run {run.run_id}", run.life_cycle, to)


def latest_attempts(tasks: Mapping[int, TaskRun] | list[TaskRun] | tuple[TaskRun, ...]) -> dict[str, TaskRun]:
    """The latest attempt (highest attempt_number) of every task, by task_key. Downstream tasks and the
    run's result only ever look at these."""
    latest: dict[str, TaskRun] = {}
    for task in tasks.values() if isinstance(tasks, Mapping) else tasks:
        current = latest.get(task.task_key)
        if current is None or task.attempt_number > current.attempt_number:
            latest[task.task_key] = task
    return latest


def apply(
    run: Run,
    tasks: Mapping[int, TaskRun],
    dag: Dag,
    event: Event,
    now: int,
    new_id: Callable[[], int],
    ctx: ReferenceContext | None = None,
) -> Step:
    """Apply `event` to `run` (whose task runs, every attempt, are `tasks` by task run id) at `now`.

    `dag` is the graph of the settings the run executes; `new_id` makes task run ids; `ctx` gives
    condition tasks what their operands may reference (job parameters, task values, ...), the engine
    filling in the task and the results it knows. Raises `NotFound` for a task run id the run does not
    have, `InvalidParameterValue` for a `TaskEnded` result the launcher may not report, and
    `IllegalTransition` for an event the run's state forbids (e.g. `TaskStarted` for a blocked task).
    """
    handler = _HANDLERS.get(type(event))
    if handler is None:
        raise TypeError(f"{type(event).__name__} is not an engine event")
    work = _Work(run, tasks, dag, now, new_id, ctx)
    if not handler(work, event):
        return Step(run=run)
    _advance(work)
    _schedule_wake(work, again=isinstance(event, Advance))
    return Step(run=work.run, tasks=dict(work.changed), commands=tuple(work.commands))


class _Work:
    """The working copy of one `apply`: the run and its task runs as they are changed, and the output."""

    def __init__(
        self,
        run: Run,
        tasks: Mapping[int, TaskRun],
        dag: Dag,
        now: int,
        new_id: Callable[[], int],
        ctx: ReferenceContext | None,
    ) -> None:
        self.run = run
        self.tasks = dict(tasks)
        self.dag = dag
        self.now = now
        self.new_id = new_id
        self.ctx = ctx
        self.latest = latest_attempts(tasks)
        self.changed: dict[int, TaskRun] = {}
        self.commands: list[Command] = []

    def task(self, task_run_id: int) -> TaskRun:
        try:
            return self.tasks[task_run_id]
        except KeyError:
            raise NotFound("Task run", task_run_id) from None

    def put(self, task: TaskRun) -> TaskRun:
        self.tasks[task.run_id] = task
        self.changed[task.run_id] = task
        current = self.latest.get(task.task_key)
        if current is None or task.attempt_number >= current.attempt_number:
            self.latest[task.task_key] = task
        return task

    def move(self, task: TaskRun, to: LifeCycle, **changes: object) -> TaskRun:
        check_task_transition(task, to)
        return self.put(replace(task, life_cycle=to, **changes))  # type: ignore[arg-type]

    def end(
        self,
        task: TaskRun,
        result: Result,
        message: str,
        *,
        code: TerminationCode | None = None,
        by_user: bool = False,
        **changes: object,
    ) -> TaskRun:
        """Move a task run to TERMINATED with `result`, its termination, `end_time`, and (when an attempt
        failed, timed out or was canceled) the message as its `error`."""
        return self.move(
            task,
            _L.TERMINATED,
            result=result,
            state_message=message,
            termination=rules.task_termination(result, message, code, by_user=by_user),
            end_time=self.now,
            error=message if result in ENDED_RESULTS and result is not Result.SUCCESS else None,
            **changes,
        )

    def move_run(self, to: LifeCycle, **changes: object) -> None:
        check_run_transition(self.run, to)
        self.run = replace(self.run, life_cycle=to, **changes)  # type: ignore[arg-type]

    @property
    def active(self) -> bool:
        return self.run.life_cycle in (_L.RUNNING, _L.TERMINATING)


# -- event handlers: each returns False when the event is a no-op (duplicate or stale) -------------------


def _on_run_started(work: _Work, event: RunStarted) -> bool:
    if work.run.life_cycle is not _L.PENDING or work.run.cancel_requested:
        return False  # a duplicate, or a run cancelled before it started
    work.move_run(_L.RUNNING, start_time=work.run.start_time or work.now, state_message="")
    return True


def _on_task_started(work: _Work, event: TaskStarted) -> bool:
    task = work.task(event.task_run_id)
    if task.is_final or task.life_cycle is _L.RUNNING:
        return False
    work.move(task, _L.RUNNING, start_time=work.now, state_message="Running.")
    return True


def _on_task_ended(work: _Work, event: TaskEnded) -> bool:
    task = work.task(event.task_run_id)
    if task.is_final:
        return False
    if event.result not in ENDED_RESULTS:
        raise InvalidParameterValue(
            f"A task attempt cannot end with result {event.result}: "
            f"use one of {', '.join(sorted(ENDED_RESULTS))}."
        )
    if task.life_cycle not in (_L.PENDING, _L.RUNNING):
        raise IllegalTransition(
            describe_task_run(task), task.life_cycle, _L.TERMINATED, "it was never started"
        )
    result = event.result
    if task.cancel_reason is not None and result is not Result.SUCCESS:
        # A killed attempt ends for the reason it was killed, whatever the process reported on its way out.
        result = task.cancel_reason
    message = event.message or _ended_message(work, task, result)
    by_user = result is Result.CANCELED and task.cancel_reason is Result.CANCELED
    ended = work.end(task, result, message, code=event.code, by_user=by_user, exit_code=event.exit_code)
    _maybe_retry(work, ended)
    return True


def _on_cancel_run(work: _Work, event: CancelRun) -> bool:
    if work.run.is_final or work.run.cancel_requested:
        return False
    _cancel_run(work, Result.CANCELED, event.message or "Run canceled by user.")
    return True


def _on_cancel_task(work: _Work, event: CancelTask) -> bool:
    task = work.latest[work.task(event.task_run_id).task_key]
    if task.is_final or task.cancel_requested or work.run.cancel_requested or not work.active:
        return False
    if task.life_cycle in (_L.BLOCKED, _L.WAITING_FOR_RETRY):
        work.end(task, Result.CANCELED, "Canceled by user.", by_user=True, cancel_reason=Result.CANCELED)
    else:
        _kill(work, task, Result.CANCELED, "Canceling: stop requested by user.")
    return True


def _on_advance(work: _Work, event: Advance) -> bool:
    return True


_HANDLERS: dict[type, Callable[[_Work, Any], bool]] = {
    RunStarted: _on_run_started,
    TaskStarted: _on_task_started,
    TaskEnded: _on_task_ended,
    CancelRun: _on_cancel_run,
    CancelTask: _on_cancel_task,
    Advance: _on_advance,
}


# -- advancing ---------------------------------------------------------------------------------------


def _advance(work: _Work) -> None:
    if work.active:
        _create_missing_task_runs(work)
        _check_job_timeout(work)
        if not work.run.cancel_requested:
            # One pass in topological order is enough: a decision only ever makes tasks further down ready.
            for node in work.dag:
                task = work.latest[node.key]
                if task.life_cycle is _L.BLOCKED:
                    _evaluate_blocked(work, node, task)
                elif task.life_cycle is _L.WAITING_FOR_RETRY and task.retry_at <= work.now:
                    _queue(work, task, f"Starting retry {task.attempt_number}{_of_retries(node)}.")
                elif task.life_cycle is _L.RUNNING:
                    _check_task_timeout(work, node, task)
    _maybe_finish(work)


def _create_missing_task_runs(work: _Work) -> None:
    # RunStarted creates them; doing it here too lets a re-driven Advance repair a run whose task runs
    # were lost between writing the run and writing its tasks.
    for node in work.dag:
        if node.key not in work.latest:
            task_run_id = work.new_id()
            waiting = ", ".join(repr(key) for key in node.upstream)
            work.put(
                TaskRun(
                    task_key=node.key,
                    run_id=task_run_id,
                    parent_run_id=work.run.run_id,
                    original_attempt_run_id=task_run_id,
                    state_message=f"Waiting for {waiting}." if waiting else "",
                )
            )


def _evaluate_blocked(work: _Work, node: Node, task: TaskRun) -> None:
    finished = []
    for dep in node.depends_on:
        upstream = work.latest.get(dep.task_key)
        if upstream is None or not upstream.is_final:
            return  # run_if is evaluated only once every dependency's latest attempt is final
        finished.append((dep, upstream))
    decision = rules.decide(node.run_if, finished)
    if not decision.run:
        assert decision.result is not None
        work.end(task, decision.result, decision.reason, start_time=work.now)
    elif node.disabled:
        work.end(task, Result.DISABLED, "Disabled in the job settings.", start_time=work.now)
    elif node.condition is not None:
        _evaluate_condition(work, node, task)
    else:
        _queue(work, task, "Starting.")


def _queue(work: _Work, task: TaskRun, message: str) -> None:
    queued = work.move(task, _L.PENDING, queued_time=work.now, state_message=message)
    work.commands.append(StartTask(queued.run_id, queued.task_key, queued.attempt_number))


def _evaluate_condition(work: _Work, node: Node, task: TaskRun) -> None:
    # Condition tasks need no process: the engine evaluates them the moment they are ready.
    assert node.condition is not None
    condition = node.condition
    try:
        context = _task_context(work, task)
        left, right = resolve(condition.left, context), resolve(condition.right, context)
    except InvalidParameterValue as exc:
        code = TerminationCode.INVALID_RUN_CONFIGURATION
        work.end(task, Result.FAILED, exc.message, code=code, start_time=work.now)
        return
    outcome = "true" if rules.compare(condition.op, left, right) else "false"
    work.end(
        task,
        Result.SUCCESS,
        f"Condition {left!r} {condition.op} {right!r} is {outcome}.",
        start_time=work.now,
        outcome=outcome,
        resolved_values={"condition_task": {"left": left, "right": right}},
    )


def _task_context(work: _Work, task: TaskRun) -> ReferenceContext:
    run = work.run
    base = work.ctx or ReferenceContext(
        job_id=run.job_id,
        run_id=run.run_id,
        start_time_ms=run.start_time,
        trigger_type=run.trigger.value,
        parameters=run.job_parameters,
    )
    results = {t.task_key: t.result for t in work.latest.values() if t.is_final and t.result is not None}
    error_codes = {
        key: task.termination.code.value
        for key, task in work.latest.items()
        if key in results and results[key] is not Result.SUCCESS and task.termination is not None
    }
    return replace(
        base,
        task_key=task.task_key,
        task_run_id=task.run_id,
        attempt_number=task.attempt_number,
        task_results={**base.task_results, **{key: result.value for key, result in results.items()}},
        task_error_codes={**base.task_error_codes, **error_codes},
    )


def _maybe_retry(work: _Work, ended: TaskRun) -> None:
    node = work.dag.nodes.get(ended.task_key)
    if node is None or node.condition is not None or work.run.cancel_requested:
        return
    retryable = ended.result is Result.FAILED or (
        ended.result is Result.TIMEDOUT and node.retry.retry_on_timeout
    )
    if not retryable or ended.cancel_reason is Result.CANCELED:
        return
    if not node.retry.allows_retry_after(ended.attempt_number):
        return
    # Measured from the START of the failed attempt (the Jobs API's rule); an attempt that never
    # started counts from when it was queued.
    due = node.retry.due(ended.start_time or ended.queued_time or work.now)
    attempt = ended.attempt_number + 1
    work.put(
        TaskRun(
            task_key=ended.task_key,
            run_id=work.new_id(),
            parent_run_id=ended.parent_run_id,
            attempt_number=attempt,
            original_attempt_run_id=ended.original_attempt_run_id or ended.run_id,
            life_cycle=_L.WAITING_FOR_RETRY,
            retry_at=due,
            state_message=f"Attempt {ended.attempt_number} {_verb(ended.result)}; "
            f"retry {attempt}{_of_retries(node)} is due at {_iso(due)}.",
        )
    )


def _check_task_timeout(work: _Work, node: Node, task: TaskRun) -> None:
    if node.timeout_ms and not task.cancel_requested and work.now >= task.start_time + node.timeout_ms:
        _kill(
            work,
            task,
            Result.TIMEDOUT,
            f"Timing out: ran longer than {node.timeout_ms // 1000} s (timeout_seconds).",
        )


def _check_job_timeout(work: _Work) -> None:
    deadline = _job_deadline(work.run, work.dag)
    if deadline and not work.run.cancel_requested and work.now >= deadline:
        timeout = work.dag.timeout_ms
        message = f"Run timed out: it ran longer than {timeout // 1000} s (timeout_seconds)."
        _cancel_run(work, Result.TIMEDOUT, message)


def _kill(work: _Work, task: TaskRun, reason: Result, message: str) -> None:
    work.put(replace(task, cancel_requested=True, cancel_reason=reason, state_message=message))
    work.commands.append(KillTask(task.run_id, task.task_key, reason))


def _cancel_run(work: _Work, reason: Result, message: str) -> None:
    """Stop everything: attempts that may have a process are killed (and the run waits for them in
    TERMINATING); attempts that have none (BLOCKED, WAITING_FOR_RETRY) end CANCELED at once, even when
    the reason is the job's timeout: they did not time out, they were stopped because the run did."""
    work.run = replace(
        work.run,
        cancel_requested=True,
        cancel_reason=reason,
        user_cancelled_or_timedout=True,
        state_message=message,
    )
    by_user = reason is Result.CANCELED
    stopped = "Canceled: the run was canceled." if by_user else "Canceled: the run timed out."
    for task in list(work.latest.values()):
        if task.life_cycle in (_L.BLOCKED, _L.WAITING_FOR_RETRY):
            work.end(task, Result.CANCELED, stopped, by_user=by_user, cancel_reason=reason)
        elif task.life_cycle in (_L.PENDING, _L.RUNNING) and not task.cancel_requested:
            _kill(
                work,
                task,
                reason,
                "Canceling: the run is being canceled." if by_user else "Timing out: the run timed out.",
            )
    if work.run.life_cycle is _L.RUNNING:
        work.move_run(_L.TERMINATING)


def _maybe_finish(work: _Work) -> None:
    run = work.run
    if run.is_final:
        return
    if not work.active and not run.cancel_requested:
        return  # QUEUED or PENDING: not started yet
    if work.active and any(key not in work.latest or not work.latest[key].is_final for key in work.dag.order):
        return
    outcome = rules.run_outcome(work.dag, work.latest, run.cancel_reason, run.state_message)
    work.move_run(
        _L.TERMINATED,
        result=outcome.result,
        termination=outcome.termination,
        state_message=outcome.message,
        end_time=work.now,
        wake_at=0,
    )
    work.commands.append(RunFinished(run.run_id, outcome.result))


# -- deadlines ---------------------------------------------------------------------------------------


def next_deadline(run: Run, tasks: Mapping[int, TaskRun], dag: Dag, now: int) -> int | None:
    """The earliest instant after `now` at which `Advance` would change something by itself: a retry
    falling due, a running attempt's timeout, the job's timeout. None when nothing is pending."""
    return _next_deadline(run, latest_attempts(tasks), dag, now)


def _next_deadline(run: Run, latest: Mapping[str, TaskRun], dag: Dag, now: int) -> int | None:
    if run.life_cycle is not _L.RUNNING or run.cancel_requested:
        return None
    job_deadline = _job_deadline(run, dag)
    deadlines = [job_deadline] if job_deadline else []
    for task in latest.values():
        node = dag.nodes.get(task.task_key)
        if task.life_cycle is _L.WAITING_FOR_RETRY:
            deadlines.append(task.retry_at)
        elif task.life_cycle is _L.RUNNING and node and node.timeout_ms and not task.cancel_requested:
            deadlines.append(task.start_time + node.timeout_ms)
    future = [deadline for deadline in deadlines if deadline > now]
    return min(future) if future else None


def _job_deadline(run: Run, dag: Dag) -> int:
    # The job's timeout counts from when the run started (queueing excluded); 0 when there is none.
    started = run.start_time or run.created_time
    return started + dag.timeout_ms if dag.timeout_ms and started else 0


def _schedule_wake(work: _Work, *, again: bool) -> None:
    wake = _next_deadline(work.run, work.latest, work.dag, work.now) or 0
    # A WakeAt sent for the previous wake_at is still on its way if that instant is in the future; its
    # Advance will ask for the next one. So a new WakeAt is needed only when nothing is on its way by
    # then, or when this is an Advance (it may be that very wake-up, or have arrived early).
    on_its_way = work.run.wake_at if work.run.wake_at > work.now else 0
    if wake and (again or not on_its_way or wake < on_its_way):
        work.commands.append(WakeAt(wake))
    if wake != work.run.wake_at:
        work.run = replace(work.run, wake_at=wake)


# -- messages ----------------------------------------------------------------------------------------


def _ended_message(work: _Work, task: TaskRun, result: Result) -> str:
    if result is Result.TIMEDOUT:
        node = work.dag.nodes.get(task.task_key)
        if work.run.cancel_reason is Result.TIMEDOUT or node is None or not node.timeout_ms:
            return "Timed out: the run timed out."
        return f"Timed out after {node.timeout_ms // 1000} s (timeout_seconds)."
    if result is Result.CANCELED:
        return "Canceled by user." if task.cancel_reason is Result.CANCELED else "Canceled."
    return "" if result is Result.SUCCESS else "The task failed."


def _verb(result: Result | None) -> str:
    return "timed out" if result is Result.TIMEDOUT else "failed"


def _of_retries(node: Node) -> str:
    return "" if node.retry.max_retries == -1 else f" of {node.retry.max_retries}"


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
