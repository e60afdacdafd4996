"""The task graph of a job, read from its settings (the Jobs API JSON), as the engine needs it.

`Dag.from_settings` is the only way in. Settings are validated as a whole before they are stored, so a
bad graph should never get here; but the engine runs on whatever a record points at (an old settings
snapshot, a hand-edited blob), so every malformation is reported as `InvalidParameterValue` naming the
field path, the bad value and the rule, never as a `KeyError`, a `TypeError` or an endless loop.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.engine.states import TASK_TYPES, RunIf
from core.errors import InvalidParameterValue

CONDITION_OPS = frozenset(
    {"EQUAL_TO", "NOT_EQUAL", "GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL"}
)

# Newer task types still work: any key ending in "_task" that is not in TASK_TYPES is taken as the type
# (the launcher decides whether it supports it).


@dataclass(frozen=True, slots=True)
class Dependency:
    """One `depends_on` entry. `outcome` ("true"/"false") gates on a condition task's outcome."""

    task_key: str
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A task's retry settings.

    - `max_retries`: how many retries after the first attempt; -1 retries forever, 0 never retries.
    - `min_retry_interval_millis`: the least time between the START of a failed attempt and the start of
      its retry (the Jobs API measures from the start, not the end); 0 retries at once.
    - `retry_on_timeout`: whether a TIMEDOUT attempt is retried too (a FAILED one always is).
    """

    max_retries: int = 0
    min_retry_interval_millis: int = 0
    retry_on_timeout: bool = False

    def allows_retry_after(self, attempt_number: int) -> bool:
        """Whether attempt `attempt_number` (0 = the first) may be followed by another attempt."""
        return self.max_retries == -1 or attempt_number < self.max_retries

    def due(self, failed_attempt_start_ms: int) -> int:
        """When the retry of an attempt that started at `failed_attempt_start_ms` may start."""
        return failed_attempt_start_ms + self.min_retry_interval_millis


@dataclass(frozen=True, slots=True)
class Condition:
    """A `condition_task`: `left op right`, operands still unresolved (they may hold references)."""

    op: str
    left: str
    right: str


@dataclass(frozen=True, slots=True)
class RunJob:
    """A `run_job_task`: the job to run and its job parameters (values still unresolved)."""

    job_id: int
    job_parameters: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ForEach:
    """A `for_each_task`: `inputs` (a JSON array, or a reference to one, still unresolved), how many
    iterations may be active at once, and the task each iteration runs."""

    inputs: str
    concurrency: int
    task: Node


@dataclass(frozen=True, slots=True)
class Node:
    """One task of the job, with its edges both ways. The task of a for-each is a Node too, with no
    edges; its `key` is its own task_key."""

    key: str
    kind: str  # the task type field, e.g. "notebook_task"; "" when the task has none
    depends_on: tuple[Dependency, ...]
    downstream: tuple[str, ...]  # keys of the tasks that depend on this one, in settings order
    run_if: RunIf = RunIf.ALL_SUCCESS
    disabled: bool = False
    retry: RetryPolicy = RetryPolicy()
    timeout_ms: int = 0  # 0 = no timeout
    condition: Condition | None = None
    settings: Mapping[str, Any] | None = None  # the task's JSON, for launchers and later engine features
    for_each: ForEach | None = None
    run_job: RunJob | None = None

    @property
    def upstream(self) -> tuple[str, ...]:
        return tuple(dep.task_key for dep in self.depends_on)


@dataclass(frozen=True, slots=True)
class Dag:
    """The tasks of a job in topological order (a task comes after everything it depends on; among
    tasks that are ready together, settings order), plus the job-level timeout."""

    nodes: Mapping[str, Node]
    order: tuple[str, ...]
    leaves: tuple[str, ...]  # tasks nothing depends on, in topological order
    timeout_ms: int = 0  # the job's timeout_seconds in ms; 0 = none
    # A continuous job with task_retry_mode ON_FAILURE: a failed task is retried (with a back-off) as long
    # as another task is still in its first attempt, whatever its own retry policy says.
    retry_on_failure: bool = False

    def __getitem__(self, key: str) -> Node:
        return self.nodes[key]

    def __contains__(self, key: object) -> bool:
        return key in self.nodes

    def __iter__(self) -> Iterator[Node]:
        return (self.nodes[key] for key in self.order)

    def __len__(self) -> int:
        return len(self.order)

    def node_of(self, task_key: str, for_each_key: str = "") -> Node | None:
        """The node of the task `task_key`; with `for_each_key`, the task of that for-each task (an
        iteration's node), if it is still called `task_key`. None when the settings have no such task."""
        if not for_each_key:
            return self.nodes.get(task_key)
        parent = self.nodes.get(for_each_key)
        if parent is None or parent.for_each is None or parent.for_each.task.key != task_key:
            return None
        return parent.for_each.task

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Dag:
        """Build the graph of `settings` (JobSettings or a runs/submit body).

        Raises `InvalidParameterValue` for: a missing, empty or duplicate `task_key`; a `depends_on`
        naming an unknown task, listing a task twice, or carrying an `outcome` that is not "true"/"false"
        or whose upstream is not a condition task; an unknown `run_if` or condition `op`; a negative
        timeout or retry setting; a for_each_task without `inputs` or `task` (or whose task is itself a
        for_each_task, or whose concurrency is below 1); a run_job_task without a positive `job_id`; and a
        dependency cycle, named in the message as
        `a -> b -> c -> a` (each task depends on the next).
        """
        if not isinstance(settings, Mapping):
            raise InvalidParameterValue(f"Job settings must be a JSON object, got {_kind(settings)}.")
        raw_tasks = settings.get("tasks") or []
        if not isinstance(raw_tasks, Sequence) or isinstance(raw_tasks, str | bytes):
            raise InvalidParameterValue(f"tasks must be an array, got {_kind(raw_tasks)}.")

        keys: dict[str, int] = {}
        for index, task in enumerate(raw_tasks):
            if not isinstance(task, Mapping):
                raise InvalidParameterValue(f"tasks[{index}] must be a JSON object, got {_kind(task)}.")
            key = task.get("task_key")
            if not isinstance(key, str) or not key:
                raise InvalidParameterValue(
                    f"tasks[{index}].task_key is required and must be a non-empty string, got {key!r}."
                )
            if key in keys:
                raise InvalidParameterValue(
                    f"tasks[{index}].task_key {key!r} is also the key of tasks[{keys[key]}]: "
                    "task keys must be unique within a job."
                )
            keys[key] = index

        kinds = {task["task_key"]: _task_kind(task) for task in raw_tasks}
        deps = {
            task["task_key"]: _dependencies(task, index, keys, kinds) for index, task in enumerate(raw_tasks)
        }
        downstream: dict[str, list[str]] = {key: [] for key in keys}
        for key, task_deps in deps.items():
            for dep in task_deps:
                downstream[dep.task_key].append(key)

        order = _topological_order(list(keys), deps, downstream)
        nodes = {
            key: _node(raw_tasks[keys[key]], keys[key], kinds[key], deps[key], tuple(downstream[key]))
            for key in order
        }
        return cls(
            nodes=nodes,
            order=order,
            leaves=tuple(key for key in order if not downstream[key]),
            timeout_ms=_non_negative_int(settings, "timeout_seconds", "timeout_seconds") * 1000,
            retry_on_failure=(settings.get("continuous") or {}).get("task_retry_mode") == "ON_FAILURE",
        )


def _node(
    task: Mapping[str, Any],
    index: int,
    kind: str,
    depends_on: tuple[Dependency, ...],
    downstream: tuple[str, ...],
    *,
    where: str = "",
) -> Node:
    where = where or f"tasks[{index}]"
    run_if_raw = task.get("run_if") or RunIf.ALL_SUCCESS.value
    if run_if_raw not in RunIf.__members__:
        raise InvalidParameterValue(
            f"{where}.run_if {run_if_raw!r} is not one of {', '.join(RunIf.__members__)}."
        )
    disabled = task.get("disabled", False)
    if not isinstance(disabled, bool):
        raise InvalidParameterValue(f"{where}.disabled must be true or false, got {disabled!r}.")
    retry_on_timeout = task.get("retry_on_timeout", False)
    if not isinstance(retry_on_timeout, bool):
        raise InvalidParameterValue(
            f"{where}.retry_on_timeout must be true or false, got {retry_on_timeout!r}."
        )
    max_retries = _int(task, "max_retries", f"{where}.max_retries", minimum=-1)
    return Node(
        key=task["task_key"],
        kind=kind,
        depends_on=depends_on,
        downstream=downstream,
        run_if=RunIf(run_if_raw),
        disabled=disabled,
        retry=RetryPolicy(
            max_retries=max_retries,
            min_retry_interval_millis=_non_negative_int(
                task, "min_retry_interval_millis", f"{where}.min_retry_interval_millis"
            ),
            retry_on_timeout=retry_on_timeout,
        ),
        timeout_ms=_non_negative_int(task, "timeout_seconds", f"{where}.timeout_seconds") * 1000,
        condition=_condition(task, where) if kind == "condition_task" else None,
        settings=task,
        for_each=_for_each(task, where) if kind == "for_each_task" else None,
        run_job=_run_job(task, where) if kind == "run_job_task" else None,
    )


def _for_each(task: Mapping[str, Any], where: str) -> ForEach:
    spec = task.get("for_each_task")
    at = f"{where}.for_each_task"
    if not isinstance(spec, Mapping):
        raise InvalidParameterValue(f"{at} must be a JSON object, got {_kind(spec)}.")
    inputs = spec.get("inputs")
    if isinstance(inputs, list):  # an array given as JSON rather than as a string: the same thing
        inputs = json.dumps(inputs, separators=(",", ":"), ensure_ascii=False)
    if not isinstance(inputs, str) or not inputs.strip():
        raise InvalidParameterValue(
            f"{at}.inputs is required: a JSON array as a string, or a reference to one; got {inputs!r}."
        )
    concurrency = _int(spec, "concurrency", f"{at}.concurrency", minimum=1) or 1
    nested = spec.get("task")
    if not isinstance(nested, Mapping):
        raise InvalidParameterValue(f"{at}.task must be a JSON object, got {_kind(nested)}.")
    key = nested.get("task_key")
    if not isinstance(key, str) or not key:
        raise InvalidParameterValue(
            f"{at}.task.task_key is required and must be a non-empty string, got {key!r}."
        )
    kind = _task_kind(nested)
    if kind == "for_each_task":
        raise InvalidParameterValue(f"{at}.task cannot itself be a for_each_task.")
    inner = _node(nested, 0, kind, (), (), where=f"{at}.task")
    return ForEach(inputs=inputs, concurrency=concurrency, task=inner)


def _run_job(task: Mapping[str, Any], where: str) -> RunJob:
    spec = task.get("run_job_task")
    at = f"{where}.run_job_task"
    if not isinstance(spec, Mapping):
        raise InvalidParameterValue(f"{at} must be a JSON object, got {_kind(spec)}.")
    job_id = spec.get("job_id")
    if isinstance(job_id, str) and job_id.strip().isdigit():  # int64 written as a JSON string
        job_id = int(job_id)
    if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id <= 0:
        raise InvalidParameterValue(f"{at}.job_id must be a positive integer, got {job_id!r}.")
    parameters = spec.get("job_parameters") or {}
    if not isinstance(parameters, Mapping):
        raise InvalidParameterValue(f"{at}.job_parameters must be a JSON object, got {_kind(parameters)}.")
    return RunJob(job_id=job_id, job_parameters=dict(parameters))


def _task_kind(task: Mapping[str, Any]) -> str:
    for kind in TASK_TYPES:
        if kind in task:
            return kind
    return next((key for key in task if isinstance(key, str) and key.endswith("_task")), "")


def _dependencies(
    task: Mapping[str, Any], index: int, keys: Mapping[str, int], kinds: Mapping[str, str]
) -> tuple[Dependency, ...]:
    raw = task.get("depends_on") or []
    where = f"tasks[{index}].depends_on"
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InvalidParameterValue(f"{where} must be an array, got {_kind(raw)}.")
    seen: set[str] = set()
    deps = []
    for position, entry in enumerate(raw):
        at = f"{where}[{position}]"
        if not isinstance(entry, Mapping):
            raise InvalidParameterValue(f"{at} must be a JSON object, got {_kind(entry)}.")
        key = entry.get("task_key")
        if not isinstance(key, str) or key not in keys:
            raise InvalidParameterValue(f"{at}.task_key {key!r} is not a task of this job.")
        if key in seen:
            raise InvalidParameterValue(f"{at}.task_key {key!r} is listed twice: list each dependency once.")
        seen.add(key)
        outcome = entry.get("outcome")
        if outcome is not None:
            if outcome not in ("true", "false"):
                raise InvalidParameterValue(f'{at}.outcome must be "true" or "false", got {outcome!r}.')
            if kinds[key] != "condition_task":
                raise InvalidParameterValue(
                    f"{at}.outcome is only allowed on a dependency on a condition_task, "
                    f"and {key!r} is not one."
                )
        deps.append(Dependency(task_key=key, outcome=outcome))
    return tuple(deps)


def _condition(task: Mapping[str, Any], where: str) -> Condition:
    spec = task.get("condition_task")
    if not isinstance(spec, Mapping):
        raise InvalidParameterValue(f"{where}.condition_task must be a JSON object, got {_kind(spec)}.")
    op = spec.get("op")
    if op not in CONDITION_OPS:
        raise InvalidParameterValue(
            f"{where}.condition_task.op {op!r} is not one of {', '.join(sorted(CONDITION_OPS))}."
        )
    return Condition(
        op=op,
        left=_operand(spec.get("left"), f"{where}.condition_task.left"),
        right=_operand(spec.get("right"), f"{where}.condition_task.right"),
    )


def _operand(value: Any, where: str) -> str:
    # The API takes strings; a JSON scalar is accepted as the string it prints as (booleans as the
    # "true"/"false" a task value would give), anything else is an error.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidParameterValue(f"{where} must be a string, got {_kind(value)}.")


def _topological_order(
    keys: list[str], deps: Mapping[str, tuple[Dependency, ...]], downstream: Mapping[str, list[str]]
) -> tuple[str, ...]:
    # Kahn's algorithm, seeded in settings order so the order is stable for a given job.
    waiting = {key: len(deps[key]) for key in keys}
    ready = deque(key for key in keys if waiting[key] == 0)
    order: list[str] = []
    while ready:
        key = ready.popleft()
        order.append(key)
        for child in downstream[key]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(order) < len(keys):
        raise InvalidParameterValue(
            f"The tasks form a dependency cycle: {_find_cycle(keys, deps, set(order))} "
            "(each task depends on the next); remove one of these dependencies."
        )
    return tuple(order)


def _find_cycle(keys: list[str], deps: Mapping[str, tuple[Dependency, ...]], placed: set[str]) -> str:
    # Every task Kahn could not place depends on another unplaced task, so following unplaced
    # dependencies from any of them must revisit a task: the path from that task back to itself is a cycle.
    stuck = [key for key in keys if key not in placed]
    path: list[str] = []
    seen: dict[str, int] = {}
    key = stuck[0]
    while key not in seen:
        seen[key] = len(path)
        path.append(key)
        key = next(dep.task_key for dep in deps[key] if dep.task_key not in placed)
    cycle = [*path[seen[key] :], key]
    return " -> ".join(cycle)


def _int(container: Mapping[str, Any], name: str, where: str, *, minimum: int) -> int:
    value = container.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParameterValue(f"{where} must be an integer >= {minimum}, got {value!r}.")
    return value


def _non_negative_int(container: Mapping[str, Any], name: str, where: str) -> int:
    return _int(container, name, where, minimum=0)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
