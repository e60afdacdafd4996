"""Request bodies that are not job settings (run-now, runs/repair, runs/export), and the scalar parsers
the HTTP layer uses.

Clients write ids and booleans in several ways: the legacy CLI sends `"job_id": "100"`, Airflow puts
Python's `True` in query strings. These parsers accept every such spelling and reject the rest with a
message naming the field, the value and the rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.model.base import MAX_ID, invalid, require_object, scalar_to_str
from core.model.jobs import MAX_IDEMPOTENCY_TOKEN

MAX_LEGACY_PARAM_BYTES = 10_000
MAX_JOB_PARAMETERS_BYTES = 30_000  # Floe's limit: a run keeps its parameters inline (64 KiB per property)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def parse_id(value: Any, field: str) -> int:
    """A job or run id: a JSON number or a numeric string, 1 <= id < 2**63."""
    if value is None or value == "":
        raise invalid(field, "is required")
    ident: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        ident = value
    elif isinstance(value, float) and value.is_integer():
        ident = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        ident = int(value.strip())
    if ident is None or not 1 <= ident <= MAX_ID:
        raise invalid(
            field, "must be a positive integer id below 2**63 (a JSON number or a numeric string)", value
        )
    return ident


def parse_bool(value: Any, field: str, *, default: bool = False) -> bool:
    """A boolean: JSON true/false, or the strings true/false/1/0 in any case; absent or empty -> default."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise invalid(field, "must be a boolean (true or false)", value)


def parse_int(value: Any, field: str, *, min: int, max: int | None = None, default: int) -> int:
    """An integer from a body or a query string, within [min, max]; absent or empty -> default."""
    if value is None or value == "":
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in ("-", "+") else text
        if digits.isascii() and digits.isdigit():
            number = int(text)
    bounds = f"between {min} and {max}" if max is not None else f"at least {min}"
    if number is None:
        raise invalid(field, f"must be an integer {bounds}", value)
    if number < min or (max is not None and number > max):
        raise invalid(field, f"must be {bounds}", value)
    return number


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyParameters:
    """The legacy per-task-type parameters of run-now and repair (deprecated for `job_parameters`)."""

    notebook_params: Mapping[str, str] | None = None
    python_params: tuple[str, ...] | None = None
    python_named_params: Mapping[str, str] | None = None
    jar_params: tuple[str, ...] | None = None
    spark_submit_params: tuple[str, ...] | None = None
    sql_params: Mapping[str, str] | None = None
    dbt_commands: tuple[str, ...] | None = None
    pipeline_params: Mapping[str, Any] | None = None

    def overriding_parameters(self) -> dict[str, Any]:
        """The fields as given, for `Run.overriding_parameters` (runs/get echoes them)."""
        return _overriding_parameters(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunNowRequest(LegacyParameters):
    """A validated jobs/run-now body. Maps hold strings; absent fields are None."""

    job_id: int
    job_parameters: Mapping[str, str] | None = None
    idempotency_token: str | None = None
    only: tuple[str, ...] | None = None
    queue_enabled: bool | None = None  # `queue.enabled` when given; None = the job's own setting


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairRequest(LegacyParameters):
    """A validated jobs/runs/repair body. Maps hold strings; absent fields are None.

    Exactly one way of choosing tasks is set: `rerun_tasks` (task keys, in the order given, without
    duplicates) or `rerun_all_failed_tasks`. `latest_repair_id` is the id of the latest repair as the
    client knows it (required by Databricks from the second repair on; checking it is the service's
    job, since only it knows the run's history). The parameters replace the run's own for the repaired
    tasks, with the same rules as run-now.
    """

    run_id: int
    rerun_tasks: tuple[str, ...] | None = None
    rerun_all_failed_tasks: bool = False
    rerun_dependent_tasks: bool = False
    latest_repair_id: int | None = None
    job_parameters: Mapping[str, str] | None = None


_LEGACY_MAPS = ("notebook_params", "python_named_params", "sql_params")
_LEGACY_LISTS = ("python_params", "jar_params", "spark_submit_params", "dbt_commands")
_ASCII_ONLY = ("python_params", "spark_submit_params")
_LEGACY_FIELDS = (*_LEGACY_MAPS, *_LEGACY_LISTS, "pipeline_params")

VIEWS_TO_EXPORT = ("CODE", "DASHBOARDS", "ALL")


def _overriding_parameters(request: RunNowRequest | RepairRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _LEGACY_FIELDS:
        value = getattr(request, name)
        if value is not None:
            out[name] = list(value) if isinstance(value, tuple) else dict(value)
    return out


def validate_run_now(raw: Any) -> RunNowRequest:
    """Validate a jobs/run-now body. Unknown fields (e.g. `performance_target`) are ignored."""
    body = require_object(raw, "")
    values: dict[str, Any] = {"job_id": parse_id(body.get("job_id"), "job_id")}
    token = body.get("idempotency_token")
    if token is not None:
        if not isinstance(token, str) or not 1 <= len(token) <= MAX_IDEMPOTENCY_TOKEN:
            raise invalid(
                "idempotency_token", f"must be a string of 1 to {MAX_IDEMPOTENCY_TOKEN} characters", token
            )
        values["idempotency_token"] = token
    if body.get("only") is not None:
        values["only"] = _string_list(body["only"], "only")
    queue = body.get("queue")
    if queue is not None:
        queue = require_object(queue, "queue")
        values["queue_enabled"] = parse_bool(queue.get("enabled"), "queue.enabled")
    values.update(_parameters(body))
    return RunNowRequest(**values)


def validate_repair(raw: Any) -> RepairRequest:
    """Validate a jobs/runs/repair body.

    `run_id` may be a number or a numeric string. Exactly one of `rerun_tasks` (a non-empty array of task
    keys) and `rerun_all_failed_tasks: true` must be given; `rerun_dependent_tasks` goes with either.
    `job_parameters` and the legacy parameter maps follow the run-now rules. Unknown fields
    (`performance_target`, `duration_target`) are ignored.
    """
    body = require_object(raw, "")
    values: dict[str, Any] = {"run_id": parse_id(body.get("run_id"), "run_id")}
    rerun_tasks = body.get("rerun_tasks")
    if rerun_tasks is not None:
        keys = _string_list(rerun_tasks, "rerun_tasks", scalars=False)
        for i, key in enumerate(keys):
            if not key:
                raise invalid(f"rerun_tasks[{i}]", "must be a task key, not an empty string")
        rerun_tasks = tuple(dict.fromkeys(keys)) or None
    all_failed = parse_bool(body.get("rerun_all_failed_tasks"), "rerun_all_failed_tasks")
    if rerun_tasks is not None and all_failed:
        raise invalid(
            "rerun_tasks",
            "cannot be combined with rerun_all_failed_tasks: true; give the task keys or ask for every "
            "failed task, not both",
        )
    if rerun_tasks is None and not all_failed:
        raise invalid(
            "rerun_tasks",
            "is required: give rerun_tasks (a non-empty array of task keys) or rerun_all_failed_tasks: true",
        )
    values["rerun_tasks"] = rerun_tasks
    values["rerun_all_failed_tasks"] = all_failed
    values["rerun_dependent_tasks"] = parse_bool(body.get("rerun_dependent_tasks"), "rerun_dependent_tasks")
    latest = body.get("latest_repair_id")
    if latest is not None and latest != "":
        values["latest_repair_id"] = parse_id(latest, "latest_repair_id")
    values.update(_parameters(body))
    return RepairRequest(**values)


def parse_views_to_export(value: Any) -> str:
    """runs/export `views_to_export`: CODE (the default), DASHBOARDS or ALL, in any case."""
    if value is None or value == "":
        return "CODE"
    if isinstance(value, str) and value.strip().upper() in VIEWS_TO_EXPORT:
        return value.strip().upper()
    raise invalid("views_to_export", f"must be one of {', '.join(VIEWS_TO_EXPORT)}", value)


def _parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """`job_parameters` and the legacy per-task-type parameters of run-now and repair, validated."""
    values: dict[str, Any] = {}
    if body.get("job_parameters") is not None:
        values["job_parameters"] = _string_map(body["job_parameters"], "job_parameters")
        size = len(
            json.dumps(dict(values["job_parameters"]), separators=(",", ":"), ensure_ascii=False).encode()
        )
        if size > MAX_JOB_PARAMETERS_BYTES:
            raise invalid(
                "job_parameters", f"must be at most {MAX_JOB_PARAMETERS_BYTES} bytes of JSON (it is {size})"
            )
    for name in _LEGACY_MAPS:
        if body.get(name) is not None:
            values[name] = _string_map(body[name], name)
    for name in _LEGACY_LISTS:
        if body.get(name) is not None:
            values[name] = _string_list(body[name], name, ascii_only=name in _ASCII_ONLY)
    if body.get("pipeline_params") is not None:
        pipeline = require_object(body["pipeline_params"], "pipeline_params")
        if pipeline.get("full_refresh") is not None:
            pipeline = {
                **pipeline,
                "full_refresh": parse_bool(pipeline["full_refresh"], "pipeline_params.full_refresh"),
            }
        values["pipeline_params"] = pipeline
    for name in (*_LEGACY_MAPS, *_LEGACY_LISTS):
        if name in values:
            size = len(json.dumps(_plain(values[name]), separators=(",", ":"), ensure_ascii=False).encode())
            if size > MAX_LEGACY_PARAM_BYTES:
                raise invalid(name, f"must be at most {MAX_LEGACY_PARAM_BYTES} bytes of JSON (it is {size})")
    if "jar_params" in values and "notebook_params" in values:
        raise invalid("jar_params", "cannot be combined with notebook_params")
    return values


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _string_map(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise invalid(field, "must be a JSON object of strings", value)
    out: dict[str, str] = {}
    for key, item in value.items():
        text = scalar_to_str(item)
        if not isinstance(text, str):
            raise invalid(f"{field}.{key}", "must be a string", item)
        out[key] = text
    return out


def _string_list(
    value: Any, field: str, *, ascii_only: bool = False, scalars: bool = True
) -> tuple[str, ...]:
    """A JSON array of strings; with `scalars`, numbers and booleans are accepted as their strings."""
    if not isinstance(value, list):
        raise invalid(field, "must be a JSON array of strings", value)
    out: list[str] = []
    for i, item in enumerate(value):
        text = scalar_to_str(item) if scalars else item
        if not isinstance(text, str):
            raise invalid(f"{field}[{i}]", "must be a string", item)
        if ascii_only and not text.isascii():
            raise invalid(f"{field}[{i}]", "must contain ASCII characters only", text)
        out.append(text)
    return tuple(out)
