"""Whole-job validation: a job definition (or a runs/submit body) is checked as a whole before anything
is stored, and comes back normalized as the JSON that jobs/get echoes.

Two passes. The pydantic models (`core.model.jobs`, `core.model.tasks`) check every field on its own;
the rules below check what spans fields and tasks: one task type per task, unique keys, dependencies
that exist, no cycles, condition outcomes, cluster and environment references. Every failure is one
`InvalidParameterValue` whose message names the path (`settings.tasks[2].depends_on[0].task_key`), the
value and the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from core.engine.states import TASK_TYPES
from core.model.base import invalid, join_path, require_object, translate
from core.model.jobs import MAX_TASKS, JobSettings, SubmitRun
from core.model.tasks import COMPUTE_FIELDS

_TASK_TYPE_LIST = ", ".join(TASK_TYPES)
_SINGLE_TASK_FIELDS = frozenset(TASK_TYPES) | {"existing_cluster_id", "new_cluster", "libraries"}


def validate_job_settings(
    raw: Any, *, field: str = "settings", queue_default: bool = True, trigger_min_seconds: int = 60
) -> dict[str, Any]:
    """Validate a whole job definition and return it as jobs/get will echo it.

    Defaults Databricks fills are filled (`name`, `format`, `max_concurrent_runs`, `timeout_seconds`,
    `email_notifications`, `webhook_notifications`, and `queue.enabled` = `queue_default`, true for
    jobs created through API 2.2 and false through 2.0/2.1). `access_control_list` is dropped (it is not
    a setting). Raises `InvalidParameterValue` naming the first broken rule. `trigger_min_seconds` is the
    floor of file-arrival and table-update timers (60, as Databricks; tests may lower it).
    """
    body = _prepare(raw, field)
    _reject_single_task_format(body, field)
    settings = _parse(JobSettings, body, field)
    settings["format"] = "MULTI_TASK"
    settings.setdefault("name", "Untitled")
    settings.setdefault("max_concurrent_runs", 1)
    settings.setdefault("timeout_seconds", 0)
    settings.setdefault("email_notifications", {})
    settings.setdefault("webhook_notifications", {})
    settings.setdefault("queue", {"enabled": queue_default})
    if settings.get("schedule") is not None and settings.get("continuous") is not None:
        raise invalid(join_path(field, "continuous"), "cannot be set together with schedule")
    _check_unique(settings.get("parameters", ()), "name", join_path(field, "parameters"), "parameter names")
    _check_run(settings, field)
    _check_triggers(settings, field, trigger_min_seconds)
    return settings


def _check_triggers(settings: dict[str, Any], field: str, min_seconds: int) -> None:
    """The Quartz expression, time zone and trigger rules (`core.schedule`), checked when a job is saved."""
    from core.schedule import validate_schedule
    from core.schedule.triggers import validate_continuous, validate_trigger

    schedule = settings.get("schedule")
    if schedule:
        validate_schedule(
            schedule["quartz_cron_expression"],
            schedule["timezone_id"],
            expression_field=join_path(field, "schedule.quartz_cron_expression"),
            timezone_field=join_path(field, "schedule.timezone_id"),
        )
    if settings.get("trigger") is not None:
        validate_trigger(
            settings["trigger"], field=join_path(field, "trigger"), min_seconds_floor=min_seconds
        )
    if settings.get("continuous") is not None:
        validate_continuous(settings["continuous"], field=join_path(field, "continuous"))


def validate_submit(raw: Any) -> dict[str, Any]:
    """Validate a runs/submit body (same task rules as a job) and return it normalized.

    `run_name` defaults to "Untitled"; `access_control_list` is dropped. Paths in messages are relative
    to the body (`tasks[0].task_key`).
    """
    body = _prepare(raw, "")
    _reject_single_task_format(body, "")
    run = _parse(SubmitRun, body, "")
    run.setdefault("run_name", "Untitled")
    _check_run(run, "")
    return run


def _prepare(raw: Any, field: str) -> dict[str, Any]:
    body = require_object(raw, field)
    tasks = body.get("tasks")
    # Before pydantic, so an oversized job costs nothing to reject.
    if isinstance(tasks, list) and len(tasks) > MAX_TASKS:
        raise invalid(join_path(field, "tasks"), f"must have at most {MAX_TASKS} tasks (it has {len(tasks)})")
    if "access_control_list" in body:
        body = {k: v for k, v in body.items() if k != "access_control_list"}
    return body


def _reject_single_task_format(body: Mapping[str, Any], field: str) -> None:
    if "tasks" in body:
        return
    legacy = sorted(_SINGLE_TASK_FIELDS.intersection(body))
    if legacy:
        raise invalid(
            join_path(field, legacy[0]),
            "belongs to the single-task (API 2.0) format, which Floe does not accept; "
            "put the task in tasks[] with a task_key",
        )


def _parse(model: type[BaseModel], body: dict[str, Any], field: str) -> dict[str, Any]:
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        raise translate(exc, field) from None
    try:
        return parsed.model_dump(mode="json", exclude_none=True, by_alias=True)
    except ValueError:  # pydantic's serialization depth limit, reached by deeply nested unknown fields
        raise invalid(field or "body", "is nested too deeply") from None


def _check_run(settings: dict[str, Any], field: str) -> None:
    """The rules shared by jobs and submit runs, then the dynamic value references."""
    clusters = _check_unique(
        settings.get("job_clusters", ()),
        "job_cluster_key",
        join_path(field, "job_clusters"),
        "job cluster keys",
    )
    environments = _check_unique(
        settings.get("environments", ()),
        "environment_key",
        join_path(field, "environments"),
        "environment keys",
    )
    tasks: list[dict[str, Any]] = settings.get("tasks", [])
    tasks_path = join_path(field, "tasks")
    by_key: dict[str, dict[str, Any]] = {}
    for i, task in enumerate(tasks):
        path = join_path(tasks_path, i)
        first = by_key.setdefault(task["task_key"], task)
        if first is not task:
            raise invalid(
                join_path(path, "task_key"),
                f"must be unique; it is also the key of {tasks_path}[{tasks.index(first)}]",
                task["task_key"],
            )
        _check_task(task, path, clusters, environments)
    nested_keys: dict[str, int] = {}
    for i, task in enumerate(tasks):
        _check_dependencies(task, join_path(tasks_path, i), by_key)
        _check_nested_key(tasks, i, tasks_path, by_key, nested_keys)
    cycle = _find_cycle(tasks)
    if cycle:
        raise invalid(tasks_path, f"must not depend on each other in a cycle: {' -> '.join(cycle)}")
    _check_references(settings)


def _check_unique(items: Sequence[Mapping[str, Any]], key: str, path: str, what: str) -> set[str]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        value = item[key]
        if value in seen:
            raise invalid(
                join_path(path, i, key),
                f"must be unique among {what}; {path}[{seen[value]}] has it too",
                value,
            )
        seen[value] = i
    return set(seen)


def _check_task(task: Mapping[str, Any], path: str, clusters: set[str], environments: set[str]) -> None:
    unsupported = [k for k in task if k.endswith("_task") and k not in TASK_TYPES]
    if unsupported:
        raise invalid(
            join_path(path, unsupported[0]), f"is not a supported task type; use one of {_TASK_TYPE_LIST}"
        )
    types = [k for k in TASK_TYPES if k in task]
    if len(types) != 1:
        has = " and ".join(types) if types else "none"
        raise invalid(path, f"must have exactly one task type among {_TASK_TYPE_LIST}; it has {has}")
    compute = [k for k in COMPUTE_FIELDS if k in task]
    if len(compute) > 1:
        raise invalid(
            path, f"must set at most one of {', '.join(COMPUTE_FIELDS)}; it sets {' and '.join(compute)}"
        )
    cluster_key = task.get("job_cluster_key")
    if cluster_key is not None and cluster_key not in clusters:
        raise invalid(
            join_path(path, "job_cluster_key"), "must name a job cluster defined in job_clusters", cluster_key
        )
    env_key = task.get("environment_key")
    if env_key is not None and env_key not in environments:
        raise invalid(
            join_path(path, "environment_key"), "must name an environment defined in environments", env_key
        )
    nested = task.get("for_each_task")
    if nested is not None:
        _check_task(nested["task"], join_path(path, "for_each_task", "task"), clusters, environments)


def _check_dependencies(task: Mapping[str, Any], path: str, by_key: Mapping[str, Mapping[str, Any]]) -> None:
    for j, dep in enumerate(task.get("depends_on", ())):
        dep_path = join_path(path, "depends_on", j)
        upstream = by_key.get(dep["task_key"])
        if upstream is None:
            raise invalid(
                join_path(dep_path, "task_key"),
                "must be the task_key of another task in this job",
                dep["task_key"],
            )
        if upstream is task:
            raise invalid(join_path(dep_path, "task_key"), "must not be the task itself", dep["task_key"])
        if "outcome" in dep and "condition_task" not in upstream:
            raise invalid(
                join_path(dep_path, "outcome"),
                f"is only allowed on a dependency on a condition_task, and {dep['task_key']!r} is not one",
                dep["outcome"],
            )


def _check_nested_key(
    tasks: Sequence[Mapping[str, Any]],
    i: int,
    tasks_path: str,
    by_key: Mapping[str, Mapping[str, Any]],
    nested_keys: dict[str, int],
) -> None:
    """A for-each task's nested task has its own key, which its iterations carry: it must not be the key
    of a task of the job (the for-each task itself included), nor of another for-each task's nested task.
    `nested_keys` collects the nested keys seen so far (key -> index of the for-each task)."""
    nested = tasks[i].get("for_each_task")
    if nested is None:
        return
    key = nested["task"]["task_key"]
    other = by_key.get(key)
    if other is not None:
        where = "this for-each task" if other is tasks[i] else join_path(tasks_path, tasks.index(other))
    elif key in nested_keys:
        where = f"the task nested in {join_path(tasks_path, nested_keys[key])}"
    else:
        nested_keys[key] = i
        return
    raise invalid(
        join_path(tasks_path, i, "for_each_task", "task", "task_key"),
        f"must differ from the key of every other task of the job; it is the key of {where}",
        key,
    )


def _find_cycle(tasks: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The first dependency cycle found (task keys, the first repeated at the end), or None.

    Iterative depth-first search, so 1000 chained tasks do not hit the recursion limit.
    """
    deps = {t["task_key"]: [d["task_key"] for d in t.get("depends_on", ())] for t in tasks}
    done: set[str] = set()
    for root in deps:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(deps[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(deps[nxt]))
    return None


def _check_references(settings: Mapping[str, Any]) -> None:
    # Imported on use so `core.model` stays importable on its own (and out of import cycles with the engine).
    from core.engine.references import check_references

    check_references(settings)
