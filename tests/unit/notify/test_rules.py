"""Which notifications fire: the pure rules of `core.notify.rules`, driven by the real engine (the
`Sim` harness of the engine tests) with the run before and after every step, as the notifier sees it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from core.engine import (
    CancelRun,
    Dequeue,
    Enqueue,
    LifeCycle,
    RepairRun,
    Result,
    Skip,
    TaskEnded,
    TaskStarted,
)
from core.engine.records import RepairEntry, Run
from core.notify.rules import (
    Notice,
    NotifyEvent,
    duration_deadlines,
    durations_exceeded,
    has_notifications,
    run_finished,
    run_started,
    task_changes,
    threshold_seconds,
)
from tests.unit.engine.harness import T0, Sim, condition, for_each, task

START, SUCCESS, FAILURE, LONG = (
    NotifyEvent.ON_START,
    NotifyEvent.ON_SUCCESS,
    NotifyEvent.ON_FAILURE,
    NotifyEvent.ON_DURATION_WARNING,
)
EVERY = {e.value: [f"{e.value}@example.com"] for e in NotifyEvent}
HOOKS = {e.value: [{"id": f"dest-{e.value}"}] for e in NotifyEvent}


def job(*tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "nightly", "tasks": list(tasks) or [task("a")], **fields}


class Watch:
    """The engine run, and every notice its steps produce, as the notifier's hooks would compute them."""

    def __init__(self, spec: dict[str, Any], **run_fields: Any) -> None:
        self.spec = spec
        self.sim = Sim.create(spec, **run_fields)
        self.notices: list[Notice] = []

    def step(self, act: Callable[[Sim], object]) -> list[Notice]:
        before_run, before_tasks = self.sim.run, dict(self.sim.tasks)
        act(self.sim)
        after = self.sim.run
        found = run_started(before_run, after, self.spec)
        found += task_changes(before_tasks, after, self.sim.tasks, self.spec)
        if after.is_final and not before_run.is_final:
            found += run_finished(after, self.spec)
        self.notices += found
        return found

    def run_task(self, key: str, result: Result = Result.SUCCESS) -> None:
        """Start and end the latest attempt of `key`, in two steps (two commits), as a host does."""
        self.step(lambda s: s.started(key))
        self.step(lambda s: s.ended(key, result))

    def events(self) -> list[tuple[str, NotifyEvent]]:
        return [("run" if n.task is None else n.task.task_key, n.event) for n in self.notices]


def started(watch: Watch) -> Watch:
    watch.step(lambda s: s.start_run())
    return watch


# -- job level ------------------------------------------------------------------------------------------


def test_a_run_that_succeeds_notifies_start_and_success_with_its_recipients() -> None:
    w = started(Watch(job(email_notifications=EVERY, webhook_notifications=HOOKS)))
    w.run_task("a")

    assert w.events() == [("run", START), ("run", SUCCESS)]
    first = w.notices[0]
    assert first.recipients.emails == ("on_start@example.com",)
    assert first.recipients.destinations == ("dest-on_start",)
    assert first.job_name == "nightly" and first.key == "run.0.on_start"


def test_nothing_is_noticed_without_recipients() -> None:
    w = started(Watch(job(email_notifications={"on_start": []}, webhook_notifications={})))
    w.run_task("a", Result.FAILED)
    assert w.notices == []
    assert not has_notifications(w.spec)
    assert has_notifications(job(task("a", email_notifications={"on_failure": ["x@example.com"]})))


@pytest.mark.parametrize(
    ("result", "flags", "event"),
    [
        (Result.SUCCESS, {}, SUCCESS),
        (Result.FAILED, {}, FAILURE),
        (Result.TIMEDOUT, {}, FAILURE),
        (Result.CANCELED, {}, FAILURE),
        (Result.CANCELED, {"no_alert_for_canceled_runs": True}, None),
        (Result.FAILED, {"no_alert_for_canceled_runs": True, "no_alert_for_skipped_runs": True}, FAILURE),
    ],
)
def test_how_a_run_ends_decides_its_notice(
    result: Result, flags: dict[str, bool], event: NotifyEvent | None
) -> None:
    w = started(Watch(job(email_notifications=EVERY, notification_settings=flags)))
    w.run_task("a", result)
    assert [e for who, e in w.events() if who == "run"][1:] == ([event] if event else [])


def test_succeeded_with_failures_counts_as_success() -> None:
    spec = job(task("a"), task("b", ["a"], run_if="ALL_DONE"), email_notifications=EVERY)
    w = started(Watch(spec))
    w.run_task("a", Result.FAILED)
    w.run_task("b")
    assert w.sim.run.result is Result.SUCCESS_WITH_FAILURES
    assert w.events()[-1] == ("run", SUCCESS)


def test_a_cancelled_run_is_a_failure_unless_muted() -> None:
    loud = started(Watch(job(email_notifications=EVERY)))
    loud.step(lambda s: s.apply(CancelRun()))
    loud.step(lambda s: s.ended("a", Result.CANCELED))  # the kill lands
    quiet = started(
        Watch(job(email_notifications=EVERY, notification_settings={"no_alert_for_canceled_runs": True}))
    )
    quiet.step(lambda s: s.apply(CancelRun()))
    quiet.step(lambda s: s.ended("a", Result.CANCELED))

    assert loud.sim.run.result is quiet.sim.run.result is Result.CANCELED
    assert loud.events() == [("run", START), ("run", FAILURE)]
    assert quiet.events() == [("run", START)]


def test_a_skipped_run_is_a_failure_unless_muted_and_the_old_email_flag_mutes_only_emails() -> None:
    loud = Watch(job(email_notifications=EVERY, webhook_notifications=HOOKS))
    loud.step(lambda s: s.apply(Skip("max_concurrent_runs")))
    muted = Watch(job(email_notifications=EVERY, notification_settings={"no_alert_for_skipped_runs": True}))
    muted.step(lambda s: s.apply(Skip("max_concurrent_runs")))
    old_flag = Watch(
        job(email_notifications={**EVERY, "no_alert_for_skipped_runs": True}, webhook_notifications=HOOKS)
    )
    old_flag.step(lambda s: s.apply(Skip("max_concurrent_runs")))

    assert loud.sim.run.life_cycle is LifeCycle.SKIPPED
    assert loud.events() == [("run", FAILURE)]  # never started: no on_start
    assert muted.events() == []
    (notice,) = old_flag.notices
    assert notice.recipients.emails == () and notice.recipients.destinations == ("dest-on_failure",)


def test_a_queued_run_notifies_its_start_when_it_leaves_the_queue() -> None:
    w = Watch(job(email_notifications=EVERY))
    assert w.step(lambda s: s.apply(Enqueue("waiting for a slot"))) == []
    assert [n.event for n in w.step(lambda s: s.apply(Dequeue()))] == [START]


def test_a_repair_starts_and_ends_again_under_new_keys() -> None:
    w = started(Watch(job(email_notifications=EVERY)))
    w.run_task("a", Result.FAILED)
    w.step(lambda s: s.apply(RepairRun(repair_id=5, rerun_tasks=("a",))))
    w.run_task("a")

    assert w.events() == [("run", START), ("run", FAILURE), ("run", START), ("run", SUCCESS)]
    assert [n.key for n in w.notices] == [
        "run.0.on_start",
        "run.0.on_failure",
        "run.1.on_start",
        "run.1.on_success",
    ]


def test_job_level_notifications_ignore_task_retries() -> None:
    spec = job(task("a", max_retries=1), email_notifications=EVERY)
    w = started(Watch(spec))
    w.run_task("a", Result.FAILED)
    w.step(lambda s: s.tick(1))  # the retry starts
    w.run_task("a")
    assert w.events() == [("run", START), ("run", SUCCESS)]


# -- task level -----------------------------------------------------------------------------------------


def retried(**notification_settings: bool) -> Watch:
    """Task `a` (2 retries) fails twice and succeeds; task `b` (1 retry) fails twice."""
    spec = job(
        task("a", max_retries=2, email_notifications=EVERY, notification_settings=notification_settings),
        task("b", max_retries=1, email_notifications=EVERY, notification_settings=notification_settings),
    )
    w = started(Watch(spec))
    for result in (Result.FAILED, Result.FAILED, Result.SUCCESS):
        w.run_task("a", result)
        w.step(lambda s: s.tick(1))
    for _ in range(2):
        w.run_task("b", Result.FAILED)
        w.step(lambda s: s.tick(1))
    return w


def test_every_task_attempt_notifies_its_start_and_its_end() -> None:
    w = retried()
    attempts = [(n.task.task_key, n.task.attempt_number, n.event) for n in w.notices if n.task]
    assert attempts == [
        ("a", 0, START), ("a", 0, FAILURE),
        ("a", 1, START), ("a", 1, FAILURE),
        ("a", 2, START), ("a", 2, SUCCESS),
        ("b", 0, START), ("b", 0, FAILURE),
        ("b", 1, START), ("b", 1, FAILURE),
    ]  # fmt: skip
    assert len({n.key for n in w.notices}) == len(w.notices)


def test_alert_on_last_attempt_notifies_the_first_start_and_the_last_failure() -> None:
    w = retried(alert_on_last_attempt=True)
    attempts = [(n.task.task_key, n.task.attempt_number, n.event) for n in w.notices if n.task]
    assert attempts == [
        ("a", 0, START),
        ("a", 2, SUCCESS),
        ("b", 0, START),
        ("b", 1, FAILURE),  # the last retry failed: now it notifies
    ]


def test_a_cancelled_task_notifies_failure_unless_muted_and_tasks_that_never_ran_say_nothing() -> None:
    def cancelled(flags: dict[str, bool]) -> list[tuple[str, NotifyEvent]]:
        spec = job(
            task("a", email_notifications=EVERY, notification_settings=flags),
            task("b", ["a"], email_notifications=EVERY),
        )
        w = started(Watch(spec))
        w.step(lambda s: s.started("a"))
        w.step(lambda s: s.cancel_task("a"))
        w.step(lambda s: s.ended("a", Result.CANCELED))
        assert w.sim.state("b") == (LifeCycle.TERMINATED, Result.UPSTREAM_CANCELED)
        return w.events()

    assert cancelled({}) == [("a", START), ("a", FAILURE)]
    assert cancelled({"no_alert_for_canceled_runs": True}) == [("a", START)]


def test_condition_tasks_and_for_each_iterations_notify_nobody() -> None:
    spec = job(
        {**condition("check", "EQUAL_TO", "1", "1"), "email_notifications": EVERY},
        for_each("each", '["x"]', task("each_iteration", email_notifications=EVERY), deps=["check"]),
    )
    w = started(Watch(spec))
    w.step(lambda s: s.apply(TaskStarted(s.iteration("each", 0).run_id)))
    w.step(lambda s: s.apply(TaskEnded(s.iteration("each", 0).run_id, Result.FAILED)))
    assert w.sim.latest("check").result is Result.SUCCESS
    assert w.sim.iteration("each", 0).result is Result.FAILED
    assert w.events() == []


# -- durations ------------------------------------------------------------------------------------------


def test_duration_rules_warn_once_past_the_threshold_for_the_run_and_each_attempt() -> None:
    health = {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 60}]}
    tight = {
        "rules": [*health["rules"], {"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 10}]
    }
    spec = job(
        task("a", health=tight, webhook_notifications=HOOKS),
        email_notifications=EVERY,
        health=health,
    )
    w = started(Watch(spec))
    w.step(lambda s: s.started("a"))
    run, tasks = w.sim.run, w.sim.tasks
    attempt = w.sim.latest("a")
    start = run.start_time

    assert threshold_seconds(spec) == 60 and threshold_seconds(spec["tasks"][0]) == 10
    assert sorted(duration_deadlines(run, tasks, spec), key=lambda d: d[1]) == [
        (f"task.{attempt.run_id:016d}.{LONG.value}", attempt.start_time + 10_001),
        (f"run.0.{LONG.value}", start + 60_001),
    ]
    assert durations_exceeded(run, tasks, spec, attempt.start_time + 10_000) == []  # not greater yet
    (task_warning,) = durations_exceeded(run, tasks, spec, attempt.start_time + 10_001)
    assert task_warning.task == attempt and task_warning.recipients.destinations == ("dest-" + LONG.value,)
    both = durations_exceeded(run, tasks, spec, start + 61_000)
    assert [n.task is None for n in both] == [True, False]
    assert "longer than its RUN_DURATION_SECONDS threshold of 60 s" in both[0].detail


def test_no_duration_warning_without_a_rule_recipients_or_a_running_run() -> None:
    health = {"rules": [{"metric": "STREAMING_BACKLOG_BYTES", "op": "GREATER_THAN", "value": 1}]}
    w = started(Watch(job(email_notifications=EVERY, health=health)))
    assert durations_exceeded(w.sim.run, w.sim.tasks, w.spec, T0 + 10**9) == []
    ruled = {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 1}]}
    silent = started(Watch(job(health=ruled)))
    assert duration_deadlines(silent.sim.run, silent.sim.tasks, silent.spec) == []
    done = started(Watch(job(email_notifications=EVERY, health=ruled)))
    done.run_task("a")
    assert durations_exceeded(done.sim.run, done.sim.tasks, done.spec, T0 + 10**9) == []


def test_a_repaired_run_is_timed_from_its_repair() -> None:
    ruled = {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 5}]}
    spec = job(email_notifications=EVERY, health=ruled)
    run = Run(
        run_id=1,
        job_id=7,
        life_cycle=LifeCycle.RUNNING,
        start_time=T0,
        repair_history=(
            RepairEntry("ORIGINAL", None, T0, T0 + 1000),
            RepairEntry("REPAIR", 9, T0 + 100_000),
        ),
    )
    assert durations_exceeded(run, {}, spec, T0 + 104_000) == []
    (warning,) = durations_exceeded(run, {}, spec, T0 + 106_000)
    assert warning.key == f"run.1.{LONG.value}"
    assert durations_exceeded(replace(run, life_cycle=LifeCycle.TERMINATED), {}, spec, T0 + 10**9) == []
