"""Which notifications a change of a run triggers: pure functions of the run before and after a step, the
settings it executes (`spec`) and `now` (epoch ms). No I/O, no clock.

Job level (the run), as the Jobs API documents it:

- `on_start`: the run starts (leaves PENDING or QUEUED for RUNNING), and again when a repair restarts it.
- `on_success`: it ends TERMINATED with SUCCESS, or SUCCESS_WITH_FAILURES ("succeeded with failures" counts
  as success on Databricks).
- `on_failure`: it ends FAILED or TIMEDOUT, or in INTERNAL_ERROR; CANCELED unless
  `notification_settings.no_alert_for_canceled_runs`; SKIPPED (max_concurrent_runs reached) unless
  `notification_settings.no_alert_for_skipped_runs` (the deprecated `email_notifications.
  no_alert_for_skipped_runs` mutes the emails only). Job-level notifications never fire for a task's
  retries: only the run's end counts.
- `on_duration_warning_threshold_exceeded`: the run has been running longer than the smallest
  `health.rules` value with metric RUN_DURATION_SECONDS and op GREATER_THAN (measured from its start, or
  from the start of its latest repair). Once per run (per repair).

Task level (every top-level task; for-each iterations and condition tasks send none), per attempt:

- `on_start`: the attempt starts RUNNING. With `notification_settings.alert_on_last_attempt`, only the
  first attempt of a chain of retries notifies ("do not send notifications to recipients specified in
  on_start for the retried runs").
- `on_success`: the attempt ends SUCCESS.
- `on_failure`: the attempt ends FAILED or TIMEDOUT (every failed attempt, retries included), or CANCELED
  unless `no_alert_for_canceled_runs`. With `alert_on_last_attempt`, only the last attempt notifies: a
  failed attempt that a retry follows sends nothing ("do not send notifications to recipients specified in
  on_failure until the last retry of the run"). Attempts that never became ready (UPSTREAM_FAILED,
  EXCLUDED, DISABLED, cancelled while blocked) send nothing.
- `on_duration_warning_threshold_exceeded`: the attempt has been running longer than the task's own
  RUN_DURATION_SECONDS rule. Once per attempt.

A `Notice` is made only when the event has recipients (`email_notifications.<event>` addresses or
`webhook_notifications.<event>` destination ids). Its `key` names it uniquely within its run: the
notifier claims it with an insert-if-absent, so a hook that fires twice sends once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.engine.records import Run, TaskRun
from core.engine.states import LifeCycle, Result

__all__ = [
    "Notice",
    "NotifyEvent",
    "Recipients",
    "duration_deadlines",
    "durations_exceeded",
    "has_notifications",
    "run_finished",
    "run_started",
    "task_changes",
    "threshold_seconds",
]

_RUNNING = (LifeCycle.RUNNING, LifeCycle.TERMINATING)


class NotifyEvent(StrEnum):
    """The notification events, named as the fields of `email_notifications` / `webhook_notifications`."""

    ON_START = "on_start"
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ON_DURATION_WARNING = "on_duration_warning_threshold_exceeded"


@dataclass(frozen=True, slots=True)
class Recipients:
    emails: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()  # notification-destination ids

    def __bool__(self) -> bool:
        return bool(self.emails or self.destinations)


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification to send: an event of the run (`task` None) or of one task attempt."""

    event: NotifyEvent
    run: Run
    task: TaskRun | None
    job_name: str
    recipients: Recipients
    detail: str = ""  # what the message adds to the run's state (e.g. the duration threshold)

    @property
    def key(self) -> str:
        """Unique within the run: the run's events per repair, a task's per attempt."""
        if self.task is not None:
            return f"task.{self.task.run_id:016d}.{self.event.value}"
        return f"run.{_repairs(self.run)}.{self.event.value}"


# -- settings -------------------------------------------------------------------------------------------


def has_notifications(spec: Mapping[str, Any]) -> bool:
    """Whether the settings name any recipient, at job or task level (else nothing here can notify)."""
    return any(_names_recipients(s) for s in (spec, *_top_tasks(spec)))


def threshold_seconds(settings: Mapping[str, Any]) -> int | None:
    """The smallest RUN_DURATION_SECONDS GREATER_THAN value of `health.rules`, or None."""
    rules = (settings.get("health") or {}).get("rules") or ()
    values = [
        int(rule["value"])
        for rule in rules
        if isinstance(rule, Mapping)
        and rule.get("metric") == "RUN_DURATION_SECONDS"
        and rule.get("op") == "GREATER_THAN"
        and isinstance(rule.get("value"), int)
    ]
    return min(values) if values else None


def _names_recipients(settings: Mapping[str, Any]) -> bool:
    for field in ("email_notifications", "webhook_notifications"):
        lists = settings.get(field) or {}
        if any(lists.get(event) for event in NotifyEvent):
            return True
    return False


def _recipients(settings: Mapping[str, Any], event: NotifyEvent, *, mute_email: bool = False) -> Recipients:
    emails = () if mute_email else (settings.get("email_notifications") or {}).get(event.value) or ()
    hooks = (settings.get("webhook_notifications") or {}).get(event.value) or ()
    return Recipients(
        emails=tuple(dict.fromkeys(str(a).strip() for a in emails if str(a).strip())),
        destinations=tuple(
            dict.fromkeys(str(h["id"]) for h in hooks if isinstance(h, Mapping) and h.get("id"))
        ),
    )


def _top_tasks(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in spec.get("tasks") or () if isinstance(t, Mapping)]


def _task_settings(spec: Mapping[str, Any], task: TaskRun) -> Mapping[str, Any] | None:
    """The settings of a top-level task attempt; None for iterations and condition tasks (which notify
    nobody, as on Databricks)."""
    if task.parent_task_run_id is not None:
        return None
    for settings in _top_tasks(spec):
        if settings.get("task_key") == task.task_key:
            return None if "condition_task" in settings else settings
    return None


def _job_name(run: Run, spec: Mapping[str, Any]) -> str:
    return str(spec.get("name") or run.run_name or run.job_id)


# -- ends -----------------------------------------------------------------------------------------------


def _ending(life_cycle: LifeCycle, result: Result | None, *, run_level: bool) -> str | None:
    """success / failure / canceled / skipped, or None for an end that notifies nobody."""
    if life_cycle is LifeCycle.INTERNAL_ERROR:
        return "failure"
    if life_cycle is LifeCycle.SKIPPED or result is Result.MAXIMUM_CONCURRENT_RUNS_REACHED:
        return "skipped"
    if result is Result.SUCCESS or (run_level and result is Result.SUCCESS_WITH_FAILURES):
        return "success"
    if result in (Result.FAILED, Result.TIMEDOUT):
        return "failure"
    if result is Result.CANCELED:
        return "canceled"
    return None


def _end_recipients(settings: Mapping[str, Any], ending: str) -> tuple[NotifyEvent, Recipients]:
    if ending == "success":
        return NotifyEvent.ON_SUCCESS, _recipients(settings, NotifyEvent.ON_SUCCESS)
    flags = settings.get("notification_settings") or {}
    if ending == "canceled" and flags.get("no_alert_for_canceled_runs"):
        return NotifyEvent.ON_FAILURE, Recipients()
    if ending == "skipped" and flags.get("no_alert_for_skipped_runs"):
        return NotifyEvent.ON_FAILURE, Recipients()
    mute = ending == "skipped" and bool(
        (settings.get("email_notifications") or {}).get("no_alert_for_skipped_runs")
    )
    return NotifyEvent.ON_FAILURE, _recipients(settings, NotifyEvent.ON_FAILURE, mute_email=mute)


# -- the run --------------------------------------------------------------------------------------------


def run_started(before: Run, after: Run, spec: Mapping[str, Any]) -> list[Notice]:
    """The job-level on_start of a step that started the run (or restarted it for a repair)."""
    first_start = bool(after.start_time) and not before.start_time
    repaired = before.is_final and not after.is_final and _repairs(after) > _repairs(before)
    if not (first_start or repaired):
        return []
    recipients = _recipients(spec, NotifyEvent.ON_START)
    if not recipients:
        return []
    return [Notice(NotifyEvent.ON_START, after, None, _job_name(after, spec), recipients)]


def run_finished(run: Run, spec: Mapping[str, Any]) -> list[Notice]:
    """The job-level on_success / on_failure of a run that reached its final state."""
    ending = _ending(run.life_cycle, run.result, run_level=True) if run.is_final else None
    if ending is None:
        return []
    event, recipients = _end_recipients(spec, ending)
    if not recipients:
        return []
    return [Notice(event, run, None, _job_name(run, spec), recipients)]


# -- tasks ----------------------------------------------------------------------------------------------


def task_changes(
    before: Mapping[int, TaskRun], run: Run, tasks: Mapping[int, TaskRun], spec: Mapping[str, Any]
) -> list[Notice]:
    """The task-level notices of one step: `before` are the attempts the step was applied to, `tasks` every
    attempt after it (unchanged ones are the same objects, so they are skipped cheaply)."""
    notices: list[Notice] = []
    for task in tasks.values():
        old = before.get(task.run_id)
        if old is task:
            continue
        settings = _task_settings(spec, task)
        if settings is None:
            continue
        flags = settings.get("notification_settings") or {}
        last_only = bool(flags.get("alert_on_last_attempt"))
        # RUNNING: the engine also stamps a start time on tasks it decides never to run (run_if, disabled)
        started = task.life_cycle is LifeCycle.RUNNING and (
            old is None or old.life_cycle is not LifeCycle.RUNNING
        )
        if started and not (last_only and _retry_number(task, tasks) > 0):
            recipients = _recipients(settings, NotifyEvent.ON_START)
            if recipients:
                notices.append(_task_notice(NotifyEvent.ON_START, run, task, spec, recipients))
        if task.is_final and (old is None or not old.is_final) and (task.queued_time or task.start_time):
            ending = _ending(task.life_cycle, task.result, run_level=False)
            if ending is None or ending == "skipped":
                continue
            event, recipients = _end_recipients(settings, ending)
            if event is NotifyEvent.ON_FAILURE and last_only and _retried(task, tasks):
                continue
            if recipients:
                notices.append(_task_notice(event, run, task, spec, recipients))
    return notices


def _task_notice(
    event: NotifyEvent,
    run: Run,
    task: TaskRun,
    spec: Mapping[str, Any],
    recipients: Recipients,
    detail: str = "",
) -> Notice:
    return Notice(event, run, task, _job_name(run, spec), recipients, detail)


def _retry_number(task: TaskRun, tasks: Mapping[int, TaskRun]) -> int:
    """Attempts before `task` in its chain of retries (a repair starts a new chain)."""
    first = tasks.get(task.original_attempt_run_id or task.run_id)
    return task.attempt_number - (first.attempt_number if first is not None else 0)


def _retried(task: TaskRun, tasks: Mapping[int, TaskRun]) -> bool:
    """Whether a later attempt of the same task (and iteration) exists: the engine creates the retry in
    the step that ends the failed attempt."""
    return any(
        t.task_key == task.task_key
        and t.parent_task_run_id == task.parent_task_run_id
        and t.iteration == task.iteration
        and t.attempt_number > task.attempt_number
        for t in tasks.values()
    )


# -- durations ------------------------------------------------------------------------------------------


def durations_exceeded(
    run: Run, tasks: Mapping[int, TaskRun], spec: Mapping[str, Any], now_ms: int
) -> list[Notice]:
    """The duration warnings due at `now_ms`: the run, and each running attempt, past its threshold. The
    same warning is returned on every call while it holds (the notifier's claim sends it once)."""
    notices: list[Notice] = []
    for settings, task, started in _timed(run, tasks, spec):
        limit = threshold_seconds(settings)
        if limit is None or now_ms - started <= limit * 1000:
            continue
        recipients = _recipients(settings, NotifyEvent.ON_DURATION_WARNING)
        if not recipients:
            continue
        what = "run" if task is None else "task run"
        detail = (
            f"The {what} has been running for {(now_ms - started) // 1000} s, longer than its "
            f"RUN_DURATION_SECONDS threshold of {limit} s."
        )
        notices.append(
            Notice(NotifyEvent.ON_DURATION_WARNING, run, task, _job_name(run, spec), recipients, detail)
        )
    return notices


def duration_deadlines(
    run: Run, tasks: Mapping[int, TaskRun], spec: Mapping[str, Any]
) -> list[tuple[str, int]]:
    """(notice key, epoch ms) of every duration warning this run may still send: the run and each running
    attempt with a RUN_DURATION_SECONDS rule and recipients, and the instant its warning falls due."""
    deadlines = []
    for settings, task, started in _timed(run, tasks, spec):
        limit = threshold_seconds(settings)
        if limit is None or not _recipients(settings, NotifyEvent.ON_DURATION_WARNING):
            continue
        key = Notice(NotifyEvent.ON_DURATION_WARNING, run, task, "", Recipients()).key
        deadlines.append((key, started + limit * 1000 + 1))
    return deadlines


def _timed(
    run: Run, tasks: Mapping[int, TaskRun], spec: Mapping[str, Any]
) -> Iterable[tuple[Mapping[str, Any], TaskRun | None, int]]:
    """(settings, attempt or None for the run, start ms) of what is running now."""
    if run.life_cycle not in _RUNNING:
        return
    started = _run_started_at(run)
    if started:
        yield spec, None, started
    for task in tasks.values():
        if task.life_cycle is LifeCycle.RUNNING and task.start_time:
            settings = _task_settings(spec, task)
            if settings is not None:
                yield settings, task, task.start_time


def _repairs(run: Run) -> int:
    return sum(1 for entry in run.repair_history if entry.type == "REPAIR")


def _run_started_at(run: Run) -> int:
    """When the run (or its latest repair) started."""
    repairs = [entry for entry in run.repair_history if entry.type == "REPAIR"]
    return repairs[-1].start_time if repairs else run.start_time
