"""Notifications end to end: a real `floe serve` host (workers, tick, HTTP API) sending to a real SMTP server
(aiosmtpd) and a real HTTP receiver, with jobs and destinations made through the Databricks SDK."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from databricks.sdk.service import jobs
from databricks.sdk.service import settings as sdk

from core.settings import Settings
from tests.fixtures.receivers import HttpSink, SmtpSink, free_port, wait_for
from tests.fixtures.server import TOKEN, FloeServer, start_server

pytestmark = pytest.mark.timeout(120)

WAIT = timedelta(seconds=60)
SECRET = "hmac-secret"


@dataclass
class Notified:
    server: FloeServer
    smtp: SmtpSink
    http: HttpSink

    def history(self, run_id: int) -> list[dict[str, object]]:
        reply = httpx.get(
            f"{self.server.url}/api/floe/runs/notifications",
            params={"run_id": run_id},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        return reply.json()["notifications"]

    def flush(self) -> None:
        assert self.server.host.floe.notifier.flush(30), "deliveries did not finish"


@pytest.fixture
def notified(tmp_path: Path, databricks_env: None) -> Iterator[Notified]:
    """A Floe host whose emails go to a local SMTP server; webhook retries back off in milliseconds."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    with SmtpSink() as smtp, HttpSink() as http:
        settings = Settings(
            home=tmp_path / "home",
            admin_token=TOKEN,
            workspace=workspace,
            port=free_port(),
            workers=4,
            tick_seconds=0.2,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_from="floe@example.com",
            public_url="http://floe.example/",
        )
        server, thread, runtime = start_server(settings)
        runtime.floe.notifier.backoff = (0.05, 0.1, 0.2)
        floe = FloeServer(f"http://127.0.0.1:{settings.port}", TOKEN, runtime, workspace, settings.home)
        floe.script("fail.py", "raise SystemExit('boom')\n")
        floe.script("ok.py", "print('fine')\n")
        floe.script("slow.py", "import sys, time\ntime.sleep(float(sys.argv[1]))\n")
        try:
            yield Notified(floe, smtp, http)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            runtime.stop()


def python_task(key: str, script: str, *args: str, **fields: object) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        spark_python_task=jobs.SparkPythonTask(python_file=script, parameters=list(args)),
        **fields,
    )


def test_a_failing_task_with_retries_alerts_start_once_and_failure_once(notified: Notified) -> None:
    w = notified.server.client()
    hook = w.notification_destinations.create(
        display_name="alerts",
        config=sdk.Config(
            generic_webhook=sdk.GenericWebhookConfig(url=f"{notified.http.url}/alerts", password=SECRET)
        ),
    )
    job = w.jobs.create(
        name="flaky-etl",
        tasks=[
            python_task(
                "extract",
                "fail.py",
                max_retries=2,
                min_retry_interval_millis=0,
                email_notifications=jobs.TaskEmailNotifications(
                    on_start=["oncall@example.com"], on_failure=["oncall@example.com"]
                ),
                webhook_notifications=jobs.WebhookNotifications(on_failure=[jobs.Webhook(id=hook.id)]),
                notification_settings=jobs.TaskNotificationSettings(alert_on_last_attempt=True),
            )
        ],
        email_notifications=jobs.JobEmailNotifications(on_failure=["lead@example.com"]),
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert sorted(t.attempt_number for t in run.tasks) == [0, 1, 2]  # every attempt failed

    mails = wait_for(lambda: len(notified.smtp.received()) >= 3 and notified.smtp.received(), what="3 emails")
    wait_for(lambda: notified.http.received("/alerts"), what="the webhook")
    notified.flush()
    subjects = sorted((m.recipients[0], m.subject) for m in notified.smtp.received())
    assert subjects == [
        ("lead@example.com", f"[Floe] Run failed: flaky-etl (run {run.run_id})"),
        ("oncall@example.com", f"[Floe] Task extract failed: flaky-etl (run {run.run_id})"),
        ("oncall@example.com", f"[Floe] Task extract started: flaky-etl (run {run.run_id})"),
    ]
    failure = next(m for m in mails if m.recipients == ["lead@example.com"])
    assert f"Run: {run.run_id} (ONE_TIME)" in failure.body
    assert "State: TERMINATED, result FAILED" in failure.body
    assert f"Run page: http://floe.example/#job/{job.job_id}/run/{run.run_id}" in failure.body
    task_failure = next(m for m in mails if m.subject.startswith("[Floe] Task extract failed"))
    assert "attempt 2" in task_failure.body

    (alert,) = notified.http.received("/alerts")  # the last attempt only
    expected = "sha256=" + hmac.new(SECRET.encode(), alert.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(alert.headers["x-floe-signature"], expected)
    payload = json.loads(alert.body)
    assert payload["event_type"] == "jobs.on_failure"
    assert payload["job"] == {"job_id": job.job_id, "name": "flaky-etl"}
    assert payload["task"]["task_key"] == "extract" and payload["task"]["attempt_number"] == 2
    assert payload["task"]["result_state"] == "FAILED"


def test_a_webhook_that_is_down_never_fails_the_run_and_is_recorded(notified: Notified) -> None:
    w = notified.server.client()
    down = w.notification_destinations.create(
        display_name="down",
        config=sdk.Config(slack=sdk.SlackConfig(url=f"http://127.0.0.1:{free_port()}/services/T/B/SECRET")),
    )
    job = w.jobs.create(
        name="steady",
        tasks=[python_task("only", "ok.py")],
        webhook_notifications=jobs.WebhookNotifications(on_success=[jobs.Webhook(id=down.id)]),
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS

    (record,) = wait_for(lambda: notified.history(run.run_id), what="the delivery record")
    assert record["destination"] == down.id and record["event"] == "on_success"
    assert record["status"] == "failed" and record["attempts"] == 4
    assert "could not reach http://127.0.0.1:" in str(record["error"]) and "SECRET" not in str(
        record["error"]
    )
    assert w.jobs.get_run(run.run_id).state.result_state == jobs.RunResultState.SUCCESS


def test_a_long_run_with_a_health_rule_warns_exactly_once(notified: Notified) -> None:
    w = notified.server.client()
    hook = w.notification_destinations.create(
        display_name="slow runs",
        config=sdk.Config(generic_webhook=sdk.GenericWebhookConfig(url=f"{notified.http.url}/slow")),
    )
    rule = jobs.JobsHealthRules(
        rules=[
            jobs.JobsHealthRule(
                metric=jobs.JobsHealthMetric.RUN_DURATION_SECONDS,
                op=jobs.JobsHealthOperator.GREATER_THAN,
                value=1,
            )
        ]
    )
    job = w.jobs.create(
        name="slow",
        tasks=[python_task("nap", "slow.py", "3")],
        health=rule,
        webhook_notifications=jobs.WebhookNotifications(
            on_duration_warning_threshold_exceeded=[jobs.Webhook(id=hook.id)]
        ),
        email_notifications=jobs.JobEmailNotifications(
            on_duration_warning_threshold_exceeded=["ops@example.com"]
        ),
    )
    waiter = w.jobs.run_now(job.job_id)
    (warning,) = wait_for(lambda: notified.http.received("/slow"), what="the duration warning")
    run = waiter.result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    notified.flush()

    assert len(notified.http.received("/slow")) == 1
    body = json.loads(warning.body)
    assert body["event_type"] == "jobs.on_duration_warning_threshold_exceeded"
    assert body["run"]["run_id"] == run.run_id and "threshold of 1 s" in body["detail"]
    assert [m.subject for m in notified.smtp.received()] == [
        f"[Floe] Run is running long: slow (run {run.run_id})"
    ]


def test_a_cancelled_run_with_no_alert_for_canceled_runs_sends_no_failure(notified: Notified) -> None:
    w = notified.server.client()
    mails = jobs.JobEmailNotifications(on_start=["ops@example.com"], on_failure=["ops@example.com"])
    muted = w.jobs.create(
        name="muted",
        tasks=[python_task("nap", "slow.py", "60")],
        email_notifications=mails,
        notification_settings=jobs.JobNotificationSettings(no_alert_for_canceled_runs=True),
    )
    loud = w.jobs.create(name="loud", tasks=[python_task("nap", "slow.py", "60")], email_notifications=mails)

    def cancel(job_id: int) -> int:
        run_id = w.jobs.run_now(job_id).run_id
        wait_for(lambda: any(f"run {run_id}" in m.subject for m in notified.smtp.received()), what="on_start")
        w.jobs.cancel_run(run_id).result(timeout=WAIT)
        assert w.jobs.get_run(run_id).state.result_state == jobs.RunResultState.CANCELED
        return run_id

    muted_run = cancel(muted.job_id)
    loud_run = cancel(loud.job_id)
    wait_for(
        lambda: any(
            m.subject == f"[Floe] Run was canceled: loud (run {loud_run})" for m in notified.smtp.received()
        ),
        what="the loud job's failure alert",
    )
    notified.flush()
    muted_subjects = [m.subject for m in notified.smtp.received() if f"(run {muted_run})" in m.subject]
    assert muted_subjects == [f"[Floe] Run started: muted (run {muted_run})"]
