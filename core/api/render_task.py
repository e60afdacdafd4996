"""Pure rendering of the parts of a run: `state` and `status`, task run entries (`tasks[]`, for-each
`iterations[]`), for-each stats, resolved values and `repair_history`. `core.api.render` assembles them
into whole replies.

For-each iterations are TaskRuns whose `parent_task_run_id` is the run id of their for-each task's
attempt. They are never listed in a job run's `tasks[]`: the for-each task's entry carries their counts
(`for_each_task.stats`), and runs/get of the for-each task run lists them as `iterations`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from core.engine.records import RepairEntry, Run, TaskRun, Termination
from core.engine.states import LifeCycle, Result, TerminationCode, TerminationType, status_state
from core.views import RunView

_C, _T = TerminationCode, TerminationType
# Used only when a final run carries no recorded termination.
_TERMINATION_BY_RESULT: dict[Result, tuple[TerminationCode, TerminationType]] = {
    Result.SUCCESS: (_C.SUCCESS, _T.SUCCESS),
    Result.SUCCESS_WITH_FAILURES: (_C.SUCCESS_WITH_FAILURES, _T.SUCCESS),
    Result.FAILED: (_C.RUN_EXECUTION_ERROR, _T.CLIENT_ERROR),
    Result.TIMEDOUT: (_C.TIMEDOUT, _T.CLIENT_ERROR),
    Result.CANCELED: (_C.CANCELED, _T.SUCCESS),
    Result.MAXIMUM_CONCURRENT_RUNS_REACHED: (_C.MAX_CONCURRENT_RUNS_EXCEEDED, _T.CLIENT_ERROR),
    Result.EXCLUDED: (_C.EXCLUDED, _T.SUCCESS),
    Result.UPSTREAM_FAILED: (_C.UPSTREAM_FAILED, _T.CLIENT_ERROR),
    Result.UPSTREAM_CANCELED: (_C.UPSTREAM_CANCELED, _T.CLIENT_ERROR),
    Result.DISABLED: (_C.DISABLED, _T.SUCCESS),
}
# Results that do not make a run FAILED (a task that was not meant to run is no failure).
_NOT_FAILED = frozenset({Result.SUCCESS, Result.SUCCESS_WITH_FAILURES, Result.EXCLUDED, Result.DISABLED})
QUEUE_CODE = "MAX_CONCURRENT_RUNS_REACHED"  # Floe queues a run only for its job's max_concurrent_runs

# The Jobs API `ResolvedValues` shape: per task type, the fields that hold parameter values.
RESOLVED_FIELDS: dict[str, tuple[str, ...]] = {
    "condition_task": ("left", "right"),
    "dbt_task": ("commands",),
    "notebook_task": ("base_parameters",),
    "pipeline_task": ("parameters",),
    "python_wheel_task": ("named_parameters", "parameters"),
    "run_job_task": ("job_parameters", "parameters"),
    "spark_jar_task": ("parameters",),
    "spark_python_task": ("parameters",),
    "spark_submit_task": ("parameters",),
    "sql_task": ("parameters",),
}


# ------------------------------------------------------------------------------------------ state


def render_state(
    life_cycle: LifeCycle,
    result: Result | None,
    message: str,
    cancelled_or_timedout: bool,
    queue_reason: str | None = None,
) -> dict[str, Any]:
    """The deprecated `state` object, which the SDK waiter, Airflow and the legacy CLI read. A QUEUED
    state says why in `queue_reason` (the given reason, else the message)."""
    state: dict[str, Any] = {"life_cycle_state": life_cycle.value}
    if life_cycle.is_final and result is not None:
        state["result_state"] = result.value
    state["state_message"] = message
    state["user_cancelled_or_timedout"] = cancelled_or_timedout
    reason = queue_reason or message
    if life_cycle is LifeCycle.QUEUED and reason:
        state["queue_reason"] = reason
    return state


def render_status(
    life_cycle: LifeCycle,
    result: Result | None,
    termination: Termination | None,
    message: str,
    queue_reason: str | None = None,
) -> dict[str, Any]:
    """The v2 `status` object."""
    status: dict[str, Any] = {"state": status_state(life_cycle).value}
    if life_cycle is LifeCycle.QUEUED:
        status["queue_details"] = {"code": QUEUE_CODE, "message": queue_reason or message}
    if life_cycle.is_final:
        if termination is not None:
            code, kind, text = termination.code, termination.type, termination.message or message
        elif life_cycle is LifeCycle.INTERNAL_ERROR:
            code, kind, text = _C.INTERNAL_ERROR, _T.INTERNAL_ERROR, message
        elif result is not None and result in _TERMINATION_BY_RESULT:
            (code, kind), text = _TERMINATION_BY_RESULT[result], message
        else:
            code, kind, text = _C.SKIPPED, _T.SUCCESS, message
        status["termination_details"] = {"code": code.value, "type": kind.value, "message": text}
    return status


def clamp(value: int) -> int:
    return value if value > 0 else 0


def run_page_url(base_url: str, job_id: int, run_id: int) -> str:
    base = base_url if base_url.endswith("/") else base_url + "/"
    return f"{base}#job/{job_id}/run/{run_id}"


# ------------------------------------------------------------------------ task runs and iterations


def _iteration_of(task: TaskRun) -> int:
    """An iteration's index; the id of its first attempt when the index is not recorded."""
    if task.iteration is not None:
        return task.iteration
    return task.original_attempt_run_id or task.run_id


def ordered_attempts(view: RunView) -> list[TaskRun]:
    """Every attempt of the job's own tasks (no iterations), by the task's position in the spec, then
    attempt number (unknown keys last)."""
    position = {t.get("task_key"): i for i, t in enumerate(view.spec.get("tasks", ()))}
    last = len(position)
    return sorted(
        (t for t in view.tasks if t.parent_task_run_id is None),
        key=lambda t: (position.get(t.task_key, last), t.task_key, t.attempt_number, t.run_id),
    )


def iterations_by_parent(tasks: Sequence[TaskRun]) -> dict[int, list[TaskRun]]:
    """The iterations of each for-each task run (by its run id), by iteration, then attempt."""
    out: dict[int, list[TaskRun]] = {}
    for task in tasks:
        if task.parent_task_run_id is not None:
            out.setdefault(task.parent_task_run_id, []).append(task)
    for iterations in out.values():
        iterations.sort(key=lambda t: (_iteration_of(t), t.attempt_number, t.run_id))
    return out


def task_settings(view: RunView, task: TaskRun) -> Mapping[str, Any] | None:
    """The settings a task run executes: its task in the spec, or for an iteration the task nested in its
    for-each task. None when the spec does not have it (e.g. a task removed by jobs/update)."""
    by_key = {t.get("task_key"): t for t in view.spec.get("tasks", ())}
    if task.parent_task_run_id is None:
        return by_key.get(task.task_key)
    parent = next((t for t in view.tasks if t.run_id == task.parent_task_run_id), None)
    for_each = (by_key.get(parent.task_key) or {}).get("for_each_task") if parent is not None else None
    return for_each.get("task") if isinstance(for_each, Mapping) else None


def render_task_run(
    task: TaskRun,
    settings: Mapping[str, Any] | None,
    *,
    job_id: int,
    base_url: str,
    now_ms: int,
    include_resolved_values: bool = False,
    iterations: Sequence[TaskRun] = (),
) -> dict[str, Any]:
    """One attempt of one task (or one iteration): its settings from the spec, plus this attempt's run
    fields. A for-each task's `for_each_task` gains `stats`, counted over `iterations` (its own)."""
    out: dict[str, Any] = dict(settings) if settings else {}
    out["task_key"] = task.task_key
    started = task.queued_time or task.start_time  # the wire start includes cluster setup
    message = task.state_message or task.error or ""
    out.update(
        {
            "run_id": task.run_id,
            "attempt_number": task.attempt_number,
            "original_attempt_run_id": task.original_attempt_run_id or task.run_id,
            **({"cluster_instance": {"cluster_id": task.cluster_id}} if task.cluster_id else {}),
            "start_time": started,
            "end_time": task.end_time,
            "setup_duration": clamp(task.start_time - task.queued_time)
            if task.queued_time and task.start_time
            else 0,
            "execution_duration": clamp(task.end_time - task.start_time)
            if task.start_time and task.end_time
            else 0,
            "cleanup_duration": 0,
            "run_duration": clamp((task.end_time or now_ms) - started) if started else 0,
            "queue_duration": 0,
            "state": render_state(
                task.life_cycle,
                task.result,
                message,
                task.cancel_requested or task.result is Result.TIMEDOUT,
            ),
            "status": render_status(task.life_cycle, task.result, task.termination, message),
            "run_page_url": run_page_url(base_url, job_id, task.run_id),
        }
    )
    if task.outcome is not None and "condition_task" in out:
        out["condition_task"] = {**out["condition_task"], "outcome": task.outcome}
    if isinstance(out.get("for_each_task"), Mapping):
        stats = for_each_stats(iterations, _input_count(task, out["for_each_task"]))
        out["for_each_task"] = {**out["for_each_task"], "stats": {"task_run_stats": stats}}
    if include_resolved_values and task.resolved_values:
        resolved = render_resolved_values(task.resolved_values)
        if resolved:
            out["resolved_values"] = resolved
    return out


def for_each_stats(iterations: Sequence[TaskRun], inputs: int | None = None) -> dict[str, int]:
    """`task_run_stats` of a for-each task run, over the latest attempt of each iteration.

    total: the number of inputs (`inputs` when known, never fewer than the iterations there are);
    scheduled: iterations past BLOCKED (started, running or done); active: scheduled and not final;
    completed: final, of which succeeded (SUCCESS) and failed (any other result but EXCLUDED/DISABLED).
    """
    latest: dict[int, TaskRun] = {}
    for task in iterations:
        key = _iteration_of(task)
        current = latest.get(key)
        if current is None or (task.attempt_number, task.run_id) > (current.attempt_number, current.run_id):
            latest[key] = task
    runs = list(latest.values())
    scheduled = [t for t in runs if t.life_cycle is not LifeCycle.BLOCKED]
    completed = [t for t in runs if t.is_final]
    return {
        "total_iterations": max(len(runs), inputs or 0),
        "scheduled_iterations": len(scheduled),
        "active_iterations": len(scheduled) - len(completed),
        "completed_iterations": len(completed),
        "succeeded_iterations": sum(1 for t in completed if t.result is not None and t.result.is_success),
        "failed_iterations": sum(1 for t in completed if t.result not in _NOT_FAILED),
    }


def _input_count(task: TaskRun, for_each: Mapping[str, Any]) -> int | None:
    """How many inputs a for-each task iterates over: its resolved `inputs`, else its literal `inputs`,
    when that is JSON array text; None when unknown (an unresolved reference)."""
    resolved = (task.resolved_values or {}).get("for_each_task")
    for source in (resolved, for_each):
        inputs = source.get("inputs") if isinstance(source, Mapping) else None
        if isinstance(inputs, str) and "{{" not in inputs:
            try:
                parsed = json.loads(inputs)
            except ValueError:
                continue
            if isinstance(parsed, list):
                return len(parsed)
    return None


def render_resolved_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """`resolved_values` in the Jobs API `ResolvedValues` shape, from a TaskRun's resolved settings.

    The service records, per task type, that type's settings with every reference resolved
    (`{"spark_python_task": {"python_file": ..., "parameters": [...]}}`); only the parameter-bearing fields
    are shown (`RESOLVED_FIELDS`), and types with none of them (for_each_task, or a task without
    parameters) are left out.
    """
    out: dict[str, Any] = {}
    for kind, resolved in values.items():
        fields = RESOLVED_FIELDS.get(kind)
        if fields is None or not isinstance(resolved, Mapping):
            continue
        picked = {name: resolved[name] for name in fields if resolved.get(name) is not None}
        if picked:
            out[kind] = picked
    return out


# ---------------------------------------------------------------------------------- repair history


def render_repair_history(run: Run, attempts: Sequence[TaskRun]) -> list[dict[str, Any]]:
    """`repair_history`: the ORIGINAL entry first, then each REPAIR, oldest first.

    `attempts` are the run's task runs (no iterations). When the service recorded no ORIGINAL entry, one
    is made from the run: the task runs no repair lists, ending when the last of them ended, with their
    result. An entry without a recorded state takes the run's own when it is the latest one (a repair in
    progress is the run's current state), else the result of its task runs.
    """
    entries = list(run.repair_history)
    if not entries or entries[0].type != "ORIGINAL":
        repaired = {rid for entry in entries for rid in entry.task_run_ids}
        originals = [t for t in attempts if t.run_id not in repaired]
        if entries:
            end, life_cycle, result = (
                max((t.end_time for t in originals), default=0),
                LifeCycle.TERMINATED,
                _result_of(originals),
            )
        else:
            end, life_cycle, result = run.end_time, run.life_cycle, run.result
        original = RepairEntry(
            "ORIGINAL", None, run.created_time, end, tuple(t.run_id for t in originals), life_cycle, result
        )
        entries.insert(0, original)
    by_id = {t.run_id: t for t in attempts}
    last = len(entries) - 1
    out = []
    for i, entry in enumerate(entries):
        life_cycle, result, end = entry.life_cycle, entry.result, entry.end_time
        if life_cycle is None and i == last:
            life_cycle, result, end = run.life_cycle, run.result, end or run.end_time
        elif life_cycle is None:
            tasks = [by_id[rid] for rid in entry.task_run_ids if rid in by_id]
            life_cycle, result = LifeCycle.TERMINATED, _result_of(tasks)
        out.append(_repair_entry(entry, life_cycle, result, end))
    return out


def _result_of(tasks: Sequence[TaskRun]) -> Result:
    """FAILED when the latest attempt of any task failed, else SUCCESS."""
    latest: dict[str, TaskRun] = {}
    for task in tasks:
        current = latest.get(task.task_key)
        if current is None or task.attempt_number > current.attempt_number:
            latest[task.task_key] = task
    failed = any(t.result not in _NOT_FAILED for t in latest.values())
    return Result.FAILED if failed else Result.SUCCESS


def _repair_entry(
    entry: RepairEntry, life_cycle: LifeCycle, result: Result | None, end_time: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": entry.type}
    if entry.id is not None:
        out["id"] = entry.id
    out["start_time"] = entry.start_time
    out["end_time"] = end_time
    out["state"] = render_state(life_cycle, result, "", False)
    out["status"] = render_status(life_cycle, result, None, "")
    out["task_run_ids"] = list(entry.task_run_ids)
    return out
