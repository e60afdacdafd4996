"""The notifier wired into a real `Floe` (SQLite, a fake clock, no task processes: attempts are started and
ended by hand, as the executor would report them), sending to a real SMTP server and HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock, to_millis
from core.engine import LifeCycle, Result, TaskStarted, latest_attempts
from core.executor import Outcome
from core.handlers import Floe
from core.model import validate_job_settings, validate_run_now
from core.settings import Settings
from core.store import Storage
from tests.fixtures.receivers import HttpSink, SmtpSink, free_port

pytestmark = pytest.mark.timeout(60)

FAST = (0.01, 0.02, 0.04)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def http() -> Iterator[HttpSink]:
    with HttpSink() as sink:
        yield sink


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_floe(tmp_path: Path, storage: Storage, clock: FakeClock, host: str, **smtp: Any) -> Floe:
    settings = Settings(home=tmp_path / "home", workspace=tmp_path, smtp_from="floe@example.com", **smtp)
    floe = Floe(settings, storage, clock=clock, host_id=host, run_tasks=False)
    floe.notifier.backoff = FAST
    return floe


@pytest.fixture
def floe(tmp_path: Path, sqlite_storage: Storage, clock: FakeClock, smtp: SmtpSink) -> Iterator[Floe]:
    floe = make_floe(tmp_path, sqlite_storage, clock, "h1", smtp_host="127.0.0.1", smtp_port=smtp.port)
    yield floe
    floe.notifier.close()


def job(floe: Floe, **settings: Any) -> int:
    body = {"name": "nightly", "tasks": [{"task_key": "a", "spark_python_task": {"python_file": "a.py"}}]}
    body.update(settings)
    return floe.create_job(validate_job_settings(body), creator="me")


def run(floe: Floe, job_id: int) -> int:
    return floe.run_now(validate_run_now({"job_id": job_id}), creator="me").run_id


def attempt(floe: Floe, run_id: int, key: str = "a") -> int:
    return latest_attempts(floe.repo.load_run(run_id).tasks)[key].run_id


def start(floe: Floe, run_id: int, key: str = "a") -> None:
    tid = attempt(floe, run_id, key)
    floe.runs.transact(run_id, lambda s: TaskStarted(tid))


def end(floe: Floe, run_id: int, result: Result, key: str = "a") -> None:
    floe._task_ended(
        Outcome(run_id, attempt(floe, run_id, key), result, "" if result is Result.SUCCESS else "boom")
    )


def hook(floe: Floe, url: str, **config: str) -> str:
    return floe.destinations.create(
        {"display_name": "hook", "config": {"generic_webhook": {"url": url, **config}}}
    ).id


def test_a_failing_task_with_retries_alerts_once_at_the_start_and_once_at_the_last_failure(
    floe: Floe, smtp: SmtpSink, http: HttpSink
) -> None:
    dest = hook(floe, f"{http.url}/alerts", password="hmac-key")
    task = {
        "task_key": "a",
        "spark_python_task": {"python_file": "a.py"},
        "max_retries": 1,
        "notification_settings": {"alert_on_last_attempt": True},
        "email_notifications": {"on_start": ["task@example.com"]},
        "webhook_notifications": {"on_failure": [{"id": dest}]},
    }
    job_id = job(
        floe,
        tasks=[task],
        email_notifications={"on_start": ["ops@example.com"], "on_failure": ["ops@example.com"]},
    )
    run_id = run(floe, job_id)
    start(floe, run_id)
    end(floe, run_id, Result.FAILED)
    floe.runs.advance(run_id)  # the retry falls due at once
    start(floe, run_id)
    end(floe, run_id, Result.FAILED)
    assert floe.notifier.flush(10)

    state = floe.repo.load_run(run_id)
    assert state.run.result is Result.FAILED and len(state.tasks) == 2
    mails = sorted((m.recipients[0], m.subject) for m in smtp.received())
    assert mails == [
        ("ops@example.com", f"[Floe] Run failed: nightly (run {run_id})"),
        ("ops@example.com", f"[Floe] Run started: nightly (run {run_id})"),
        ("task@example.com", f"[Floe] Task a started: nightly (run {run_id})"),  # the first attempt only
    ]
    (alert,) = http.received("/alerts")  # the last failed attempt only
    assert (
        alert.headers["x-floe-signature"]
        == "sha256=" + hmac.new(b"hmac-key", alert.body, hashlib.sha256).hexdigest()
    )
    payload = json.loads(alert.body)
    assert payload["event_type"] == "jobs.on_failure" and payload["task"]["attempt_number"] == 1
    assert payload["job"] == {"job_id": job_id, "name": "nightly"} and payload["run"]["run_id"] == run_id
    history = floe.notifier.history(run_id)
    assert {(h["event"], h["destination"], h["status"]) for h in history} == {
        ("on_start", "email:ops@example.com", "sent"),
        ("on_start", "email:task@example.com", "sent"),
        ("on_failure", dest, "sent"),
        ("on_failure", "email:ops@example.com", "sent"),
    }


def test_hooks_that_fire_twice_on_two_hosts_send_once(
    floe: Floe, smtp: SmtpSink, tmp_path: Path, sqlite_storage: Storage, clock: FakeClock
) -> None:
    job_id = job(floe, email_notifications={"on_success": ["ops@example.com"]})
    run_id = run(floe, job_id)
    start(floe, run_id)
    end(floe, run_id, Result.SUCCESS)
    other = make_floe(tmp_path, sqlite_storage, clock, "h2", smtp_host="127.0.0.1", smtp_port=smtp.port)
    finished = floe.repo.get_run_record(run_id)
    for host in (floe, other, floe):
        host.notifier.on_run_finished(finished)
    assert floe.notifier.flush(10) and other.notifier.flush(10)
    other.notifier.close()
    assert [m.subject for m in smtp.received()] == [f"[Floe] Run succeeded: nightly (run {run_id})"]


def test_every_run_of_a_job_notifies(floe: Floe, smtp: SmtpSink) -> None:
    job_id = job(floe, max_concurrent_runs=5, email_notifications={"on_start": ["ops@example.com"]})
    runs = [run(floe, job_id) for _ in range(3)]
    assert floe.notifier.flush(10)
    assert sorted(m.subject for m in smtp.received()) == sorted(
        f"[Floe] Run started: nightly (run {r})" for r in runs
    )


def test_a_destination_that_is_down_is_retried_recorded_and_never_fails_the_run(
    tmp_path: Path, sqlite_storage: Storage, clock: FakeClock
) -> None:
    floe = make_floe(tmp_path, sqlite_storage, clock, "h1")  # and no SMTP server
    down = hook(floe, f"http://127.0.0.1:{free_port()}/hook")
    job_id = job(
        floe,
        email_notifications={"on_success": ["ops@example.com"]},
        webhook_notifications={"on_success": [{"id": down}, {"id": "0d3f0c4e-0000-4000-8000-00000000dead"}]},
    )
    run_id = run(floe, job_id)
    start(floe, run_id)
    end(floe, run_id, Result.SUCCESS)
    assert floe.notifier.flush(20)
    floe.notifier.close()

    assert floe.repo.get_run_record(run_id).result is Result.SUCCESS
    by_target = {h["destination"]: h for h in floe.notifier.history(run_id)}
    assert by_target[down]["status"] == "failed" and by_target[down]["attempts"] == 4
    assert "could not reach http://127.0.0.1:" in by_target[down]["error"]
    missing = by_target["0d3f0c4e-0000-4000-8000-00000000dead"]
    assert missing["attempts"] == 1 and "does not exist" in missing["error"]
    assert by_target["email:ops@example.com"]["status"] == "skipped"
    assert by_target["email:ops@example.com"]["error"] == "no SMTP server is configured (FLOE_SMTP_HOST)"


def test_a_long_run_gets_one_duration_warning_per_rule(floe: Floe, http: HttpSink, clock: FakeClock) -> None:
    dest = hook(floe, f"{http.url}/long")
    rule = {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 60}]}
    job_id = job(
        floe, health=rule, webhook_notifications={"on_duration_warning_threshold_exceeded": [{"id": dest}]}
    )
    run_id = run(floe, job_id)
    start(floe, run_id)

    floe.notifier.tick(to_millis(clock.advance(59)))
    assert floe.notifier.flush(10) and http.received("/long") == []
    for _ in range(3):  # the timer, then the reconcile pass, again and again
        now = clock.advance(2)
        floe.notifier.tick(to_millis(now))
        floe.tick(now + timedelta(seconds=31))
        assert floe.notifier.flush(10)
    (warning,) = http.received("/long")
    body = json.loads(warning.body)
    assert body["event_type"] == "jobs.on_duration_warning_threshold_exceeded"
    assert "threshold of 60 s" in body["detail"]
    assert floe.repo.get_run_record(run_id).life_cycle is LifeCycle.RUNNING


def test_a_cancelled_run_with_no_alert_for_canceled_runs_sends_no_failure(floe: Floe, smtp: SmtpSink) -> None:
    emails = {"on_failure": ["ops@example.com"]}
    muted = job(floe, email_notifications=emails, notification_settings={"no_alert_for_canceled_runs": True})
    loud = job(floe, email_notifications=emails)
    for job_id in (muted, loud):
        run_id = run(floe, job_id)
        start(floe, run_id)
        floe.cancel_run(run_id)
        end(floe, run_id, Result.CANCELED)
        assert floe.repo.get_run_record(run_id).result is Result.CANCELED
    assert floe.notifier.flush(10)
    assert [m.subject.split(":")[0] for m in smtp.received()] == ["[Floe] Run was canceled"]
