"""What notifications say: email, generic webhook JSON, Slack and Teams payloads, built from one notice."""

from __future__ import annotations

import json

from core.engine.records import Run, TaskRun
from core.engine.states import LifeCycle, Result, TriggerType
from core.notify import (
    Notice,
    NotifyEvent,
    Recipients,
    describe,
    email_message,
    generic_payload,
    slack_payload,
    teams_payload,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RUN = Run(
    run_id=1234,
    job_id=77,
    run_name="nightly",
    trigger=TriggerType.PERIODIC,
    life_cycle=LifeCycle.TERMINATED,
    result=Result.FAILED,
    state_message="Task 'extract' failed: ValueError: boom\nTraceback ...",
    start_time=T0,
    end_time=T0 + 12_500,
)
TASK = TaskRun(
    task_key="extract",
    run_id=5678,
    parent_run_id=1234,
    attempt_number=2,
    life_cycle=LifeCycle.TERMINATED,
    result=Result.TIMEDOUT,
    state_message="Timed out after 60 s.",
    start_time=T0 + 1000,
    end_time=T0 + 61_000,
)
TO = Recipients(emails=("ops@example.com",))


def test_a_run_failure_email_names_the_job_the_run_and_the_result() -> None:
    message = describe(
        Notice(NotifyEvent.ON_FAILURE, RUN, None, "nightly-etl", TO), public_url="https://floe.example/"
    )
    mail = email_message(message, sender="floe@example.com", to=["ops@example.com", "lead@example.com"])

    assert mail["Subject"] == "[Floe] Run failed: nightly-etl (run 1234)"
    assert mail["From"] == "floe@example.com" and mail["To"] == "ops@example.com, lead@example.com"
    assert mail["X-Floe-Run-Id"] == "1234" and mail["X-Floe-Event"] == "on_failure"
    body = mail.get_content()
    for line in (
        "Event: on_failure",
        "Job: nightly-etl (job 77)",
        "Run: 1234 (PERIODIC)",
        "State: TERMINATED, result FAILED",
        "Message: Task 'extract' failed: ValueError: boom",  # the first line only
        "Started: 2026-01-01 00:00:00 UTC",
        "Duration: 12.5 s",
        "Run page: https://floe.example/#job/77/run/1234",
    ):
        assert line in body.splitlines()
    assert "Traceback" not in body


def test_task_titles_say_what_happened() -> None:
    def title(event: NotifyEvent, run: Run = RUN, task: TaskRun | None = TASK) -> str:
        return describe(Notice(event, run, task, "etl", TO)).title

    assert title(NotifyEvent.ON_FAILURE) == "[Floe] Task extract timed out: etl (run 1234)"
    assert title(NotifyEvent.ON_START) == "[Floe] Task extract started: etl (run 1234)"
    assert title(NotifyEvent.ON_SUCCESS, task=None) == "[Floe] Run succeeded: etl (run 1234)"
    assert title(NotifyEvent.ON_DURATION_WARNING, task=None) == "[Floe] Run is running long: etl (run 1234)"
    skipped = Run(
        run_id=1, job_id=2, life_cycle=LifeCycle.SKIPPED, result=Result.MAXIMUM_CONCURRENT_RUNS_REACHED
    )
    assert title(NotifyEvent.ON_FAILURE, skipped, None) == "[Floe] Run was skipped: etl (run 1)"
    cancelled = Run(run_id=1, job_id=2, life_cycle=LifeCycle.TERMINATED, result=Result.CANCELED)
    assert title(NotifyEvent.ON_FAILURE, cancelled, None) == "[Floe] Run was canceled: etl (run 1)"


def test_the_generic_payload_has_the_databricks_fields_and_the_task() -> None:
    notice = Notice(NotifyEvent.ON_FAILURE, RUN, TASK, "nightly-etl", TO, detail="why")
    body = generic_payload(describe(notice))

    assert body["event_type"] == "jobs.on_failure"
    assert body["workspace_id"] == "floe"
    assert body["job"] == {"job_id": 77, "name": "nightly-etl"}
    assert body["run"]["run_id"] == 1234 and body["run"]["result_state"] == "FAILED"
    assert body["run"]["run_page_url"] is None  # no FLOE_PUBLIC_URL
    assert body["task"] == {
        "task_key": "extract",
        "run_id": 5678,
        "attempt_number": 2,
        "life_cycle_state": "TERMINATED",
        "result_state": "TIMEDOUT",
        "state_message": "Timed out after 60 s.",
        "start_time": T0 + 1000,
        "end_time": T0 + 61_000,
    }
    assert body["detail"] == "why"
    json.dumps(body)  # plain JSON


def test_slack_gets_text_and_teams_gets_an_adaptive_card() -> None:
    odd = Run(run_id=9, job_id=2, life_cycle=LifeCycle.RUNNING, start_time=T0)
    message = describe(Notice(NotifyEvent.ON_START, odd, None, "a <b> & c", TO), public_url="http://h:8080")

    text = slack_payload(message)["text"]
    assert text.splitlines()[0] == "*[Floe] Run started: a &lt;b&gt; &amp; c (run 9)*"
    assert text.splitlines()[-1] == "<http://h:8080/#job/2/run/9|Open the run>"

    teams = teams_payload(message)
    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (
        card["type"] == "AdaptiveCard" and card["body"][0]["text"] == "[Floe] Run started: a <b> & c (run 9)"
    )
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Job"] == "a <b> & c (job 2)" and facts["State"] == "RUNNING"
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open run", "url": "http://h:8080/#job/2/run/9"}
    ]
