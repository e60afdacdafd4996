"""Repairs (runs/repair): re-running chosen tasks of a finished run, inside the same run.

- Only a TERMINATED run can be repaired: an active one is refused (InvalidState: wait or cancel), and so
  are SKIPPED and INTERNAL_ERROR runs, whose tasks never ran.
- Which tasks: `rerun_tasks` (each must be a task of the settings the repair runs, the CURRENT job
  settings, whose graph is the `dag` given with the event), or `rerun_all_failed_tasks`: every task whose
  latest attempt did not end SUCCESS, EXCLUDED or DISABLED. With `rerun_dependent_tasks`, everything
  downstream of them too. Tasks new in the settings are created as well (they never ran); tasks gone
  from them keep their last attempt and no longer count for the run's result.
- Each gets a new attempt: a new task run id, BLOCKED, decided by the normal rules against the latest
  attempts of its dependencies (a task not re-run counts with its last result). Its attempt_number
  continues from the task's latest, so the latest attempt is still the one with the highest number and
  `{{task.execution_count}}` counts repairs; it starts a new chain of retries (original_attempt_run_id is
  itself), so the task's max_retries apply afresh.
- The run goes back to RUNNING (TERMINATED -> RUNNING, which only a repair may do) with its result,
  termination, end time and cancel flags cleared; the job's timeout counts from the repair's start.
- `repair_history` gets the ORIGINAL entry the first time (the run's creation and end time, state and
  task run ids as they were) and a REPAIR entry (its id, start_time = now, the new task run ids). When the
  run ends again that entry gets its end time and state, and the ids of every attempt made during the
  repair (retries included).
- A RepairRun whose repair_id is in the history already is a duplicate delivery: a no-op.
"""

from __future__ import annotations

from dataclasses import replace

from core.engine.events import RepairRun
from core.engine.records import RepairEntry, Run, TaskRun
from core.engine.rules import LEAF_OK
from core.engine.states import LifeCycle
from core.engine.work import Work
from core.errors import InvalidParameterValue, InvalidState

_L = LifeCycle
_MAX_NAMED = 10


def open_repair(run: Run) -> RepairEntry | None:
    """The REPAIR entry of a repair under way (the last one, not ended yet), or None."""
    if run.repair_history and run.repair_history[-1].type == "REPAIR" and not run.repair_history[-1].end_time:
        return run.repair_history[-1]
    return None


def repair(work: Work, event: RepairRun) -> bool:
    """Apply `event` (see the module docstring); False for a duplicate. Raises InvalidState for a run
    that cannot be repaired and InvalidParameterValue for a bad choice of tasks."""
    run = work.run
    if any(entry.type == "REPAIR" and entry.id == event.repair_id for entry in run.repair_history):
        return False
    if run.life_cycle is not _L.TERMINATED:
        if run.life_cycle.is_active:
            raise InvalidState(
                f"Run {run.run_id} is {run.life_cycle}: only a finished run can be repaired; "
                "wait for it to end, or cancel it first."
            )
        raise InvalidState(f"Run {run.run_id} ended {run.life_cycle} without running: it cannot be repaired.")
    chosen = _chosen(work, event)
    if not chosen and all(key in work.latest for key in work.dag.order):
        raise InvalidParameterValue(
            f"Run {run.run_id} has no failed tasks: there is nothing to repair (rerun_all_failed_tasks)."
        )

    history = list(run.repair_history)
    if not history:
        before = sorted(task.run_id for task in work.tasks.values() if task.parent_task_run_id is None)
        history.append(
            RepairEntry(
                type="ORIGINAL",
                id=None,
                start_time=run.created_time or run.start_time,
                end_time=run.end_time,
                task_run_ids=tuple(before),
                life_cycle=run.life_cycle,
                result=run.result,
            )
        )
    new_ids = [
        _new_attempt(work, key).run_id for key in work.dag.order if key in chosen or key not in work.latest
    ]
    history.append(
        RepairEntry(type="REPAIR", id=event.repair_id, start_time=work.now, task_run_ids=tuple(new_ids))
    )

    parameters = dict(event.job_parameters) if event.job_parameters is not None else run.job_parameters
    work.move_run(
        _L.RUNNING,
        repair=True,
        result=None,
        termination=None,
        state_message="",
        end_time=0,
        cancel_requested=False,
        cancel_reason=None,
        user_cancelled_or_timedout=False,
        wake_at=0,
        repair_history=tuple(history),
        job_parameters=parameters,
        spec_ref=event.spec_ref or run.spec_ref,
    )
    if work.ctx is not None:  # what conditions decided in this very step may reference
        repairs = sum(1 for entry in history if entry.type == "REPAIR")
        work.ctx = replace(work.ctx, parameters=parameters, repair_count=repairs)
    return True


def close(work: Work) -> None:
    """The run just ended: complete the REPAIR entry of the repair under way, if any."""
    entry = open_repair(work.run)
    if entry is None:
        return
    history = list(work.run.repair_history)
    earlier = {run_id for past in history[:-1] for run_id in past.task_run_ids}
    made = sorted(
        t.run_id for t in work.tasks.values() if t.parent_task_run_id is None and t.run_id not in earlier
    )
    history[-1] = replace(
        entry,
        end_time=work.now,
        life_cycle=work.run.life_cycle,
        result=work.run.result,
        task_run_ids=tuple(made),
    )
    work.run = replace(work.run, repair_history=tuple(history))


def _chosen(work: Work, event: RepairRun) -> set[str]:
    if event.rerun_tasks and event.rerun_all_failed_tasks:
        raise InvalidParameterValue("Give either rerun_tasks or rerun_all_failed_tasks, not both.")
    if event.rerun_all_failed_tasks:
        chosen = {
            key for key in work.dag.order if key in work.latest and work.latest[key].result not in LEAF_OK
        }
    elif event.rerun_tasks:
        unknown = sorted({key for key in event.rerun_tasks if key not in work.dag.nodes})
        if unknown:
            known = list(work.dag.order)
            listed = ", ".join(repr(key) for key in known[:_MAX_NAMED]) + (
                ", ..." if len(known) > _MAX_NAMED else ""
            )
            raise InvalidParameterValue(
                f"rerun_tasks: {', '.join(repr(key) for key in unknown)} "
                f"{'is not a task' if len(unknown) == 1 else 'are not tasks'} of job {work.run.job_id} "
                f"(its tasks: {listed or 'none'})."
            )
        chosen = set(event.rerun_tasks)
    else:
        raise InvalidParameterValue(
            "Give rerun_tasks (the task keys to re-run), or set rerun_all_failed_tasks."
        )
    if event.rerun_dependent_tasks:
        waiting = list(chosen)
        while waiting:
            for child in work.dag.nodes[waiting.pop()].downstream:
                if child not in chosen:
                    chosen.add(child)
                    waiting.append(child)
    return chosen


def _new_attempt(work: Work, key: str) -> TaskRun:
    previous = work.latest.get(key)
    run_id = work.new_id()
    waiting = ", ".join(repr(upstream) for upstream in work.dag.nodes[key].upstream)
    return work.put(
        TaskRun(
            task_key=key,
            run_id=run_id,
            parent_run_id=work.run.run_id,
            attempt_number=previous.attempt_number + 1 if previous is not None else 0,
            original_attempt_run_id=run_id,
            state_message=f"Waiting for {waiting}." if waiting else "",
        )
    )
