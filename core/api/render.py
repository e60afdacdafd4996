"""Pure functions from service records (`core.views`) to Jobs API reply bodies.

No clock, no I/O: the caller passes `now_ms` and the request's `base_url`. Rules kept here because
clients depend on them:
- `state` is always present on a run and a task run (the SDK waiter crashes without it);
  `result_state` appears only once the life cycle is final.
- `run_page_url` is always present (Airflow and the legacy CLI require it).
- `repair_history`, when asked for, starts with the ORIGINAL entry (Airflow counts on it).
- Page tokens are omitted on the last page, never "" or null (the SDK's get/get_run loop forever on "").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.engine.records import RepairEntry, Run, TaskRun, Termination
from core.engine.states import LifeCycle, Result, TerminationCode, TerminationType, TriggerType, status_state
from core.errors import InvalidParameterValue
from core.views import JobPage, JobRecord, RunOutput, RunPage, RunView

PAGE_SIZE = 100  # API 2.2: array elements per reply
RUN_ARRAYS = ("tasks", "job_clusters", "job_parameters", "repair_history")
JOB_ARRAYS = ("tasks", "job_clusters", "parameters", "environments")
LIST_RUN_ARRAYS = ("tasks", "job_clusters")

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


# ---------------------------------------------------------------------------------------- paging


def parse_page_token(token: str | None) -> int:
    """The array offset a runs/get or jobs/get page token stands for (ours are the offset in decimal)."""
    if token is None or token == "":
        return 0
    if not (token.isascii() and token.isdigit()):
        raise InvalidParameterValue(f"page_token is not a page token this server issued; got {token[:40]!r}.")
    return int(token)


def page_arrays(obj: dict[str, Any], keys: Iterable[str], offset: int, *, keep: str | None = None) -> bool:
    """Cut each array `obj[key]` to the page starting at `offset`; True if any has more after it.

    Arrays left empty are removed (the SDK reads a missing array as []), except `keep`.
    """
    more = False
    end = offset + PAGE_SIZE
    for key in keys:
        items = obj.get(key)
        if items is None:
            continue
        more = more or len(items) > end
        chunk = items[offset:end]
        if chunk or key == keep:
            obj[key] = chunk
        else:
            del obj[key]
    return more


def _with_next_page(obj: dict[str, Any], more: bool, offset: int) -> dict[str, Any]:
    if more:
        obj["next_page_token"] = str(offset + PAGE_SIZE)
    return obj


# ------------------------------------------------------------------------------------------ jobs


def render_job(job: JobRecord, *, page_offset: int | None = None) -> dict[str, Any]:
    """jobs/get. With `page_offset` (API 2.2) the settings arrays are paged 100 at a time."""
    settings = dict(job.settings)
    out: dict[str, Any] = {
        "job_id": job.job_id,
        "creator_user_name": job.creator_user_name,
        "run_as_user_name": job.run_as_user_name,
        "created_time": job.created_time,
        "settings": settings,
    }
    if page_offset is None:
        return out
    return _with_next_page(out, page_arrays(settings, JOB_ARRAYS, page_offset), page_offset)


def render_job_list(page: JobPage, *, expand_tasks: bool, cap: bool) -> dict[str, Any]:
    """jobs/list. Settings hold no tasks / job_clusters unless `expand_tasks`; with `cap` (2.2) an
    expanded job shows 100 of each array and `has_more: true` when it has more."""
    jobs = []
    for job in page.jobs:
        settings = dict(job.settings)
        item: dict[str, Any] = {
            "job_id": job.job_id,
            "creator_user_name": job.creator_user_name,
            "created_time": job.created_time,
            "settings": settings,
        }
        if not expand_tasks:
            settings.pop("tasks", None)
            settings.pop("job_clusters", None)
        elif cap and page_arrays(settings, JOB_ARRAYS, 0):
            item["has_more"] = True
        jobs.append(item)
    return _list_reply("jobs", jobs, page.has_more, page.next_page_token, page.prev_page_token)


def _list_reply(
    key: str, items: list[dict[str, Any]], has_more: bool, nxt: str | None, prev: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if items:
        out[key] = items
    out["has_more"] = has_more
    if nxt:
        out["next_page_token"] = nxt
    if prev:
        out["prev_page_token"] = prev
    return out


# ------------------------------------------------------------------------------------------ state


def render_state(
    life_cycle: LifeCycle, result: Result | None, message: str, cancelled_or_timedout: bool
) -> dict[str, Any]:
    """The deprecated `state` object, which the SDK waiter, Airflow and the legacy CLI read."""
    state: dict[str, Any] = {"life_cycle_state": life_cycle.value}
    if life_cycle.is_final and result is not None:
        state["result_state"] = result.value
    state["state_message"] = message
    state["user_cancelled_or_timedout"] = cancelled_or_timedout
    if life_cycle is LifeCycle.QUEUED and message:
        state["queue_reason"] = message
    return state


def render_status(
    life_cycle: LifeCycle, result: Result | None, termination: Termination | None, message: str
) -> dict[str, Any]:
    """The v2 `status` object."""
    status: dict[str, Any] = {"state": status_state(life_cycle).value}
    if life_cycle is LifeCycle.QUEUED:
        status["queue_details"] = {"code": "MAX_CONCURRENT_RUNS_REACHED", "message": message}
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


def _clamp(value: int) -> int:
    return value if value > 0 else 0


# ------------------------------------------------------------------------------------------- runs


def run_page_url(base_url: str, job_id: int, run_id: int) -> str:
    base = base_url if base_url.endswith("/") else base_url + "/"
    return f"{base}#job/{job_id}/run/{run_id}"


def ordered_attempts(view: RunView) -> list[TaskRun]:
    """Every attempt, by the task's position in the spec, then attempt number (unknown keys last)."""
    position = {t.get("task_key"): i for i, t in enumerate(view.spec.get("tasks", ()))}
    last = len(position)
    return sorted(
        view.tasks,
        key=lambda t: (position.get(t.task_key, last), t.task_key, t.attempt_number, t.run_id),
    )


def render_run(
    view: RunView,
    *,
    base_url: str,
    now_ms: int,
    include_tasks: bool = True,
    include_history: bool = False,
    include_resolved_values: bool = False,
) -> dict[str, Any]:
    """runs/get, every array whole (`page_run` cuts a 2.2 page out of it)."""
    run, spec = view.run, view.spec
    out: dict[str, Any] = {
        "job_id": run.job_id,
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "original_attempt_run_id": run.run_id,
        "creator_user_name": run.creator_user_name,
        "run_name": run.run_name or view.job_name or "Untitled",
        "run_type": run.run_type.value,
        "trigger": run.trigger.value,
        "state": render_state(run.life_cycle, run.result, run.state_message, run.user_cancelled_or_timedout),
        "status": render_status(run.life_cycle, run.result, run.termination, run.state_message),
        "start_time": run.created_time,
        "end_time": run.end_time,
        "setup_duration": 0,
        "execution_duration": 0,
        "cleanup_duration": 0,
        "run_duration": _run_duration(run, now_ms),
        "queue_duration": _queue_duration(run, now_ms),
        "run_page_url": run_page_url(base_url, run.job_id, run.run_id),
        "format": "MULTI_TASK",
    }
    if run.trigger_info:
        out["trigger_info"] = dict(run.trigger_info)
    if run.trigger is TriggerType.PERIODIC and "schedule" in spec:
        out["schedule"] = spec["schedule"]
    if "git_source" in spec:
        out["git_source"] = spec["git_source"]
    parameters = _job_parameters(spec.get("parameters", ()), run.job_parameters)
    if parameters:
        out["job_parameters"] = parameters
    if run.overriding_parameters:
        out["overriding_parameters"] = dict(run.overriding_parameters)
    attempts = ordered_attempts(view) if include_tasks or include_history else []
    if include_tasks:
        if spec.get("job_clusters"):
            out["job_clusters"] = list(spec["job_clusters"])
        settings = {t.get("task_key"): t for t in spec.get("tasks", ())}
        out["tasks"] = [
            render_task_run(
                task,
                settings.get(task.task_key),
                job_id=run.job_id,
                base_url=base_url,
                now_ms=now_ms,
                include_resolved_values=include_resolved_values,
            )
            for task in attempts
        ]
    if include_history:
        out["repair_history"] = render_repair_history(run, attempts)
    return out


def page_run(out: dict[str, Any], offset: int) -> dict[str, Any]:
    """API 2.2 paging of a rendered run: 100 tasks, job clusters, parameters and repair entries per reply;
    later pages carry the next slice of each (empty arrays left out, `tasks` always present)."""
    return _with_next_page(out, page_arrays(out, RUN_ARRAYS, offset, keep="tasks"), offset)


def _run_duration(run: Run, now_ms: int) -> int:
    if not run.created_time:
        return 0
    return _clamp((run.end_time or now_ms) - run.created_time)


def _queue_duration(run: Run, now_ms: int) -> int:
    if not run.created_time:
        return 0
    if run.start_time:
        return _clamp(run.start_time - run.created_time)
    return _clamp(now_ms - run.created_time) if run.life_cycle is LifeCycle.QUEUED else 0


def _job_parameters(
    definitions: Sequence[Mapping[str, Any]], values: Mapping[str, str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for definition in definitions:
        name, default = definition["name"], definition.get("default", "")
        out.append({"name": name, "default": default, "value": values.get(name, default)})
    defined = {d["name"] for d in definitions}
    out.extend({"name": name, "value": value} for name, value in values.items() if name not in defined)
    return out


def render_task_run(
    task: TaskRun,
    settings: Mapping[str, Any] | None,
    *,
    job_id: int,
    base_url: str,
    now_ms: int,
    include_resolved_values: bool = False,
) -> dict[str, Any]:
    """One attempt of one task: its settings from the spec, plus this attempt's run fields."""
    out: dict[str, Any] = dict(settings) if settings else {"task_key": task.task_key}
    started = task.queued_time or task.start_time  # the wire start includes cluster setup
    message = task.state_message or task.error or ""
    out.update(
        {
            "run_id": task.run_id,
            "attempt_number": task.attempt_number,
            "original_attempt_run_id": task.original_attempt_run_id or task.run_id,
            "start_time": started,
            "end_time": task.end_time,
            "setup_duration": _clamp(task.start_time - task.queued_time)
            if task.queued_time and task.start_time
            else 0,
            "execution_duration": _clamp(task.end_time - task.start_time)
            if task.start_time and task.end_time
            else 0,
            "cleanup_duration": 0,
            "run_duration": _clamp((task.end_time or now_ms) - started) if started else 0,
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
    if include_resolved_values and task.resolved_values:
        out["resolved_values"] = dict(task.resolved_values)
    return out


def render_repair_history(run: Run, attempts: Sequence[TaskRun]) -> list[dict[str, Any]]:
    """The ORIGINAL entry first (synthesised from the run when the service has none), then repairs."""
    entries = list(run.repair_history)
    if not entries or entries[0].type != "ORIGINAL":
        repaired = {rid for entry in entries for rid in entry.task_run_ids}
        original = RepairEntry(
            type="ORIGINAL",
            id=None,
            start_time=run.created_time,
            end_time=run.end_time if not entries else max((t.end_time for t in attempts), default=0),
            task_run_ids=tuple(t.run_id for t in attempts if t.run_id not in repaired),
            life_cycle=run.life_cycle if not entries else LifeCycle.TERMINATED,
            result=run.result if not entries else None,
        )
        entries.insert(0, original)
    return [_repair_entry(entry) for entry in entries]


def _repair_entry(entry: RepairEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"type": entry.type}
    if entry.id is not None:
        out["id"] = entry.id
    out["start_time"] = entry.start_time
    out["end_time"] = entry.end_time
    if entry.life_cycle is not None:
        out["state"] = render_state(entry.life_cycle, entry.result, "", False)
        out["status"] = render_status(entry.life_cycle, entry.result, None, "")
    out["task_run_ids"] = list(entry.task_run_ids)
    return out


def render_run_list(
    page: RunPage, *, base_url: str, now_ms: int, expand_tasks: bool, cap: bool
) -> dict[str, Any]:
    """runs/list. Items carry tasks and job_clusters only with `expand_tasks`; with `cap` (2.2) at most
    100 of each and `has_more: true` when there are more."""
    runs = []
    for view in page.runs:
        item = render_run(view, base_url=base_url, now_ms=now_ms, include_tasks=expand_tasks)
        if expand_tasks and cap and page_arrays(item, LIST_RUN_ARRAYS, 0, keep="tasks"):
            item["has_more"] = True
        runs.append(item)
    return _list_reply("runs", runs, page.has_more, page.next_page_token, page.prev_page_token)


def render_output(output: RunOutput, *, base_url: str, now_ms: int) -> dict[str, Any]:
    """runs/get-output: the task run as a Run object (`metadata`) plus whatever output exists."""
    view, task = output.view, output.task
    run = view.run
    settings = next((t for t in view.spec.get("tasks", ()) if t.get("task_key") == task.task_key), None)
    metadata = render_task_run(task, settings, job_id=run.job_id, base_url=base_url, now_ms=now_ms)
    metadata.update(
        {
            "job_id": run.job_id,
            "job_run_id": run.run_id,
            "number_in_job": run.run_id,
            "creator_user_name": run.creator_user_name,
            "run_name": run.run_name or view.job_name or "Untitled",
            "run_type": run.run_type.value,
            "trigger": run.trigger.value,
            "format": "MULTI_TASK",
        }
    )
    out: dict[str, Any] = {"metadata": metadata}
    if output.notebook_output is not None:
        out["notebook_output"] = dict(output.notebook_output)
    if output.logs is not None:
        out["logs"] = output.logs
        out["logs_truncated"] = output.logs_truncated
    if output.error is not None:
        out["error"] = output.error
    if output.error_trace is not None:
        out["error_trace"] = output.error_trace
    return out
