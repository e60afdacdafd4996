"""Dynamic value references: `{{job.run_id}}`, `{{tasks.ingest.values.rows}}`, ... in job settings.

The Databricks rules, kept here:

- A reference is `{{ path }}`: dot-separated identifiers of letters, digits and `_`, an identifier
  with any other character quoted in backticks (``{{job.parameters.`my-param`}}``), spaces allowed
  inside the braces. The whole reference becomes a string; nothing is evaluated.
- Malformed syntax (a missing brace, an empty segment, an unquoted `-`) and names outside the known
  namespaces (`{{foo}}`) are not references: the text is kept literally.
- An unknown name inside a known namespace (`{{job.naem}}`) is an error: `check_references` rejects it
  when a job is saved, `resolve` when a run meets it.

`parse` turns a path into a `Reference` (what it means); `resolve` looks a reference up in a
`ReferenceContext` (what it is worth for one task of one run); `check_references` validates every
reference in a job's settings against the job itself (its tasks, its parameters).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidParameterValue


class _NoInput:
    """The `input` of a task that is not inside a for-each task."""

    def __repr__(self) -> str:
        return "NO_INPUT"


NO_INPUT: Any = _NoInput()

_IDENT = r"[A-Za-z0-9_]+"
_QUOTED = r"`[^`]+`"
_SEGMENT = rf"(?:{_IDENT}|{_QUOTED})"
_PATH = rf"{_SEGMENT}(?:\.{_SEGMENT})*"
_REFERENCE = re.compile(rf"\{{\{{\s*({_PATH})\s*\}}\}}")
_WHOLE_PATH = re.compile(_PATH)
_SEGMENTS = re.compile(rf"{_IDENT}|{_QUOTED}")

TIME_ARGS = (
    "iso_date",
    "iso_datetime",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "timestamp_ms",
    "iso_weekday",
    "is_weekday",
)
_JOB_FIELDS = ("id", "name", "run_id", "repair_count", "start_time", "trigger", "parameters")
_TASK_FIELDS = ("name", "run_id", "execution_count", "notebook_path")
_TASKS_FIELDS = ("values", "result_state", "error_code")
_WORKSPACE_FIELDS = ("id", "url")
# Deprecated single-name references, and the reference each one means today.
_DEPRECATED = {
    "job_id": ("job", "id"),
    "run_id": ("task", "run_id"),  # the legacy {{run_id}} is the TASK run id
    "parent_run_id": ("job", "run_id"),
    "start_date": ("job", "start_time", "iso_date"),
    "start_time": ("job", "start_time", "timestamp_ms"),
    "task_key": ("task", "name"),
    "task_retry_count": ("task", "retry_count"),
}
NAMESPACES = ("job", "task", "tasks", "input", "workspace")


@dataclass(frozen=True, slots=True)
class ReferenceContext:
    """Everything a reference can name, for one task of one run. Times are epoch ms (UTC)."""

    job_id: int = 0
    job_name: str = ""
    run_id: int = 0  # the job run
    repair_count: int = 0
    start_time_ms: int = 0
    trigger_type: str = "ONE_TIME"
    trigger_time_ms: int = 0  # 0 = not triggered by a schedule or an event: the start time stands in
    file_arrival_location: str = ""
    updated_tables: tuple[str, ...] = ()  # the tables whose update started a TABLE run
    parameters: Mapping[str, str] = field(default_factory=dict)  # effective job parameters
    task_key: str = ""
    task_run_id: int = 0
    attempt_number: int = 0  # 0 for the first attempt: {{task_retry_count}}
    execution_count: int = 1  # how many times the task has run in this run, retries and repairs included
    notebook_path: str = ""
    task_values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # task -> key -> decoded JSON
    task_results: Mapping[str, str] = field(default_factory=dict)  # task_key -> result_state
    task_error_codes: Mapping[str, str] = field(default_factory=dict)  # task_key -> termination code
    input: Any = NO_INPUT  # the for-each iteration's input value (decoded JSON); see `for_iteration`
    workspace_id: str = ""
    workspace_url: str = ""

    def for_iteration(self, input_json: str | None) -> ReferenceContext:
        """This context for a task run whose `TaskRun.input` is `input_json`: for a for-each iteration
        (JSON text) `{{input}}` and `{{input.<field>}}` then resolve from the decoded value; for any
        other task run (None) the context is returned unchanged, and `{{input}}` is an error."""
        if input_json is None:
            return self
        try:
            value = json.loads(input_json)
        except ValueError as exc:
            raise InvalidParameterValue(f"The iteration's input {input_json[:200]!r} is not JSON.") from exc
        return replace(self, input=value)


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed reference: `path` is its canonical form (deprecated names mapped to today's)."""

    text: str  # as written, without the braces
    path: tuple[str, ...]

    @property
    def namespace(self) -> str:
        return self.path[0]


def parse(text: str) -> Reference | None:
    """Parse the inside of `{{ ... }}`.

    Returns None for text that is not a reference (malformed, or outside the known namespaces), which
    callers keep literally. Raises `InvalidParameterValue` for an unknown name in a known namespace.
    """
    body = text.strip()
    if not _WHOLE_PATH.fullmatch(body):
        return None
    path = tuple(segment.strip("`") for segment in _SEGMENTS.findall(body))
    if len(path) == 1 and path[0] in _DEPRECATED:
        return Reference(body, _DEPRECATED[path[0]])
    if path[0] not in NAMESPACES:
        return None
    _check_shape(body, path)
    return Reference(body, path)


def _check_shape(body: str, path: tuple[str, ...]) -> None:
    def unknown(rule: str) -> InvalidParameterValue:
        return InvalidParameterValue(f"{{{{{body}}}}} is not a valid dynamic value reference: {rule}.")

    head, rest = path[0], path[1:]
    if head == "input":
        return  # {{input}} and {{input.<field>...}}: any field, looked up in the iteration's input
    if not rest:
        raise unknown(f"{head!r} needs a field")
    if head == "job":
        name = rest[0]
        if name not in _JOB_FIELDS:
            raise unknown(f"{name!r} is not a field of 'job' (known: {', '.join(_JOB_FIELDS)})")
        if name == "start_time":
            _check_time(rest[1:], "job.start_time", unknown)
        elif name == "trigger":
            _check_trigger(rest[1:], unknown)
        elif name == "parameters":
            if len(rest) != 2:
                raise unknown("write job.parameters.<name>")
        elif len(rest) != 1:
            raise unknown(f"job.{name} has no field {rest[1]!r}")
    elif head == "task":
        if len(rest) != 1 or rest[0] not in _TASK_FIELDS:
            raise unknown(f"{'.'.join(rest)!r} is not a field of 'task' (known: {', '.join(_TASK_FIELDS)})")
    elif head == "tasks":
        if len(rest) < 2 or rest[1] not in _TASKS_FIELDS:
            raise unknown(f"write tasks.<task_key>.<field> with a field among {', '.join(_TASKS_FIELDS)}")
        if rest[1] == "values" and len(rest) != 3:
            raise unknown("write tasks.<task_key>.values.<key>")
        if rest[1] != "values" and len(rest) != 2:
            raise unknown(f"tasks.<task_key>.{rest[1]} has no field {rest[2]!r}")
    elif head == "workspace" and (len(rest) != 1 or rest[0] not in _WORKSPACE_FIELDS):
        raise unknown(
            f"{'.'.join(rest)!r} is not a field of 'workspace' (known: {', '.join(_WORKSPACE_FIELDS)})"
        )


_Complaint = Callable[[str], InvalidParameterValue]


def _check_time(rest: tuple[str, ...], prefix: str, unknown: _Complaint) -> None:
    if len(rest) != 1 or rest[0] not in TIME_ARGS:
        raise unknown(f"write {prefix}.<arg> with an arg among {', '.join(TIME_ARGS)}")


def _check_trigger(rest: tuple[str, ...], unknown: _Complaint) -> None:
    if rest in (("type",), ("file_arrival", "location"), ("table_update", "updated_tables")):
        return
    if rest[:1] == ("time",):
        _check_time(rest[1:], "job.trigger.time", unknown)
        return
    raise unknown(
        "known trigger references: job.trigger.type, job.trigger.time.<arg>, "
        "job.trigger.file_arrival.location, job.trigger.table_update.updated_tables"
    )


# -- resolution ---------------------------------------------------------------------------------------


def resolve(text: str, ctx: ReferenceContext) -> str:
    """Replace every reference in `text` with its value as a string.

    Strings stay as they are, booleans become "true"/"false", null "null", numbers their JSON text, and
    objects and arrays compact JSON. Malformed references and unknown namespaces stay literal. Raises
    `InvalidParameterValue` naming the reference when it cannot be resolved for this run (a task value
    that was never set, a job parameter the run does not have, `{{input}}` outside a for-each task).
    """

    def substitute(match: re.Match[str]) -> str:
        reference = parse(match.group(1))
        if reference is None:
            return match.group(0)
        return to_text(value_of(reference, ctx))

    return _REFERENCE.sub(substitute, text)


def resolve_all(obj: Any, ctx: ReferenceContext) -> Any:
    """`resolve` every string inside `obj` (dict values and list items, recursively); keys and other
    values are returned unchanged. The input is not modified."""
    if isinstance(obj, str):
        return resolve(obj, ctx)
    if isinstance(obj, Mapping):
        return {key: resolve_all(value, ctx) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [resolve_all(item, ctx) for item in obj]
    return obj


def to_text(value: Any) -> str:
    """The string a referenced value becomes."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def value_of(reference: Reference, ctx: ReferenceContext) -> Any:
    """The raw value a reference names in `ctx`; raises `InvalidParameterValue` if it has none."""

    def missing(why: str) -> InvalidParameterValue:
        return InvalidParameterValue(f"Cannot resolve {{{{{reference.text}}}}}: {why}.")

    head, rest = reference.path[0], reference.path[1:]
    if head == "tasks":
        return _tasks_value(rest, ctx, missing)
    if head == "input":
        return _input_value(rest, ctx, missing)
    if head == "job":
        value = _job_value(rest, ctx, missing)
    elif head == "task":
        value = {
            "name": ctx.task_key,
            "run_id": ctx.task_run_id,
            "execution_count": ctx.execution_count,
            "notebook_path": ctx.notebook_path,
            "retry_count": ctx.attempt_number,
        }[rest[0]]
    else:
        value = ctx.workspace_id if rest[0] == "id" else ctx.workspace_url
    # A context field left None by its builder reads as empty, not as the JSON "null".
    return "" if value is None else value


def _job_value(rest: tuple[str, ...], ctx: ReferenceContext, missing: _Complaint) -> Any:
    name = rest[0]
    if name == "start_time":
        return time_value(ctx.start_time_ms, rest[1])
    if name == "trigger":
        if rest[1] == "type":
            return ctx.trigger_type
        if rest[1] == "time":
            return time_value(ctx.trigger_time_ms or ctx.start_time_ms, rest[2])
        if rest[1] == "table_update":
            return list(ctx.updated_tables)
        return ctx.file_arrival_location
    if name == "parameters":
        if rest[1] not in ctx.parameters:
            raise missing(f"the run has no job parameter {rest[1]!r}")
        return ctx.parameters[rest[1]]
    return {"id": ctx.job_id, "name": ctx.job_name, "run_id": ctx.run_id, "repair_count": ctx.repair_count}[
        name
    ]


def _tasks_value(rest: tuple[str, ...], ctx: ReferenceContext, missing: _Complaint) -> Any:
    task_key, name = rest[0], rest[1]
    if name == "values":
        values = ctx.task_values.get(task_key)
        if values is None or rest[2] not in values:
            raise missing(f"task {task_key!r} did not set the task value {rest[2]!r}")
        return values[rest[2]]
    if task_key not in ctx.task_results:
        raise missing(f"task {task_key!r} has not finished in this run")
    if name == "result_state":
        return ctx.task_results[task_key]
    return ctx.task_error_codes.get(task_key, "")


def _input_value(rest: tuple[str, ...], ctx: ReferenceContext, missing: _Complaint) -> Any:
    if ctx.input is NO_INPUT:
        raise missing("{{input}} only exists inside the task of a for_each_task")
    value = ctx.input
    for depth, name in enumerate(rest):
        if not isinstance(value, Mapping) or name not in value:
            raise missing(f"the input has no field {'.'.join(rest[: depth + 1])!r}")
        value = value[name]
    return value


def time_value(epoch_ms: int, arg: str) -> str | int | bool:
    """A time argument (`iso_date`, `hour`, `is_weekday`, ...) of an epoch-ms instant, in UTC."""
    try:
        instant = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidParameterValue(f"{epoch_ms} is not a time Floe can format (epoch ms).") from exc
    match arg:
        case "iso_date":
            return instant.date().isoformat()
        case "iso_datetime":
            return instant.replace(tzinfo=None).isoformat(timespec="seconds")
        case "timestamp_ms":
            return epoch_ms
        case "iso_weekday":
            return instant.isoweekday()
        case "is_weekday":
            return instant.isoweekday() <= 5
        case "year" | "month" | "day" | "hour" | "minute" | "second":
            return int(getattr(instant, arg))
    raise InvalidParameterValue(f"{arg!r} is not a time argument (known: {', '.join(TIME_ARGS)}).")


def references_in(text: str) -> Iterator[str]:
    """The insides of every well-formed `{{ ... }}` in `text`, known namespace or not."""
    for match in _REFERENCE.finditer(text):
        yield match.group(1)


# -- validation of job settings -----------------------------------------------------------------------

# Fields of each task type that may hold references (strings, or maps/arrays of strings).
_TASK_REFERENCE_FIELDS = {
    "notebook_task": ("base_parameters",),
    "spark_python_task": ("parameters",),
    "python_wheel_task": ("parameters", "named_parameters"),
    "spark_jar_task": ("parameters",),
    "spark_submit_task": ("parameters",),
    "sql_task": ("parameters",),
    "condition_task": ("left", "right"),
    "for_each_task": ("inputs",),
    "run_job_task": (
        "job_parameters",
        "notebook_params",
        "python_params",
        "jar_params",
        "spark_submit_params",
        "python_named_params",
        "sql_params",
        "dbt_commands",
    ),
    "dbt_task": ("commands",),
}


def check_references(settings: Mapping[str, Any]) -> None:
    """Validate every reference in job settings against the job itself.

    Looks in job parameter defaults and in each task's parameter fields (base_parameters, parameters,
    named_parameters, condition left/right, for-each inputs, run_job job_parameters and legacy maps,
    dbt commands), for-each inner tasks included. Raises `InvalidParameterValue` naming the field path,
    the reference and the rule for: an unknown name in a known namespace; `{{tasks.<key>...}}` naming a
    task the job does not have; `{{job.parameters.<name>}}` naming a parameter the job does not define;
    `{{input}}` outside the task of a for_each_task. Malformed text and other namespaces pass (they are
    literal text); so do fields of the wrong shape, which the settings validation reports.
    """
    tasks = [task for task in _items(settings.get("tasks")) if isinstance(task, Mapping)]
    parameters = [p for p in _items(settings.get("parameters")) if isinstance(p, Mapping)]
    job = _Job(
        task_keys=frozenset(_all_task_keys(tasks)),
        parameter_names=frozenset(p["name"] for p in parameters if isinstance(p.get("name"), str)),
    )
    for index, parameter in enumerate(_items(settings.get("parameters"))):
        if isinstance(parameter, Mapping):
            job.check(parameter.get("default"), f"parameters[{index}].default", in_for_each=False)
    for index, task in enumerate(_items(settings.get("tasks"))):
        if isinstance(task, Mapping):
            job.check_task(task, f"tasks[{index}]", in_for_each=False)


@dataclass(frozen=True, slots=True)
class _Job:
    """What a reference in a job's settings is checked against."""

    task_keys: frozenset[str]
    parameter_names: frozenset[str]

    def check_task(self, task: Mapping[str, Any], where: str, *, in_for_each: bool) -> None:
        for kind, names in _TASK_REFERENCE_FIELDS.items():
            spec = task.get(kind)
            if not isinstance(spec, Mapping):
                continue
            for name in names:
                if name in spec:
                    self.check(spec[name], f"{where}.{kind}.{name}", in_for_each=in_for_each)
            if kind == "for_each_task" and isinstance(spec.get("task"), Mapping):
                self.check_task(spec["task"], f"{where}.for_each_task.task", in_for_each=True)

    def check(self, value: Any, where: str, *, in_for_each: bool) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                self.check(item, f"{where}.{key}", in_for_each=in_for_each)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                self.check(item, f"{where}[{index}]", in_for_each=in_for_each)
        elif isinstance(value, str):
            for body in references_in(value):
                try:
                    reference = parse(body)
                    if reference is not None:
                        self._check_reference(reference, in_for_each=in_for_each)
                except InvalidParameterValue as exc:
                    raise InvalidParameterValue(f"{where}: {exc.message}") from exc

    def _check_reference(self, reference: Reference, *, in_for_each: bool) -> None:
        def wrong(rule: str) -> InvalidParameterValue:
            return InvalidParameterValue(
                f"{{{{{reference.text}}}}} is not a valid dynamic value reference: {rule}."
            )

        path = reference.path
        if path[0] == "tasks" and path[1] not in self.task_keys:
            raise wrong(f"the job has no task {path[1]!r}")
        if path[:2] == ("job", "parameters") and path[2] not in self.parameter_names:
            raise wrong(f"the job defines no parameter {path[2]!r} in `parameters`")
        if path[0] == "input" and not in_for_each:
            raise wrong("{{input}} is only available in the task of a for_each_task")


def _all_task_keys(tasks: list[Mapping[str, Any]]) -> Iterator[str]:
    # For-each inner tasks are tasks of the job too: their values can be referenced.
    for task in tasks:
        if isinstance(task.get("task_key"), str):
            yield task["task_key"]
        for_each = task.get("for_each_task")
        if isinstance(for_each, Mapping) and isinstance(for_each.get("task"), Mapping):
            yield from _all_task_keys([for_each["task"]])


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []
