"""The persisted state of a run and of its task runs, as the engine sees it.

Records are frozen: the engine returns changed copies (`dataclasses.replace`), the repository
(`core.repository`) maps them to and from table entities. Times are epoch milliseconds (0 = not yet),
as on the wire. A record holds no job settings: those live in the run's settings snapshot (`RunSpec`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.engine.states import (
    LifeCycle,
    Result,
    RunType,
    TerminationCode,
    TerminationType,
    TriggerType,
)


@dataclass(frozen=True, slots=True)
class Termination:
    """Why a run or task run ended: `status.termination_details`."""

    code: TerminationCode
    type: TerminationType
    message: str = ""


@dataclass(frozen=True, slots=True)
class TaskRun:
    """One attempt of one task inside a run.

    `run_id` is the task run id (the id get-output and cancel take); a retry is a new TaskRun with a new
    run_id, `attempt_number` + 1 and `original_attempt_run_id` pointing at the first attempt. The run keeps
    every attempt; the latest attempt of a task is the one with the highest attempt_number.
    """

    task_key: str
    run_id: int
    parent_run_id: int
    attempt_number: int = 0
    original_attempt_run_id: int = 0
    life_cycle: LifeCycle = LifeCycle.BLOCKED
    result: Result | None = None
    state_message: str = ""
    termination: Termination | None = None
    # timing (epoch ms; 0 = not reached yet)
    queued_time: int = 0  # when it became ready to start (PENDING)
    start_time: int = 0  # when the attempt started executing (RUNNING)
    end_time: int = 0
    # execution bookkeeping
    handle: str | None = None  # the launcher's submission handle (opaque JSON), once submitted
    lease_owner: str | None = None  # the worker that claimed the attempt ...
    lease_until: int = 0  # ... until when; an expired lease lets `tick` re-drive the attempt
    cancel_requested: bool = False
    # outcome details (short; long ones live in blobs under the task run's prefix)
    error: str | None = None
    exit_code: int | None = None
    resolved_values: dict[str, Any] | None = None
    # engine bookkeeping (added with the engine; defaults keep older records readable)
    outcome: str | None = None  # a condition task's outcome, "true" / "false"
    retry_at: int = 0  # when a WAITING_FOR_RETRY attempt may start (epoch ms)
    cancel_reason: Result | None = None  # why cancel_requested was set: CANCELED (a user) or TIMEDOUT
    # for-each iterations: set on the iterations, never on the for-each task run itself
    parent_task_run_id: int | None = None  # the for-each task run this is an iteration of
    iteration: int | None = None  # its index in the for-each's inputs (0 = the first)
    input: str | None = None  # its input, as JSON text (`{{input}}`)
    # run_job_task: the child run, stamped by the handler once it started it
    child_run_id: int | None = None
    # task values the attempt set (dbutils.jobs.taskValues.set): inline when small, else in a blob
    values: dict[str, Any] | None = None
    values_ref: str | None = None
    cluster_id: str | None = None  # the cluster the attempt ran on (`cluster_instance`)

    @property
    def is_final(self) -> bool:
        return self.life_cycle.is_final

    @property
    def is_iteration(self) -> bool:
        return self.parent_task_run_id is not None


@dataclass(frozen=True, slots=True)
class RepairEntry:
    """One entry of `repair_history`: the ORIGINAL run or one REPAIR of it."""

    type: str  # "ORIGINAL" | "REPAIR"
    id: int | None  # the repair id; None for ORIGINAL
    start_time: int
    end_time: int = 0
    task_run_ids: tuple[int, ...] = ()
    life_cycle: LifeCycle | None = None
    result: Result | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a job (or a one-time `runs/submit` run, which gets a hidden job id)."""

    run_id: int
    job_id: int
    run_name: str = ""
    run_type: RunType = RunType.JOB_RUN
    trigger: TriggerType = TriggerType.ONE_TIME
    trigger_info: dict[str, Any] = field(default_factory=dict)
    creator_user_name: str = ""
    life_cycle: LifeCycle = LifeCycle.PENDING
    result: Result | None = None
    state_message: str = ""
    termination: Termination | None = None
    user_cancelled_or_timedout: bool = False
    cancel_requested: bool = False
    # timing (epoch ms)
    created_time: int = 0  # when the run was accepted (= start_time on the wire)
    start_time: int = 0  # when it left QUEUED
    end_time: int = 0
    # inputs
    job_parameters: dict[str, str] = field(default_factory=dict)  # effective values (defaults + overrides)
    overriding_parameters: dict[str, Any] = field(default_factory=dict)  # legacy maps as given to run-now
    idempotency_token: str | None = None
    spec_ref: str = ""  # blob path of the RunSpec snapshot (the job settings this run executes)
    traceparent: str | None = None
    repair_history: tuple[RepairEntry, ...] = ()
    # engine bookkeeping (added with the engine; defaults keep older records readable)
    cancel_reason: Result | None = None  # why cancel_requested was set: CANCELED (a user) or TIMEDOUT
    wake_at: int = 0  # the earliest future deadline (retry due, timeout), 0 = none; an index for `tick`
    queue_reason: str | None = None  # why a QUEUED run waits (`state.queue_reason`); None once it left

    @property
    def is_final(self) -> bool:
        return self.life_cycle.is_final


# -- finding attempts --------------------------------------------------------------------------------

_Tasks = Mapping[int, TaskRun] | Iterable[TaskRun]


def _each(tasks: _Tasks) -> Iterable[TaskRun]:
    return tasks.values() if isinstance(tasks, Mapping) else tasks


def latest_attempts(tasks: _Tasks) -> dict[str, TaskRun]:
    """The latest attempt (highest attempt_number) of every top-level task, by task_key; for-each
    iterations are left out (see `iterations_of`). Downstream tasks and the run's result only ever look
    at these."""
    latest: dict[str, TaskRun] = {}
    for task in _each(tasks):
        if task.parent_task_run_id is not None:
            continue
        current = latest.get(task.task_key)
        if current is None or task.attempt_number > current.attempt_number:
            latest[task.task_key] = task
    return latest


def latest_iterations(tasks: _Tasks) -> dict[int, dict[int, TaskRun]]:
    """The latest attempt of every for-each iteration: for-each task run id -> iteration index -> attempt."""
    found: dict[int, dict[int, TaskRun]] = {}
    for task in _each(tasks):
        if task.parent_task_run_id is None:
            continue
        index = task.iteration if task.iteration is not None else -1
        of_parent = found.setdefault(task.parent_task_run_id, {})
        current = of_parent.get(index)
        if current is None or task.attempt_number > current.attempt_number:
            of_parent[index] = task
    return found


def iterations_of(tasks: _Tasks, parent_id: int, *, all_attempts: bool = False) -> list[TaskRun]:
    """The iterations of the for-each task run `parent_id`, in input order: the latest attempt of each,
    or with `all_attempts` every attempt (by iteration, then attempt number)."""
    mine = [task for task in _each(tasks) if task.parent_task_run_id == parent_id]
    if all_attempts:
        return sorted(mine, key=lambda t: (t.iteration or 0, t.attempt_number))
    latest = latest_iterations(mine).get(parent_id, {})
    return [latest[index] for index in sorted(latest)]
