"""Pure functions from service records (`core.views`) to Jobs API reply bodies.

No clock, no I/O: the caller passes `now_ms` and the request's `base_url`. Rules kept here because
clients depend on them:
- `state` is always present on a run and a task run (the SDK waiter crashes without it);
  `result_state` appears only once the life cycle is final.
- `run_page_url` is always present (Airflow and the legacy CLI require it).
- `repair_history`, when asked for, starts with the ORIGINAL entry (Airflow counts on it).
- Page tokens are omitted on the last page, never "" or null (the SDK's get/get_run loop forever on "").
- For-each iterations are never in a job run's `tasks[]`; runs/get of the for-each task run lists them
  as `iterations` (see `core.api.render_task`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.api.render_task import (
    clamp,
    iterations_by_parent,
    ordered_attempts,
    render_repair_history,
    render_state,
    render_status,
    render_task_run,
    run_page_url,
    task_settings,
)
from core.engine.records import Run, TaskRun
from core.engine.states import LifeCycle, TriggerType
from core.errors import InvalidParameterValue, RunNotFound
from core.views import JobPage, JobRecord, RunOutput, RunPage, RunView

__all__ = [
    "PAGE_SIZE",
    "page_arrays",
    "page_run",
    "parse_page_token",
    "render_job",
    "render_job_list",
    "render_output",
    "render_run",
    "render_run_list",
    "render_state",
    "render_status",
    "render_task_as_run",
    "render_task_run",
]

PAGE_SIZE = 100  # API 2.2: array elements per reply
RUN_ARRAYS = ("tasks", "job_clusters", "job_parameters", "repair_history")
# runs/get of a for-each task run pages its iterations instead of its (single) task.
ITERATION_RUN_ARRAYS = ("iterations", "job_clusters", "job_parameters", "repair_history")
JOB_ARRAYS = ("tasks", "job_clusters", "parameters", "environments")
LIST_RUN_ARRAYS = ("tasks", "job_clusters")


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


# ------------------------------------------------------------------------------------------- runs


def render_run(
    view: RunView,
    *,
    base_url: str,
    now_ms: int,
    include_tasks: bool = True,
    include_history: bool = False,
    include_resolved_values: bool = False,
) -> dict[str, Any]:
    """runs/get, every array whole (`page_run` cuts a 2.2 page out of it). A view focused on a task run
    renders that task run as the Run (`render_task_as_run`)."""
    if view.focus_task_run_id is not None:
        return render_task_as_run(
            view,
            _focus(view),
            base_url=base_url,
            now_ms=now_ms,
            include_resolved_values=include_resolved_values,
        )
    run, spec = view.run, view.spec
    queue_reason = run.queue_reason
    out: dict[str, Any] = {
        "job_id": run.job_id,
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "original_attempt_run_id": run.run_id,
        "creator_user_name": run.creator_user_name,
        "run_name": run.run_name or view.job_name or "Untitled",
        "run_type": run.run_type.value,
        "trigger": run.trigger.value,
        "state": render_state(
            run.life_cycle, run.result, run.state_message, run.user_cancelled_or_timedout, queue_reason
        ),
        "status": render_status(run.life_cycle, run.result, run.termination, run.state_message, queue_reason),
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
        iterations = iterations_by_parent(view.tasks)
        settings = {t.get("task_key"): t for t in spec.get("tasks", ())}
        out["tasks"] = [
            render_task_run(
                task,
                settings.get(task.task_key),
                job_id=run.job_id,
                base_url=base_url,
                now_ms=now_ms,
                include_resolved_values=include_resolved_values,
                iterations=iterations.get(task.run_id, ()),
            )
            for task in attempts
        ]
    if include_history:
        out["repair_history"] = render_repair_history(run, attempts)
    return out


def render_task_as_run(
    view: RunView,
    task: TaskRun,
    *,
    base_url: str,
    now_ms: int,
    include_resolved_values: bool = False,
) -> dict[str, Any]:
    """One task run (an iteration included) of `view` as a Run object: runs/get of a task run id, and
    the `metadata` of runs/get-output.

    It has the task entry's fields (task_key, run_id, attempt_number, original_attempt_run_id, state,
    status, timing, run_page_url, the task's settings) and the job run's identity (`job_id`, `job_run_id`
    = the job run, run_name, run_type, trigger). `tasks` holds the task's own entry (for a for-each task,
    with its stats); a for-each task run also lists its `iterations`, each rendered like a task entry.
    """
    run = view.run
    settings = task_settings(view, task)
    iterations = iterations_by_parent(view.tasks).get(task.run_id, [])
    entry = render_task_run(
        task,
        settings,
        job_id=run.job_id,
        base_url=base_url,
        now_ms=now_ms,
        include_resolved_values=include_resolved_values,
        iterations=iterations,
    )
    out = dict(entry)
    out.update(
        {
            "job_id": run.job_id,
            "job_run_id": run.run_id,
            "number_in_job": run.run_id,
            "creator_user_name": run.creator_user_name,
            "run_name": run.run_name or view.job_name or "Untitled",
            "run_type": run.run_type.value,
            "trigger": run.trigger.value,
            "format": "MULTI_TASK",
            "tasks": [entry],
        }
    )
    for_each = settings.get("for_each_task") if settings else None
    if isinstance(for_each, Mapping):
        out["iterations"] = [
            render_task_run(
                iteration,
                for_each.get("task"),
                job_id=run.job_id,
                base_url=base_url,
                now_ms=now_ms,
                include_resolved_values=include_resolved_values,
            )
            for iteration in iterations
        ]
    return out


def _focus(view: RunView) -> TaskRun:
    task = next((t for t in view.tasks if t.run_id == view.focus_task_run_id), None)
    if task is None:  # the service's view does not hold the task run it names
        raise RunNotFound(view.focus_task_run_id or 0)
    return task


def page_run(out: dict[str, Any], offset: int) -> dict[str, Any]:
    """API 2.2 paging of a rendered run: 100 tasks, job clusters, parameters and repair entries per reply;
    later pages carry the next slice of each (empty arrays left out, `tasks` always present). A for-each
    task run pages its `iterations` instead (its `tasks` is its own entry, repeated on every page; the SDK
    merges `iterations` pages when the first page had iterations, and then ignores later `tasks`)."""
    if "iterations" in out:
        return _with_next_page(out, page_arrays(out, ITERATION_RUN_ARRAYS, offset, keep="iterations"), offset)
    return _with_next_page(out, page_arrays(out, RUN_ARRAYS, offset, keep="tasks"), offset)


def _run_duration(run: Run, now_ms: int) -> int:
    if not run.created_time:
        return 0
    return clamp((run.end_time or now_ms) - run.created_time)


def _queue_duration(run: Run, now_ms: int) -> int:
    if not run.created_time:
        return 0
    if run.start_time:
        return clamp(run.start_time - run.created_time)
    return clamp(now_ms - run.created_time) if run.life_cycle is LifeCycle.QUEUED else 0


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
    """runs/get-output: the task run as a Run object (`metadata`, without `tasks` / `iterations`) plus
    whatever output exists: `notebook_output` as the service gives it, `run_job_output` for a run_job_task
    that started its child run, `logs`, `error`, `error_trace`."""
    metadata = render_task_as_run(output.view, output.task, base_url=base_url, now_ms=now_ms)
    del metadata["tasks"]
    metadata.pop("iterations", None)
    out: dict[str, Any] = {"metadata": metadata}
    if output.notebook_output is not None:
        out["notebook_output"] = dict(output.notebook_output)
    if output.sql_output is not None:
        out["sql_output"] = dict(output.sql_output)
    if output.task.child_run_id is not None:
        out["run_job_output"] = {"run_id": output.task.child_run_id}
    if output.logs is not None:
        out["logs"] = output.logs
        out["logs_truncated"] = output.logs_truncated
    if output.error is not None:
        out["error"] = output.error
    if output.error_trace is not None:
        out["error_trace"] = output.error_trace
    return out
