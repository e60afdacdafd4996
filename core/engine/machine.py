"""The run state machine: `apply(run, tasks, dag, event, now, new_id, ctx) -> Step`.

A pure function. It reads no clock (time is `now`, epoch ms), makes no ids of its own (`new_id`), does
no I/O. A handler loads a run and all its task runs, applies one event, writes back `Step.run` and the
task runs in `Step.tasks` (only those created or changed) with conditional writes, and then carries out
`Step.commands`. Queues deliver at least once and out of order, so an event that no longer applies (a
second `TaskEnded` for the same attempt, a `TaskStarted` for an attempt already over, a `RepairRun`
already applied) returns an unchanged Step with no commands.

After every event the run is advanced: blocked tasks whose dependencies all finished are decided
(`rules.decide`) and started, due retries start, overdue attempts are killed, for-each tasks fill their
free slots (`foreach`), and a run whose tasks are all final ends with its result (`rules.run_outcome`).
Every change of life cycle goes through the tables in `transitions`; anything else raises
`IllegalTransition`. Deadlines and the `WakeAt` commands are explained in `deadlines`; for-each tasks in
`foreach`; run-job tasks in `runjob`; repairs in `repair`.

How a ready task starts depends on its type: a condition task is evaluated on the spot, a for-each task
creates its iterations, a run-job task asks for a child run (`StartChildRun`), any other task is
launched (`StartTask`).

Queueing (max_concurrent_runs) is decided by the service, across runs; the engine only moves the run:
`Enqueue` (PENDING -> QUEUED, no task runs are created while it waits), `Dequeue` (QUEUED -> PENDING ->
RUNNING, as `RunStarted`), `Skip` (-> SKIPPED / MAXIMUM_CONCURRENT_RUNS_REACHED). `CancelRun` ends a
QUEUED or PENDING run CANCELED at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from core.engine import deadlines, foreach, repair, rules, runjob
from core.engine.dag import Dag, Node
from core.engine.deadlines import next_deadline
from core.engine.events import (
    ENDED_RESULTS,
    Advance,
    CancelRun,
    CancelTask,
    Dequeue,
    Enqueue,
    Event,
    RepairRun,
    RunFinished,
    RunStarted,
    Skip,
    StartTask,
    Step,
    TaskEnded,
    TaskStarted,
)
from core.engine.records import Run, TaskRun, latest_attempts
from core.engine.references import ReferenceContext, resolve
from core.engine.states import LifeCycle, Result, TerminationCode
from core.engine.transitions import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    IllegalTransition,
    check_run_transition,
    check_task_transition,
    describe_task_run,
)
from core.engine.work import Work, of_retries, timeout_message
from core.errors import InvalidParameterValue, InvalidState

__all__ = [
    "RUN_TRANSITIONS",
    "TASK_TRANSITIONS",
    "IllegalTransition",
    "apply",
    "check_run_transition",
    "check_task_transition",
    "latest_attempts",
    "next_deadline",
]

_L = LifeCycle
# task_retry_mode ON_FAILURE retries with the back-off of continuous restarts (core.schedule.continuous).
CONTINUOUS_RETRY_FIRST_MS = 10_000
CONTINUOUS_RETRY_MAX_MS = 600_000


def apply(
    run: Run,
    tasks: Mapping[int, TaskRun],
    dag: Dag,
    event: Event,
    now: int,
    new_id: Callable[[], int],
    ctx: ReferenceContext | None = None,
) -> Step:
    """Apply `event` to `run` (whose task runs, every attempt and iteration, are `tasks` by task run id)
    at `now`.

    `dag` is the graph of the settings the run executes (for `RepairRun`: the settings the repair runs);
    `new_id` makes task run ids; `ctx` gives what references may name (job parameters, task values, ...),
    the engine filling in the task, the results it knows and an iteration's input. Raises `NotFound` for a
    task run id the run does not have, `InvalidParameterValue` for a `TaskEnded` result the launcher may
    not report or a bad repair request, `InvalidState` for a repair of a run that is not finished, and
    `IllegalTransition` for an event the run's state forbids (e.g. `TaskStarted` for a blocked task).
    """
    handler = _HANDLERS.get(type(event))
    if handler is None:
        raise TypeError(f"{type(event).__name__} is not an engine event")
    work = Work(run, tasks, dag, now, new_id, ctx)
    if not handler(work, event):
        return Step(run=run)
    _advance(work)
    deadlines.schedule_wake(work, again=isinstance(event, Advance))
    return Step(run=work.run, tasks=dict(work.changed), commands=tuple(work.commands))


# -- event handlers: each returns False when the event is a no-op (duplicate or stale) -------------------


def _on_run_started(work: Work, event: RunStarted) -> bool:
    if work.run.life_cycle is not _L.PENDING or work.run.cancel_requested:
        return False  # a duplicate, or a run cancelled before it started
    work.move_run(_L.RUNNING, start_time=work.run.start_time or work.now, state_message="")
    return True


def _on_enqueue(work: Work, event: Enqueue) -> bool:
    run = work.run
    if run.cancel_requested or run.life_cycle not in (_L.PENDING, _L.QUEUED) or run.start_time:
        return False  # started, finished or cancelled meanwhile: too late to queue
    if run.life_cycle is _L.QUEUED and run.queue_reason == event.reason_message:
        return False
    if run.life_cycle is _L.QUEUED:
        work.run = replace(run, queue_reason=event.reason_message, state_message=event.reason_message)
    else:
        work.move_run(_L.QUEUED, queue_reason=event.reason_message, state_message=event.reason_message)
    return True


def _on_dequeue(work: Work, event: Dequeue) -> bool:
    if work.run.life_cycle is not _L.QUEUED or work.run.cancel_requested:
        return False
    work.move_run(_L.PENDING, queue_reason=None)
    work.move_run(_L.RUNNING, start_time=work.now, state_message="")
    return True


def _on_skip(work: Work, event: Skip) -> bool:
    run = work.run
    if run.cancel_requested or run.life_cycle not in (_L.PENDING, _L.QUEUED) or run.start_time:
        return False
    result = Result.MAXIMUM_CONCURRENT_RUNS_REACHED
    termination = rules.termination(TerminationCode.MAX_CONCURRENT_RUNS_EXCEEDED, event.message)
    work.move_run(
        _L.SKIPPED,
        result=result,
        termination=termination,
        state_message=event.message,
        queue_reason=None,
        end_time=work.now,
    )
    work.commands.append(RunFinished(run.run_id, result))
    return True


def _on_task_started(work: Work, event: TaskStarted) -> bool:
    task = work.task(event.task_run_id)
    if task.is_final or task.life_cycle is _L.RUNNING:
        return False
    work.move(task, _L.RUNNING, start_time=work.now, state_message="Running.")
    return True


def _on_task_ended(work: Work, event: TaskEnded) -> bool:
    task = work.task(event.task_run_id)
    if task.is_final:
        return False
    if event.result not in ENDED_RESULTS:
        raise InvalidParameterValue(
            f"A task attempt cannot end with result {event.result}: "
            f"use one of {', '.join(sorted(ENDED_RESULTS))}."
        )
    node = work.node_of(task)
    if node is not None and node.for_each is not None and not task.is_iteration:
        raise InvalidState(
            f"{describe_task_run(task)} is a for_each_task: it is never launched, and ends when its "
            "iterations have; report the end of each iteration instead."
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


def _on_cancel_run(work: Work, event: CancelRun) -> bool:
    if work.run.is_final or work.run.cancel_requested:
        return False
    _cancel_run(work, Result.CANCELED, event.message or "Run canceled by user.")
    return True


def _on_cancel_task(work: Work, event: CancelTask) -> bool:
    task = work.latest_of(work.task(event.task_run_id))
    parent = work.tasks.get(task.parent_task_run_id) if task.parent_task_run_id is not None else None
    if task.is_final or task.cancel_requested or work.run.cancel_requested or not work.active:
        return False
    if parent is not None and parent.cancel_requested:
        return False  # its for-each is being stopped already
    if task.life_cycle in (_L.BLOCKED, _L.WAITING_FOR_RETRY):
        work.end(task, Result.CANCELED, "Canceled by user.", by_user=True, cancel_reason=Result.CANCELED)
    else:
        _kill(work, task, Result.CANCELED, "Canceling: stop requested by user.")
    return True


def _on_advance(work: Work, event: Advance) -> bool:
    return True


def _on_repair(work: Work, event: RepairRun) -> bool:
    return repair.repair(work, event)


_HANDLERS: dict[type, Callable[[Work, Any], bool]] = {
    RunStarted: _on_run_started,
    Enqueue: _on_enqueue,
    Dequeue: _on_dequeue,
    Skip: _on_skip,
    TaskStarted: _on_task_started,
    TaskEnded: _on_task_ended,
    CancelRun: _on_cancel_run,
    CancelTask: _on_cancel_task,
    Advance: _on_advance,
    RepairRun: _on_repair,
}


# -- advancing ---------------------------------------------------------------------------------------


def _advance(work: Work) -> None:
    if work.active:
        _create_missing_task_runs(work)
        _check_job_timeout(work)
        # One pass in topological order is enough: a decision only ever makes tasks further down ready.
        for node in work.dag:
            task = work.latest[node.key]
            stopping = work.run.cancel_requested
            if task.life_cycle is _L.BLOCKED and not stopping:
                _evaluate_blocked(work, node, task)
            elif task.life_cycle is _L.WAITING_FOR_RETRY and not stopping and task.retry_at <= work.now:
                _launch(work, node, task, f"Starting retry {work.retry_number(task)}{of_retries(node)}.")
            elif task.life_cycle is _L.RUNNING:
                if not stopping and work.overdue(node, task):
                    _kill(work, task, Result.TIMEDOUT, timeout_message(node))
                if node.for_each is not None:  # even when stopping: it ends once its iterations have
                    foreach.advance(work, node, task, start)
    _maybe_finish(work)


def _create_missing_task_runs(work: Work) -> None:
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


def _evaluate_blocked(work: Work, node: Node, task: TaskRun) -> None:
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
    else:
        start(work, node, task, "Starting.")


def start(work: Work, node: Node, task: TaskRun, message: str) -> None:
    """Start a task run that may run now (a ready task, a for-each iteration whose turn came, a due
    retry), the way its type needs."""
    if node.condition is not None:
        _evaluate_condition(work, node, task)
    elif node.for_each is not None:
        foreach.begin(work, node, task, start)
    else:
        _launch(work, node, task, message)


def _launch(work: Work, node: Node, task: TaskRun, message: str) -> None:
    if node.run_job is not None:
        runjob.start_child_run(work, node, task, message)
        return
    queued = work.move(task, _L.PENDING, queued_time=work.now, state_message=message)
    work.commands.append(StartTask(queued.run_id, queued.task_key, queued.attempt_number))


def _evaluate_condition(work: Work, node: Node, task: TaskRun) -> None:
    # Condition tasks need no process: the engine evaluates them the moment they are ready.
    assert node.condition is not None
    condition = node.condition
    try:
        context = work.context_for(task)
        left, right = resolve(condition.left, context), resolve(condition.right, context)
    except InvalidParameterValue as exc:
        work.fail_config(task, exc.message)
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


def _maybe_retry(work: Work, ended: TaskRun) -> None:
    node = work.node_of(ended)
    if node is None or node.condition is not None or node.for_each is not None or work.run.cancel_requested:
        return
    if ended.parent_task_run_id is not None:
        parent = work.tasks.get(ended.parent_task_run_id)
        if parent is None or parent.cancel_requested or parent.is_final:
            return  # its for-each is being stopped: no new attempts
    retryable = ended.result is Result.FAILED or (
        ended.result is Result.TIMEDOUT and node.retry.retry_on_timeout
    )
    if not retryable or ended.cancel_reason is Result.CANCELED:
        return
    number = work.retry_number(ended)
    # Measured from the START of the failed attempt (the Jobs API's rule); an attempt that never
    # started counts from when it was queued.
    started = ended.start_time or ended.queued_time or work.now
    if node.retry.allows_retry_after(number):
        due, of = node.retry.due(started), of_retries(node)
    elif (
        work.dag.retry_on_failure and ended.result is Result.FAILED and _another_in_first_attempt(work, ended)
    ):
        due = started + min(CONTINUOUS_RETRY_FIRST_MS * 2 ** min(number, 16), CONTINUOUS_RETRY_MAX_MS)
        of = " (task_retry_mode ON_FAILURE)"
    else:
        return
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
            f"retry {number + 1}{of} is due at {_iso(due)}.",
            parent_task_run_id=ended.parent_task_run_id,
            iteration=ended.iteration,
            input=ended.input,
        )
    )


def _another_in_first_attempt(work: Work, ended: TaskRun) -> bool:
    """Whether a task other than `ended`'s is still running its first attempt (task_retry_mode
    ON_FAILURE of a continuous job retries only then; otherwise the run ends and a new one starts)."""
    return any(
        t.task_key != ended.task_key
        and not t.is_final
        and work.retry_number(t) == 0
        and t.parent_task_run_id is None
        for t in work.tasks.values()
    )


def _check_job_timeout(work: Work) -> None:
    deadline = deadlines.job_deadline(work.run, work.dag)
    if deadline and not work.run.cancel_requested and work.now >= deadline:
        timeout = work.dag.timeout_ms
        message = f"Run timed out: it ran longer than {timeout // 1000} s (timeout_seconds)."
        _cancel_run(work, Result.TIMEDOUT, message)


def _kill(work: Work, task: TaskRun, reason: Result, message: str) -> None:
    node = work.node_of(task)
    if node is not None and node.for_each is not None and not task.is_iteration:
        foreach.stop(work, task, reason, message)
    else:
        work.kill(task, reason, message)


def _cancel_run(work: Work, reason: Result, message: str) -> None:
    """Stop everything: attempts that may have a process are killed (and the run waits for them in
    TERMINATING); attempts that have none (BLOCKED, WAITING_FOR_RETRY) end CANCELED at once, even when
    the reason is the job's timeout: they did not time out, they were stopped because the run did. A
    for-each task is stopped the same way, iteration by iteration."""
    work.run = replace(
        work.run,
        cancel_requested=True,
        cancel_reason=reason,
        user_cancelled_or_timedout=True,
        state_message=message,
        queue_reason=None,
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


def _maybe_finish(work: Work) -> None:
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
    repair.close(work)
    work.commands.append(RunFinished(run.run_id, outcome.result))


# -- messages ----------------------------------------------------------------------------------------


def _ended_message(work: Work, task: TaskRun, result: Result) -> str:
    if result is Result.TIMEDOUT:
        node = work.node_of(task)
        parent = work.tasks.get(task.parent_task_run_id) if task.parent_task_run_id is not None else None
        if parent is not None and parent.cancel_reason is Result.TIMEDOUT and work.run.cancel_reason is None:
            return "Timed out: the for-each task timed out."
        if work.run.cancel_reason is Result.TIMEDOUT or node is None or not node.timeout_ms:
            return "Timed out: the run timed out."
        return f"Timed out after {node.timeout_ms // 1000} s (timeout_seconds)."
    if result is Result.CANCELED:
        return "Canceled by user." if task.cancel_reason is Result.CANCELED else "Canceled."
    return "" if result is Result.SUCCESS else "The task failed."


def _verb(result: Result | None) -> str:
    return "timed out" if result is Result.TIMEDOUT else "failed"


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
