"""An in-memory stand-in for `core.handlers.Floe`, for the API layer's own tests only.

It does what the HTTP layer needs to be exercised (store jobs, make finished runs, page lists, repair
and export them) and records every call, so tests can check what the layer parsed. Runs finish at once:
every task SUCCESS; a repair re-runs tasks as new, successful attempts. `add_view` installs a hand-built
run (for-each iterations, queued runs, ...); `get_run` of a task run id answers its run focused on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.engine.records import RepairEntry, Run, TaskRun, Termination
from core.engine.states import LifeCycle, Result, RunType, TerminationCode, TerminationType
from core.errors import InvalidParameterValue, InvalidState, JobNotFound, RunNotFound
from core.model import RepairRequest, RunNowRequest, merge_update, validate_job_settings
from core.views import ExportedView, JobPage, JobRecord, RunOutput, RunPage, RunView

TOKEN = "good-token"
USER = "alice@example.com"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class FakeFloe:
    jobs: dict[int, JobRecord] = field(default_factory=dict)
    runs: dict[int, RunView] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_with: Exception | None = None  # raised by every call but authenticate
    next_id: int = 100
    trigger_min_seconds: int = 60

    def _call(self, method: str, /, **args: Any) -> None:
        self.calls.append((method, args))
        if self.fail_with is not None:
            raise self.fail_with

    def last(self, method: str) -> dict[str, Any]:
        return next(args for m, args in reversed(self.calls) if m == method)

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # ------------------------------------------------------------------------------------------ jobs

    def authenticate(self, token: str) -> str | None:
        return USER if token == TOKEN else None

    def create_job(self, settings: dict[str, Any], *, creator: str) -> int:
        self._call("create_job", settings=settings, creator=creator)
        job_id = self._new_id()
        self.jobs[job_id] = JobRecord(job_id, settings, T0, creator, creator)
        return job_id

    def get_job(self, job_id: int) -> JobRecord:
        self._call("get_job", job_id=job_id)
        if job_id not in self.jobs:
            raise JobNotFound(job_id)
        return self.jobs[job_id]

    def list_jobs(self, *, name: str | None, limit: int, offset: int, page_token: str | None) -> JobPage:
        self._call("list_jobs", name=name, limit=limit, offset=offset, page_token=page_token)
        jobs = [
            j
            for j in self.jobs.values()
            if name is None or j.settings.get("name", "").lower() == name.lower()
        ]
        start = int(page_token) if page_token else offset
        page = jobs[start : start + limit]
        more = start + limit < len(jobs)
        return JobPage(page, str(start + limit) if more else None, str(start) if start else None, more)

    def update_job(self, job_id: int, new_settings: dict[str, Any], fields_to_remove: list[str]) -> None:
        self._call("update_job", job_id=job_id, new_settings=new_settings, fields_to_remove=fields_to_remove)
        job = self.get_job(job_id)
        merged = validate_job_settings(merge_update(job.settings, new_settings, fields_to_remove))
        self.jobs[job_id] = JobRecord(
            job_id, merged, job.created_time, job.creator_user_name, job.run_as_user_name
        )

    def reset_job(self, job_id: int, new_settings: dict[str, Any]) -> None:
        self._call("reset_job", job_id=job_id, new_settings=new_settings)
        job = self.get_job(job_id)
        self.jobs[job_id] = JobRecord(job_id, new_settings, job.created_time, job.creator_user_name, USER)

    def delete_job(self, job_id: int) -> None:
        self._call("delete_job", job_id=job_id)
        self.get_job(job_id)
        del self.jobs[job_id]

    def trigger_state(self, job_id: int) -> dict[str, Any]:
        self._call("trigger_state", job_id=job_id)
        settings = self.get_job(job_id).settings
        return {"schedule": {"pause_status": "UNPAUSED", "fire_count": 0}} if "schedule" in settings else {}

    # ------------------------------------------------------------------------------------------ runs

    def run_now(self, request: RunNowRequest, *, creator: str) -> Run:
        self._call("run_now", request=request, creator=creator)
        job = self.get_job(request.job_id)
        values = {p["name"]: p["default"] for p in job.settings.get("parameters", ())}
        values.update(request.job_parameters or {})
        return self._finished_run(job.job_id, job.settings, RunType.JOB_RUN, creator, values)

    def submit(self, body: dict[str, Any], *, creator: str) -> Run:
        self._call("submit", body=body, creator=creator)
        return self._finished_run(self._new_id(), body, RunType.SUBMIT_RUN, creator, {})

    def _finished_run(
        self, job_id: int, spec: dict[str, Any], run_type: RunType, creator: str, values: dict[str, str]
    ) -> Run:
        run_id = self._new_id()
        success = Termination(TerminationCode.SUCCESS, TerminationType.SUCCESS)
        tasks = [
            TaskRun(
                task_key=t["task_key"],
                run_id=self._new_id(),
                parent_run_id=run_id,
                life_cycle=LifeCycle.TERMINATED,
                result=Result.SUCCESS,
                termination=success,
                queued_time=T0 + 10,
                start_time=T0 + 20,
                end_time=T0 + 1000,
                # a run_job_task "started" a child run (which the fake does not keep)
                **({"child_run_id": self._new_id()} if "run_job_task" in t else {}),
            )
            for t in spec.get("tasks", ())
        ]
        run = Run(
            run_id=run_id,
            job_id=job_id,
            run_name=spec.get("name") or spec.get("run_name", ""),
            run_type=run_type,
            creator_user_name=creator,
            life_cycle=LifeCycle.TERMINATED,
            result=Result.SUCCESS,
            termination=success,
            created_time=T0,
            start_time=T0,
            end_time=T0 + 1000,
            job_parameters=values,
        )
        self.runs[run_id] = RunView(run, tasks, spec, spec.get("name", ""))
        return run

    def add_view(self, view: RunView) -> RunView:
        self.runs[view.run.run_id] = view
        return view

    def add_for_each_run(self, iterations: int, *, run_id: int = 10, job_id: int = 1) -> RunView:
        """A running job run `run_id` whose one task, a for-each task (task run `run_id` + 1), has
        `iterations` finished iterations (task runs 1000, 1001, ...)."""
        item = {"task_key": "item", "notebook_task": {"notebook_path": "/Shared/item"}}
        spec = {
            "name": "fan",
            "tasks": [
                {"task_key": "each", "for_each_task": {"inputs": "{{job.parameters.items}}", "task": item}}
            ],
        }
        run = Run(run_id=run_id, job_id=job_id, life_cycle=LifeCycle.RUNNING, created_time=T0, start_time=T0)
        each = TaskRun(
            "each", run_id + 1, run_id, life_cycle=LifeCycle.RUNNING, queued_time=T0, start_time=T0
        )
        done = Termination(TerminationCode.SUCCESS, TerminationType.SUCCESS)
        tasks = [each] + [
            TaskRun(
                task_key="item",
                run_id=1000 + i,
                parent_run_id=run_id,
                parent_task_run_id=run_id + 1,
                iteration=i,
                life_cycle=LifeCycle.TERMINATED,
                result=Result.SUCCESS,
                termination=done,
                queued_time=T0 + i,
                start_time=T0 + i,
                end_time=T0 + i + 1,
            )
            for i in range(iterations)
        ]
        return self.add_view(RunView(run, tasks, spec, "fan"))

    def get_run(self, run_id: int) -> RunView:
        self._call("get_run", run_id=run_id)
        if run_id in self.runs:
            return self.runs[run_id]
        view, _ = self._find_task(run_id)
        return replace(view, focus_task_run_id=run_id)

    def _find_task(self, task_run_id: int) -> tuple[RunView, TaskRun]:
        for view in self.runs.values():
            for task in view.tasks:
                if task.run_id == task_run_id:
                    return view, task
        raise RunNotFound(task_run_id)

    def repair_run(self, request: RepairRequest, *, creator: str) -> int:
        self._call("repair_run", request=request, creator=creator)
        view = self.get_run(request.run_id)
        run = view.run
        if not run.is_final:
            raise InvalidState(f"Run {run.run_id} is still active; only a finished run can be repaired.")
        repairs = [e for e in run.repair_history if e.type == "REPAIR"]
        if repairs and request.latest_repair_id != repairs[-1].id:
            raise InvalidParameterValue(
                f"latest_repair_id must be {repairs[-1].id}, the latest repair of run {run.run_id}."
            )
        latest: dict[str, TaskRun] = {}
        for task in view.tasks:
            if task.task_key not in latest or task.attempt_number > latest[task.task_key].attempt_number:
                latest[task.task_key] = task
        if request.rerun_tasks is not None:
            unknown = [k for k in request.rerun_tasks if k not in latest]
            if unknown:
                raise InvalidParameterValue(f"rerun_tasks: run {run.run_id} has no task {unknown[0]!r}.")
            keys = list(request.rerun_tasks)
        else:
            keys = [k for k, t in latest.items() if t.result is not Result.SUCCESS]
        repair_id = self._new_id()
        start = max(run.end_time, T0) + 1000
        new = [
            replace(
                latest[key],
                run_id=self._new_id(),
                attempt_number=latest[key].attempt_number + 1,
                original_attempt_run_id=latest[key].original_attempt_run_id or latest[key].run_id,
                result=Result.SUCCESS,
                termination=Termination(TerminationCode.SUCCESS, TerminationType.SUCCESS),
                state_message="",
                queued_time=start,
                start_time=start + 10,
                end_time=start + 500,
            )
            for key in keys
        ]
        entry = RepairEntry(
            "REPAIR", repair_id, start, start + 500, tuple(t.run_id for t in new), LifeCycle.TERMINATED,
            Result.SUCCESS,
        )  # fmt: skip
        repaired = replace(
            run, result=Result.SUCCESS, end_time=start + 500, repair_history=(*run.repair_history, entry)
        )
        self.runs[run.run_id] = replace(view, run=repaired, tasks=[*view.tasks, *new])
        return repair_id

    def export_run(self, run_id: int, views: str) -> list[ExportedView]:
        self._call("export_run", run_id=run_id, views=views)
        if run_id in self.runs:
            view = self.runs[run_id]
            if len(view.tasks) != 1:
                raise InvalidParameterValue(f"Run {run_id} has {len(view.tasks)} tasks; export a task run.")
            task = view.tasks[0]
        else:
            view, task = self._find_task(run_id)
        settings = next(t for t in view.spec.get("tasks", ()) if t["task_key"] == task.task_key)
        if "notebook_task" not in settings:
            raise InvalidParameterValue(f"Run {run_id} is not a notebook task run; only notebooks export.")
        path = settings["notebook_task"]["notebook_path"]
        code = ExportedView(name=path.rsplit("/", 1)[-1], content=f"<html>{path}</html>")
        return [] if views == "DASHBOARDS" else [code]

    def list_runs(self, **args: Any) -> RunPage:
        self._call("list_runs", **args)
        views = [v for v in self.runs.values() if args["job_id"] is None or v.run.job_id == args["job_id"]]
        views.reverse()
        return RunPage(views[: args["limit"]], None, None, len(views) > args["limit"])

    def get_run_output(self, run_id: int) -> RunOutput:
        self._call("get_run_output", run_id=run_id)
        view, task = self._find_task(run_id)
        settings = next((t for t in view.spec.get("tasks", ()) if t["task_key"] == task.task_key), {})
        if "notebook_task" in settings:
            return RunOutput(
                view, task, notebook_output={"result": f"exit of {task.task_key}", "truncated": False}
            )
        return RunOutput(view, task, logs=f"output of {task.task_key}\n", logs_truncated=False)

    def cancel_run(self, run_id: int) -> None:
        self._call("cancel_run", run_id=run_id)
        self.get_run(run_id)

    def cancel_all_runs(self, *, job_id: int | None, all_queued_runs: bool) -> None:
        self._call("cancel_all_runs", job_id=job_id, all_queued_runs=all_queued_runs)

    def delete_run(self, run_id: int) -> None:
        self._call("delete_run", run_id=run_id)
        self.get_run(run_id)
        del self.runs[run_id]
