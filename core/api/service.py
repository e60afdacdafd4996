"""The service the HTTP layer calls (implemented by `core.handlers.Floe`), as a structural type.

Every method raises `core.errors.FloeError` subclasses for anything a caller can cause; a missing job or
run is `JobNotFound` / `RunNotFound` ("Job 123 does not exist."). Methods are synchronous (they do
storage I/O); the app calls them from a worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from core.engine.records import Run
from core.model import RepairRequest, RunNowRequest

if TYPE_CHECKING:
    from core.api.clusters import ClustersApi
    from core.webhooks import WebhookService

from core.views import ExportedView, JobPage, JobRecord, RunOutput, RunPage, RunView


class FloeService(Protocol):
    clusters: ClustersApi  # the Clusters API (`core.clusters.ClusterService`)
    trigger_min_seconds: int  # the floor of file-arrival / table-update timers a job may set
    webhooks: WebhookService  # the webhook trigger: secrets and signed deliveries

    def authenticate(self, token: str) -> str | None:
        """The user name a valid token belongs to, None for any other token."""
        ...

    def create_job(self, settings: dict[str, Any], *, creator: str) -> int:
        """Store a job; `settings` were validated by `validate_job_settings`. Returns the job id."""
        ...

    def get_job(self, job_id: int) -> JobRecord: ...

    def list_jobs(self, *, name: str | None, limit: int, offset: int, page_token: str | None) -> JobPage: ...

    def update_job(self, job_id: int, new_settings: dict[str, Any], fields_to_remove: list[str]) -> None:
        """Merge (`merge_update`) and validate; the arguments arrive as the client sent them."""
        ...

    def reset_job(self, job_id: int, new_settings: dict[str, Any]) -> None:
        """Replace the settings; `new_settings` were validated by `validate_job_settings`."""
        ...

    def delete_job(self, job_id: int) -> None: ...

    def trigger_state(self, job_id: int) -> dict[str, Any]:
        """What the job's schedule and triggers did so far and will do next (`trigger_state`)."""
        ...

    def run_now(self, request: RunNowRequest, *, creator: str) -> Run: ...

    def submit(self, body: dict[str, Any], *, creator: str) -> Run:
        """Start a one-time run; `body` was validated by `validate_submit`."""
        ...

    def get_run(self, run_id: int) -> RunView:
        """The run `run_id`, or, when `run_id` is a task run id (a for-each iteration included), the view of
        the job run it belongs to with `focus_task_run_id` = `run_id` (rendered as that task run)."""
        ...

    def list_runs(
        self,
        *,
        job_id: int | None,
        active_only: bool,
        completed_only: bool,
        run_type: str | None,
        start_time_from: int | None,
        start_time_to: int | None,
        limit: int,
        offset: int,
        page_token: str | None,
    ) -> RunPage: ...

    def get_run_output(self, run_id: int) -> RunOutput:
        """The output of one task run (`run_id` is a task run id)."""
        ...

    def repair_run(self, request: RepairRequest, *, creator: str) -> int:
        """Re-run tasks of a finished job run inside that run, with the job's *current* settings, and
        return the new repair id (unique, increasing within the run).

        The tasks are `request.rerun_tasks` or, with `rerun_all_failed_tasks`, every task whose latest
        attempt did not succeed; `rerun_dependent_tasks` adds every task downstream of them. Each re-run
        task gets a new attempt (a new task run id); the run becomes active again under its own run id
        (the SDK waiter and Airflow poll the original run id) and gains a REPAIR entry in
        `repair_history` holding the new task run ids. The request's parameters replace the run's for
        this repair. Raises `RunNotFound`; `InvalidState` when the run is still active;
        `InvalidParameterValue` for a task key the job does not have, or when `latest_repair_id` is
        missing or not the run's latest repair id although the run was repaired before.
        """
        ...

    def export_run(self, run_id: int, views: str) -> list[ExportedView]:
        """runs/export: the views of a notebook task run (`run_id` a task run id, or a job run with exactly
        one notebook task). `views` is "CODE" (the notebook: NOTEBOOK views), "DASHBOARDS" (DASHBOARD
        views) or "ALL". Raises `RunNotFound`; `InvalidParameterValue` when the run is not a notebook task
        run (or a job run with several tasks)."""
        ...

    def cancel_run(self, run_id: int) -> None:
        """Cancel a job run or a single task run, asynchronously."""
        ...

    def cancel_all_runs(self, *, job_id: int | None, all_queued_runs: bool) -> None: ...

    def delete_run(self, run_id: int) -> None: ...

    def poison_messages(
        self, *, limit: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The queue messages kept as poison, newest first, and the next page's token (`core.poison`)."""
        ...
