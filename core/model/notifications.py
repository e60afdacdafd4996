"""Notifications and health rules, shared by jobs and tasks."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from core.model.base import Model

MAX_WEBHOOKS_PER_EVENT = 3


class EmailNotifications(Model):
    """Lists of email addresses per event (the task-level form has the same fields)."""

    on_start: list[str] | None = None
    on_success: list[str] | None = None
    on_failure: list[str] | None = None
    on_duration_warning_threshold_exceeded: list[str] | None = None
    on_streaming_backlog_exceeded: list[str] | None = None
    no_alert_for_skipped_runs: bool | None = None  # deprecated; kept for round-trips


class Webhook(Model):
    id: str  # a notification-destination id


_Webhooks = list[Webhook] | None


class WebhookNotifications(Model):
    on_start: _Webhooks = Field(None, max_length=MAX_WEBHOOKS_PER_EVENT)
    on_success: _Webhooks = Field(None, max_length=MAX_WEBHOOKS_PER_EVENT)
    on_failure: _Webhooks = Field(None, max_length=MAX_WEBHOOKS_PER_EVENT)
    on_duration_warning_threshold_exceeded: _Webhooks = Field(None, max_length=MAX_WEBHOOKS_PER_EVENT)
    on_streaming_backlog_exceeded: _Webhooks = Field(None, max_length=MAX_WEBHOOKS_PER_EVENT)


class NotificationSettings(Model):
    no_alert_for_skipped_runs: bool | None = None
    no_alert_for_canceled_runs: bool | None = None
    alert_on_last_attempt: bool | None = None  # task level only


class HealthMetric(StrEnum):
    RUN_DURATION_SECONDS = "RUN_DURATION_SECONDS"
    STREAMING_BACKLOG_BYTES = "STREAMING_BACKLOG_BYTES"
    STREAMING_BACKLOG_RECORDS = "STREAMING_BACKLOG_RECORDS"
    STREAMING_BACKLOG_SECONDS = "STREAMING_BACKLOG_SECONDS"
    STREAMING_BACKLOG_FILES = "STREAMING_BACKLOG_FILES"


class HealthOperator(StrEnum):
    GREATER_THAN = "GREATER_THAN"


class HealthRule(Model):
    metric: HealthMetric
    op: HealthOperator
    value: int = Field(ge=0)


class Health(Model):
    rules: list[HealthRule] | None = None
