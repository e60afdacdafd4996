"""Telemetry of runs and task attempts, derived from the steps `RunService` commits.

`RunTelemetry.on_step` is a `RunService.on_step` hook: it sees every committed step (on the host that
committed it, once) with the run before and after, and emits from the difference:

- a run created: `floe.runs.started` and a `floe.run.trigger` span;
- a run that left QUEUED: a `floe.run.queued` span;
- a new attempt of a task that is a retry: `floe.task.retries`;
- an attempt that became final: its `floe.task` span and `floe.task.duration`;
- a run that became final: its `floe.run` span, `floe.runs.finished` and `floe.run.duration`.

The spans' ids come from the run (`core.telemetry.context`); their times are the run's own (epoch ms from
Floe's clock), so a run's span lasts exactly as long as the Jobs API says the run did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.engine.records import Run, TaskRun
from core.engine.states import LifeCycle, RunType, task_type
from core.telemetry import names
from core.telemetry.context import (
    TraceContext,
    attempt_context,
    original_context,
    repair_id,
    run_context,
)
from core.telemetry.setup import current
from core.telemetry.spans import (
    CONSUMER,
    INTERNAL,
    PRODUCER,
    current_context,
    export_fixed,
    export_timed,
    links_to,
)

if TYPE_CHECKING:
    from core.repository import RunState

log = logging.getLogger("floe.telemetry")

_OK_RUN = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"})


def run_attributes(run: Run, host_id: str | None = None) -> dict[str, Any]:
    """The attributes of a run's span (`names.SPANS[RUN_SPAN]`), from the run as it is now."""
    result = run.result.value if run.result is not None else None
    return {
        names.JOB_ID: job_id(run),
        names.RUN_ID: run.run_id,
        names.RUN_NAME: run.run_name,
        names.TRIGGER_TYPE: run.trigger.value,
        names.RESULT_STATE: result,
        names.TERMINATION_CODE: run.termination.code.value if run.termination else None,
        names.PIPELINE_RESULT: names.CICD_RESULT.get(result or "", "error") if run.is_final else None,
        names.REPAIR_ID: repair_id(run),
        names.HOST_ID: host_id,
    }


def task_attributes(run: Run, task: TaskRun, kind: str | None, host_id: str | None = None) -> dict[str, Any]:
    """The attributes of a task attempt's span (`names.SPANS[TASK_SPAN]`)."""
    result = task.result.value if task.result is not None else None
    return {
        names.JOB_ID: job_id(run),
        names.RUN_ID: run.run_id,
        names.TASK_KEY: task.task_key,
        names.TASK_RUN_ID: task.run_id,
        names.TASK_ATTEMPT: task.attempt_number,
        names.TASK_TYPE: kind,
        names.TASK_RESULT_STATE: result,
        names.TASK_TERMINATION_CODE: task.termination.code.value if task.termination else None,
        names.TASK_RESULT: names.CICD_RESULT.get(result or "", "error") if task.is_final else None,
        names.CLUSTER_ID: task.cluster_id,
        names.HOST_ID: task.lease_owner or host_id,
        names.REPAIR_ID: repair_id(run),
    }


def job_id(run: Run) -> int | None:
    """The job id a span or metric names: none for a one-time run, whose job id is hidden."""
    return None if run.run_type is RunType.SUBMIT_RUN else run.job_id


def task_context(run: Run, task: TaskRun) -> TraceContext | None:
    """The context of an attempt's span (what its process gets as TRACEPARENT)."""
    parent = run_context(run)
    return None if parent is None else attempt_context(parent, task.run_id)


class RunTelemetry:
    """The `on_step` hook of one `Floe` (see the module docstring). `spec_of` reads a run's settings
    (cached by the repository), for task types."""

    def __init__(self, spec_of: Callable[[str], dict[str, Any]], host_id: str) -> None:
        self._spec_of = spec_of
        self.host_id = host_id
        self._types: dict[str, dict[str, str | None]] = {}  # spec_ref -> task_key -> task type

    def on_step(self, before: RunState, after: RunState) -> None:
        try:
            self._on_step(before, after)
        except Exception:  # telemetry never gets in a run's way
            log.exception("could not record the telemetry of run %s", after.run.run_id)

    def _on_step(self, before: RunState, after: RunState) -> None:
        run = after.run
        telemetry = current()
        if not before.etags:  # `RunService.start`: the run was just inserted
            self._created(run)
        if before.run.life_cycle is LifeCycle.QUEUED and run.life_cycle is not LifeCycle.QUEUED:
            self._dequeued(run)
        repaired = len(before.run.repair_history) != len(run.repair_history)
        for tid, task in after.tasks.items():
            old = before.tasks.get(tid)
            if task is old:
                continue
            if old is None and task.attempt_number > 0 and not repaired:
                telemetry.count(
                    names.TASK_RETRIES, {names.JOB_ID: job_id(run), names.TASK_TYPE: self._kind(run, task)}
                )
            if task.is_final and (old is None or not old.is_final):
                self._task_ended(run, task)
        if run.is_final and not before.run.is_final:
            self._run_ended(run)

    def _kind(self, run: Run, task: TaskRun) -> str | None:
        """The task's type (`spark_python_task`, ...); specs are immutable, so read once per spec."""
        types = self._types.get(run.spec_ref)
        if types is None:
            types = {}
            for settings in self._spec_of(run.spec_ref).get("tasks") or []:
                types[str(settings.get("task_key"))] = task_type(settings)
                nested = (settings.get("for_each_task") or {}).get("task") or {}
                if nested:
                    types[str(nested.get("task_key"))] = task_type(nested)
            if len(self._types) >= 256:
                self._types.clear()
            self._types[run.spec_ref] = types
        return types.get(task.task_key)

    def _created(self, run: Run) -> None:
        current().count(
            names.RUNS_STARTED, {names.JOB_ID: job_id(run), names.TRIGGER_TYPE: run.trigger.value}
        )
        parent = run_context(run)
        if parent is None:
            return
        # An instant (the run's creation, by the run's clock), linked to the span that caused it.
        instant = run.created_time or int(time.time() * 1000)
        export_timed(
            names.RUN_TRIGGER_SPAN,
            parent=parent,
            start_ms=instant,
            end_ms=instant,
            kind=PRODUCER,
            attributes={
                names.JOB_ID: job_id(run),
                names.RUN_ID: run.run_id,
                names.TRIGGER_TYPE: run.trigger.value,
                names.HOST_ID: self.host_id,
            },
            links=links_to(current_context()),
        )

    def _dequeued(self, run: Run) -> None:
        parent = run_context(run)
        if parent is None or not run.created_time:
            return
        export_timed(
            names.RUN_QUEUED_SPAN,
            parent=parent,
            start_ms=run.created_time,
            end_ms=run.start_time or run.end_time or run.created_time,
            kind=INTERNAL,
            attributes={names.JOB_ID: job_id(run), names.RUN_ID: run.run_id, names.HOST_ID: self.host_id},
        )

    def _task_ended(self, run: Run, task: TaskRun) -> None:
        kind = self._kind(run, task)
        result = task.result.value if task.result is not None else None
        if task.start_time and task.end_time:
            current().record(
                names.TASK_DURATION,
                task.end_time - task.start_time,
                {names.JOB_ID: job_id(run), names.TASK_TYPE: kind, names.TASK_RESULT_STATE: result},
            )
        run_ctx = run_context(run)
        if run_ctx is None:
            return
        parent = run_ctx
        if task.parent_task_run_id is not None:  # a for-each iteration: under its for-each attempt
            parent = attempt_context(run_ctx, task.parent_task_run_id)
        end = task.end_time or int(time.time() * 1000)
        failed = (
            result not in ("SUCCESS", "SUCCESS_WITH_FAILURES")
            and names.CICD_RESULT.get(result or "") != "skip"
        )
        export_fixed(
            names.TASK_SPAN,
            attempt_context(run_ctx, task.run_id),
            parent=parent,
            start_ms=task.start_time or task.queued_time or end,
            end_ms=end,
            kind=CONSUMER,
            attributes=task_attributes(run, task, kind, self.host_id),
            error=(task.error or task.state_message or result or "failed") if failed else None,
        )

    def _run_ended(self, run: Run) -> None:
        result = run.result.value if run.result is not None else None
        repair = repair_id(run)
        start = run.created_time
        if repair is not None:
            start = next(e.start_time for e in run.repair_history if e.type == "REPAIR" and e.id == repair)
        end = run.end_time or int(time.time() * 1000)
        telemetry = current()
        dimensions = {
            names.JOB_ID: job_id(run),
            names.TRIGGER_TYPE: run.trigger.value,
            names.RESULT_STATE: result,
        }
        telemetry.count(
            names.RUNS_FINISHED,
            {**dimensions, names.TERMINATION_CODE: run.termination.code.value if run.termination else None},
        )
        if start:
            telemetry.record(names.RUN_DURATION, end - start, dimensions)
        ctx = run_context(run)
        if ctx is None:
            return
        export_fixed(
            names.RUN_SPAN,
            ctx,
            parent=None,
            start_ms=start or end,
            end_ms=end,
            kind=CONSUMER,
            attributes=run_attributes(run, self.host_id),
            error=None if result in _OK_RUN else (run.state_message or result or run.life_cycle.value),
            links=links_to(original_context(run)) if repair is not None else (),
        )
