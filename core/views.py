"""What the service (`core.handlers.Floe`) hands the HTTP layer to render: plain frozen records.

They live outside `core.api` so the service can build them without importing FastAPI. Each holds exactly
what one Jobs API reply needs; the rendering rules (which keys, which defaults, paging) are in
`core.api.render`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.engine.records import Run, TaskRun


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A saved job as jobs/get shows it. `settings` is the dict `validate_job_settings` returned."""

    job_id: int
    settings: Mapping[str, Any]
    created_time: int  # epoch ms
    creator_user_name: str
    run_as_user_name: str


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of jobs/list. Page tokens are the service's own; None means "no such page"."""

    jobs: Sequence[JobRecord]
    next_page_token: str | None = None
    prev_page_token: str | None = None
    has_more: bool = False


@dataclass(frozen=True, slots=True)
class RunView:
    """A run with everything runs/get shows.

    `tasks` holds every attempt of every task (in any order; rendering orders them by the task's position
    in `spec`, then by attempt), for-each iterations included: an iteration is a TaskRun whose
    `parent_task_run_id` is the run id of its for-each task's attempt. `spec` is the job settings the run
    executes (tasks, job_clusters, parameters, name, ...), as `validate_job_settings` / `validate_submit`
    returned them.

    `focus_task_run_id` is set when runs/get was asked for a task run id rather than a job run id: the
    view is then the whole job run, and that task run (one of `tasks`) is rendered as the Run, with its
    `iterations` when it is a for-each task.
    """

    run: Run
    tasks: Sequence[TaskRun]
    spec: Mapping[str, Any]
    job_name: str
    focus_task_run_id: int | None = None


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs/list, newest first."""

    runs: Sequence[RunView]
    next_page_token: str | None = None
    prev_page_token: str | None = None
    has_more: bool = False


@dataclass(frozen=True, slots=True)
class RunOutput:
    """runs/get-output of one task run (`task`, an attempt inside `view`). None means "absent"."""

    view: RunView
    task: TaskRun
    logs: str | None = None
    logs_truncated: bool = False
    error: str | None = None
    error_trace: str | None = None
    notebook_output: Mapping[str, Any] | None = None
    sql_output: Mapping[str, Any] | None = None  # a sql_task's last result: {"columns", "rows", "truncated"}


@dataclass(frozen=True, slots=True)
class ExportedView:
    """One view of runs/export: `content` is the exported notebook or dashboard (HTML on Databricks),
    `type` is "NOTEBOOK" or "DASHBOARD"."""

    name: str
    content: str
    type: str = "NOTEBOOK"
