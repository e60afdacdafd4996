"""What a notification says, in each format Floe sends: pure functions of a `Notice`.

`describe` turns a notice into a `Message` (a title, the facts, the state message); the formats are built
from it:

- email (`email_message`): a plain-text `EmailMessage`. Subject `[Floe] Run failed: <job name> (run <id>)`
  (`Task <key> failed: ...` for a task), body one `Name: value` line per fact.
- generic webhook (`generic_payload`): the JSON Databricks sends to an HTTP webhook destination,
  `{"event_type": "jobs.on_failure", "workspace_id": ..., "run": {"run_id": ...}, "job": {"job_id": ...,
  "name": ...}}`, with Floe's additions: `task` (`task_key`, `run_id`, `attempt_number`) for task-level
  events, the run's `run_name`, `life_cycle_state`, `result_state`, `state_message`, `start_time`,
  `end_time` (epoch ms) and `run_page_url`, and `title` / `detail` (human-readable text).
- Slack (`slack_payload`): `{"text": ...}`, the title in bold and the facts below, for an incoming webhook.
- Microsoft Teams (`teams_payload`): a message with one Adaptive Card (title, a FactSet, the state message,
  an "Open run" action when a run page URL is known): the format both Teams incoming webhooks and
  Workflows ("post to a channel when a webhook request is received") accept.

As on Databricks, the Slack and Teams text is for people and may change; integrations should use generic
webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from core.engine.states import LifeCycle, Result
from core.notify.rules import Notice, NotifyEvent

__all__ = ["Message", "describe", "email_message", "generic_payload", "slack_payload", "teams_payload"]

WORKSPACE_ID = "floe"

_VERB = {
    NotifyEvent.ON_START: "started",
    NotifyEvent.ON_SUCCESS: "succeeded",
    NotifyEvent.ON_FAILURE: "failed",
    NotifyEvent.ON_DURATION_WARNING: "is running long",
}


@dataclass(frozen=True, slots=True)
class Message:
    notice: Notice
    title: str
    facts: tuple[tuple[str, str], ...]
    run_page_url: str | None

    @property
    def text(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.facts)


def describe(notice: Notice, *, public_url: str = "") -> Message:
    """The title and facts of a notice. `public_url` (FLOE_PUBLIC_URL) makes the run page link; without
    it none is given (a host cannot know the address its users reach it by)."""
    run, task = notice.run, notice.task
    subject = "Run" if task is None else f"Task {task.task_key}"
    verb = _VERB[notice.event]
    if notice.event is NotifyEvent.ON_FAILURE:
        verb = _failure_verb(notice)
    title = f"[Floe] {subject} {verb}: {notice.job_name} (run {run.run_id})"
    url = _run_page_url(public_url, run.job_id, run.run_id) if public_url else None
    facts: list[tuple[str, str]] = [
        ("Event", notice.event.value),
        ("Job", f"{notice.job_name} (job {run.job_id})"),
        ("Run", f"{run.run_id} ({run.trigger.value})"),
    ]
    record = run if task is None else task
    if task is not None:
        facts.append(("Task", f"{task.task_key}, task run {task.run_id}, attempt {task.attempt_number}"))
    state = record.life_cycle.value + (f", result {record.result.value}" if record.result else "")
    facts.append(("State", state))
    message = _first_line(record.state_message)
    if message:
        facts.append(("Message", message))
    if notice.detail:
        facts.append(("Detail", notice.detail))
    if record.start_time:
        facts.append(("Started", _iso(record.start_time)))
    if record.end_time:
        facts.append(("Ended", _iso(record.end_time)))
        if record.start_time:
            facts.append(("Duration", f"{(record.end_time - record.start_time) / 1000:.1f} s"))
    if url:
        facts.append(("Run page", url))
    return Message(notice, title, tuple(facts), url)


def email_message(message: Message, *, sender: str, to: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail["X-Floe-Run-Id"] = str(message.notice.run.run_id)
    mail["X-Floe-Event"] = message.notice.event.value
    mail.set_content(message.text + "\n")
    return mail


def generic_payload(message: Message) -> dict[str, Any]:
    notice = message.notice
    run = notice.run
    body: dict[str, Any] = {
        "event_type": f"jobs.{notice.event.value}",
        "workspace_id": WORKSPACE_ID,
        "run": {
            "run_id": run.run_id,
            "run_name": run.run_name,
            "life_cycle_state": run.life_cycle.value,
            "result_state": run.result.value if run.result else None,
            "state_message": run.state_message,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "run_page_url": message.run_page_url,
        },
        "job": {"job_id": run.job_id, "name": notice.job_name},
        "title": message.title,
        "detail": notice.detail or None,
    }
    task = notice.task
    if task is not None:
        body["task"] = {
            "task_key": task.task_key,
            "run_id": task.run_id,
            "attempt_number": task.attempt_number,
            "life_cycle_state": task.life_cycle.value,
            "result_state": task.result.value if task.result else None,
            "state_message": task.state_message,
            "start_time": task.start_time,
            "end_time": task.end_time,
        }
    return body


def slack_payload(message: Message) -> dict[str, Any]:
    lines = [f"*{_slack_escape(message.title)}*"]
    lines += [f"{name}: {_slack_escape(value)}" for name, value in message.facts if name != "Run page"]
    if message.run_page_url:
        lines.append(f"<{message.run_page_url}|Open the run>")
    return {"text": "\n".join(lines)}


def teams_payload(message: Message) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True},
            {
                "type": "FactSet",
                "facts": [
                    {"title": name, "value": value} for name, value in message.facts if name != "Run page"
                ],
            },
        ],
    }
    if message.run_page_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open run", "url": message.run_page_url}]
    return {
        "type": "message",
        "summary": message.title,
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _failure_verb(notice: Notice) -> str:
    record = notice.run if notice.task is None else notice.task
    if record.life_cycle is LifeCycle.SKIPPED:
        return "was skipped"
    if record.life_cycle is LifeCycle.INTERNAL_ERROR:
        return "hit an internal error"
    return {Result.TIMEDOUT: "timed out", Result.CANCELED: "was canceled"}.get(record.result, "failed")


def _run_page_url(base: str, job_id: int, run_id: int) -> str:
    """The link runs/get gives as `run_page_url` (`core.api.render_task`)."""
    return f"{base if base.endswith('/') else base + '/'}#job/{job_id}/run/{run_id}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _first_line(text: str, limit: int = 500) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
