"""The vocabulary of runs, kept apart as the Jobs API keeps it: where a run is in its life (`LifeCycle`),
how it ended (`Result`), and why (`TerminationCode` + `TerminationType`), plus the v2 `status.state`
that is derived from the life cycle."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class LifeCycle(StrEnum):
    """`state.life_cycle_state`: the only field the SDK waiter, Airflow and the legacy CLI read."""

    QUEUED = "QUEUED"  # waiting for a free slot under max_concurrent_runs (queue enabled)
    PENDING = "PENDING"  # accepted; its compute or execution context is being prepared
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"  # the work is over; cleaning up (cancelling tasks, stopping clusters)
    TERMINATED = "TERMINATED"  # final; `Result` says how it ended
    SKIPPED = "SKIPPED"  # final; never executed (e.g. max_concurrent_runs reached with no queue)
    INTERNAL_ERROR = "INTERNAL_ERROR"  # final; Floe itself failed the run
    BLOCKED = "BLOCKED"  # a task waiting for its dependencies
    WAITING_FOR_RETRY = "WAITING_FOR_RETRY"  # a task between two attempts

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @property
    def is_active(self) -> bool:
        return self not in _FINAL


_FINAL = frozenset({LifeCycle.TERMINATED, LifeCycle.SKIPPED, LifeCycle.INTERNAL_ERROR})


class Result(StrEnum):
    """`state.result_state`, set once the life cycle is final."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"
    MAXIMUM_CONCURRENT_RUNS_REACHED = "MAXIMUM_CONCURRENT_RUNS_REACHED"
    EXCLUDED = "EXCLUDED"  # a task that did not run because its run_if or condition branch said no
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"  # job level: a non-leaf failed, the leaves succeeded
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    UPSTREAM_CANCELED = "UPSTREAM_CANCELED"
    DISABLED = "DISABLED"

    @property
    def is_success(self) -> bool:
        return self in (Result.SUCCESS, Result.SUCCESS_WITH_FAILURES)


class TerminationType(StrEnum):
    SUCCESS = "SUCCESS"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    CLIENT_ERROR = "CLIENT_ERROR"
    CLOUD_FAILURE = "CLOUD_FAILURE"


class TerminationCode(StrEnum):
    """`status.termination_details.code`: why a run or task run ended."""

    SUCCESS = "SUCCESS"
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"
    USER_CANCELED = "USER_CANCELED"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"
    DISABLED = "DISABLED"
    EXCLUDED = "EXCLUDED"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    UPSTREAM_CANCELED = "UPSTREAM_CANCELED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    DRIVER_ERROR = "DRIVER_ERROR"
    CLUSTER_ERROR = "CLUSTER_ERROR"
    RUN_EXECUTION_ERROR = "RUN_EXECUTION_ERROR"
    LIBRARY_INSTALLATION_ERROR = "LIBRARY_INSTALLATION_ERROR"
    MAX_CONCURRENT_RUNS_EXCEEDED = "MAX_CONCURRENT_RUNS_EXCEEDED"
    INVALID_RUN_CONFIGURATION = "INVALID_RUN_CONFIGURATION"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
    TIMEDOUT = "TIMEDOUT"


class StatusState(StrEnum):
    """`status.state` (Jobs API v2 status)."""

    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    BLOCKED = "BLOCKED"
    WAITING = "WAITING"


def status_state(life_cycle: LifeCycle) -> StatusState:
    """SKIPPED and INTERNAL_ERROR are TERMINATED in v2 status (with that termination code);
    WAITING_FOR_RETRY is WAITING; every other state keeps its name."""
    if life_cycle in (LifeCycle.SKIPPED, LifeCycle.INTERNAL_ERROR):
        return StatusState.TERMINATED
    if life_cycle is LifeCycle.WAITING_FOR_RETRY:
        return StatusState.WAITING
    return StatusState(life_cycle.value)


class TriggerType(StrEnum):
    PERIODIC = "PERIODIC"
    ONE_TIME = "ONE_TIME"
    RETRY = "RETRY"
    RUN_JOB_TASK = "RUN_JOB_TASK"
    FILE_ARRIVAL = "FILE_ARRIVAL"
    TABLE = "TABLE"
    CONTINUOUS = "CONTINUOUS"
    CONTINUOUS_RESTART = "CONTINUOUS_RESTART"
    JOB_COMPLETION = "JOB_COMPLETION"


class RunType(StrEnum):
    JOB_RUN = "JOB_RUN"
    WORKFLOW_RUN = "WORKFLOW_RUN"
    SUBMIT_RUN = "SUBMIT_RUN"


class RunIf(StrEnum):
    ALL_SUCCESS = "ALL_SUCCESS"
    AT_LEAST_ONE_SUCCESS = "AT_LEAST_ONE_SUCCESS"
    NONE_FAILED = "NONE_FAILED"
    ALL_DONE = "ALL_DONE"
    AT_LEAST_ONE_FAILED = "AT_LEAST_ONE_FAILED"
    ALL_FAILED = "ALL_FAILED"


# The task type fields of the Jobs API; a task has exactly one.
TASK_TYPES = (
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "spark_jar_task",
    "spark_submit_task",
    "sql_task",
    "condition_task",
    "for_each_task",
    "run_job_task",
    "pipeline_task",
    "dbt_task",
)


def task_type(task: Mapping[str, Any]) -> str | None:
    """The type field a task's settings carry (e.g. "notebook_task"), or None."""
    return next((name for name in TASK_TYPES if name in task), None)
