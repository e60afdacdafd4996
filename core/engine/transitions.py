"""Every legal change of life cycle, for runs and for task runs, in two tables. Anything else raises
`IllegalTransition`, naming the record and both states."""

from __future__ import annotations

from core.engine.records import Run, TaskRun
from core.engine.states import LifeCycle
from core.errors import InvalidState

_L = LifeCycle

# A task run is created BLOCKED (when its run starts, a repair re-runs it, or it is a for-each
# iteration) or WAITING_FOR_RETRY (a retry); a final attempt never changes again (a repair creates new
# attempts). A for-each task run is never launched: it goes BLOCKED -> PENDING -> RUNNING in one step.
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

# Every legal change of a run's life cycle. A run is created PENDING by whoever accepts it.
RUN_TRANSITIONS: dict[LifeCycle, frozenset[LifeCycle]] = {
    # promoted by Dequeue; canceled while queued; skipped (the queue gave up on it)
    _L.QUEUED: frozenset({_L.PENDING, _L.TERMINATED, _L.SKIPPED}),
    # started; queued (Enqueue) or skipped (Skip) under max_concurrent_runs; canceled before it started
    _L.PENDING: frozenset({_L.QUEUED, _L.RUNNING, _L.TERMINATED, _L.SKIPPED}),
    _L.RUNNING: frozenset({_L.TERMINATING, _L.TERMINATED}),  # cancel / timeout; or all tasks final
    _L.TERMINATING: frozenset({_L.TERMINATED}),  # the last killed attempt ended
    _L.BLOCKED: frozenset(),  # tasks only
    _L.WAITING_FOR_RETRY: frozenset(),  # tasks only
    _L.TERMINATED: frozenset({_L.RUNNING}),  # only by RepairRun (runs/repair)
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
    if task_run.iteration is not None:
        return f"task run {task_run.run_id} (iteration {task_run.iteration} of task {task_run.task_key!r})"
    return f"task run {task_run.run_id} (task {task_run.task_key!r})"


def check_task_transition(task_run: TaskRun, to: LifeCycle) -> None:
    """Raise `IllegalTransition` unless `TASK_TRANSITIONS` allows `task_run` to move to `to`."""
    if to not in TASK_TRANSITIONS[task_run.life_cycle]:
        raise IllegalTransition(describe_task_run(task_run), task_run.life_cycle, to)


# Rows of RUN_TRANSITIONS that only a repair may take.
REPAIR_ONLY = frozenset({(_L.TERMINATED, _L.RUNNING)})


def check_run_transition(run: Run, to: LifeCycle, *, repair: bool = False) -> None:
    """Raise `IllegalTransition` unless `RUN_TRANSITIONS` allows `run` to move to `to` (and, for a
    `REPAIR_ONLY` change, unless this is a repair)."""
    if to not in RUN_TRANSITIONS[run.life_cycle]:
        raise IllegalTransition(f"run {run.run_id}", run.life_cycle, to)
    if (run.life_cycle, to) in REPAIR_ONLY and not repair:
        raise IllegalTransition(
            f"run {run.run_id}", run.life_cycle, to, "only a repair (runs/repair) reopens a finished run"
        )
