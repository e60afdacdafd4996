"""Deadlines: the instants at which `Advance` would change something by itself, and the `WakeAt`
commands that bring it.

`Run.wake_at` holds the run's earliest future deadline (a retry falling due, a task, iteration or job
timeout). A step carries `WakeAt(at)` when no wake-up is on its way by `at` already; an `Advance` carries
the next deadline again, since it may be the wake-up that was on its way (or one that arrived early). So
one chain of wake-ups per run, at most one message per deadline in the usual case. A handler turns
`WakeAt` into a delayed `run.advance` message, rounding the delay up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from core.engine.dag import Dag
from core.engine.events import WakeAt
from core.engine.records import Run, TaskRun, latest_attempts, latest_iterations
from core.engine.repair import open_repair
from core.engine.states import LifeCycle
from core.engine.work import Work

_L = LifeCycle


def next_deadline(run: Run, tasks: Mapping[int, TaskRun], dag: Dag, now: int) -> int | None:
    """The earliest instant after `now` at which `Advance` would change something by itself: a retry
    falling due (of a task or of a for-each iteration), a running attempt's timeout, the job's timeout.
    None when nothing is pending."""
    return _earliest(run, latest_attempts(tasks), latest_iterations(tasks), dag, now)


def _earliest(
    run: Run,
    latest: Mapping[str, TaskRun],
    iterations: Mapping[int, Mapping[int, TaskRun]],
    dag: Dag,
    now: int,
) -> int | None:
    if run.life_cycle is not _L.RUNNING or run.cancel_requested:
        return None
    job = job_deadline(run, dag)
    deadlines = [job] if job else []
    for task in latest.values():
        node = dag.nodes.get(task.task_key)
        if task.life_cycle is _L.WAITING_FOR_RETRY:
            deadlines.append(task.retry_at)
        elif task.life_cycle is _L.RUNNING and node is not None and not task.cancel_requested:
            if node.timeout_ms:
                deadlines.append(task.start_time + node.timeout_ms)
            if node.for_each is not None:
                nested = node.for_each.task
                for iteration in iterations.get(task.run_id, {}).values():
                    if iteration.life_cycle is _L.WAITING_FOR_RETRY:
                        deadlines.append(iteration.retry_at)
                    elif (
                        iteration.life_cycle is _L.RUNNING
                        and nested.timeout_ms
                        and not iteration.cancel_requested
                    ):
                        deadlines.append(iteration.start_time + nested.timeout_ms)
    future = [deadline for deadline in deadlines if deadline > now]
    return min(future) if future else None


def job_deadline(run: Run, dag: Dag) -> int:
    """When the job's timeout expires; 0 when there is none. It counts from when the run started
    (queueing excluded), or during a repair from when the repair started."""
    repair = open_repair(run)
    started = repair.start_time if repair is not None else run.start_time or run.created_time
    return started + dag.timeout_ms if dag.timeout_ms and started else 0


def schedule_wake(work: Work, *, again: bool) -> None:
    """Set `run.wake_at` to the next deadline and emit `WakeAt` when none is on its way by then."""
    wake = _earliest(work.run, work.latest, work.iterations, work.dag, work.now) or 0
    # A WakeAt sent for the previous wake_at is still on its way if that instant is in the future; its
    # Advance will ask for the next one. So a new WakeAt is needed only when nothing is on its way by
    # then, or when this is an Advance (it may be that very wake-up, or have arrived early).
    on_its_way = work.run.wake_at if work.run.wake_at > work.now else 0
    if wake and (again or not on_its_way or wake < on_its_way):
        work.commands.append(WakeAt(wake))
    if wake != work.run.wake_at:
        work.run = replace(work.run, wake_at=wake)
