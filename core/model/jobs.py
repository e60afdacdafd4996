"""JobSettings (jobs/create, reset, update) and the runs/submit body, field by field."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from core.model.base import PARAM_NAME_PATTERN, Model, ParamStr
from core.model.notifications import EmailNotifications, Health, NotificationSettings, WebhookNotifications
from core.model.tasks import JobCluster, NonEmpty, Task

MAX_TASKS = 1000
MAX_TAGS = 25
MAX_NAME_BYTES = 4096
MAX_DESCRIPTION_CHARS = 27_700
MAX_IDEMPOTENCY_TOKEN = 64


class PauseStatus(StrEnum):
    PAUSED = "PAUSED"
    UNPAUSED = "UNPAUSED"


@lru_cache(maxsize=512)
def _known_zone(zone_id: str) -> bool:
    try:
        ZoneInfo(zone_id)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


class CronSchedule(Model):
    quartz_cron_expression: NonEmpty
    timezone_id: NonEmpty
    pause_status: PauseStatus | None = None

    @field_validator("quartz_cron_expression")
    @classmethod
    def _cron_shape(cls, expression: str) -> str:
        # Full Quartz validation belongs to the scheduler; this catches the common 5-field (Unix) mistake.
        if len(expression.split()) not in (6, 7):
            raise ValueError(
                "must be a Quartz cron expression of 6 or 7 fields "
                "(seconds minutes hours day-of-month month day-of-week [year])"
            )
        return expression

    @field_validator("timezone_id")
    @classmethod
    def _zone(cls, zone_id: str) -> str:
        if not _known_zone(zone_id):
            raise ValueError("must be a known time zone id such as 'UTC' or 'Europe/Paris'")
        return zone_id


class FileArrival(Model):
    # The timers' floor (60 s, as Databricks; lower in tests) is checked by `core.schedule`.
    url: NonEmpty
    min_time_between_triggers_seconds: int | None = Field(None, ge=0)
    wait_after_last_change_seconds: int | None = Field(None, ge=0)


class PeriodicUnit(StrEnum):
    MINUTES = "MINUTES"
    HOURS = "HOURS"
    DAYS = "DAYS"
    WEEKS = "WEEKS"


class Periodic(Model):
    interval: int = Field(ge=1)
    unit: PeriodicUnit


class TableCondition(StrEnum):
    ANY_UPDATED = "ANY_UPDATED"
    ALL_UPDATED = "ALL_UPDATED"


class TableUpdate(Model):
    # The timers' floor (60 s, as Databricks; lower in tests) is checked by `core.schedule`.
    table_names: list[NonEmpty] = Field(min_length=1)
    condition: TableCondition | None = None
    min_time_between_triggers_seconds: int | None = Field(None, ge=0)
    wait_after_last_change_seconds: int | None = Field(None, ge=0)


TRIGGER_KINDS = (
    "file_arrival",
    "periodic",
    "table_update",
    "table",
    "job_completion",
    "model",
    "sql_condition",
)


class Trigger(Model):
    pause_status: PauseStatus | None = None
    file_arrival: FileArrival | None = None
    periodic: Periodic | None = None
    table_update: TableUpdate | None = None
    table: TableUpdate | None = None  # older name of table_update
    job_completion: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    sql_condition: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        if sum(getattr(self, k) is not None for k in TRIGGER_KINDS) != 1:
            raise ValueError(
                f"must have exactly one of {', '.join(k for k in TRIGGER_KINDS if k != 'table')}"
            )
        return self


class TaskRetryMode(StrEnum):
    NEVER = "NEVER"
    ON_FAILURE = "ON_FAILURE"


class Continuous(Model):
    pause_status: PauseStatus | None = None
    task_retry_mode: TaskRetryMode | None = None


class Queue(Model):
    enabled: bool


class JobParameterDefinition(Model):
    name: str
    default: ParamStr

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not PARAM_NAME_PATTERN.fullmatch(name):
            raise ValueError("must be made of letters, digits, '_', '-' and '.'")
        return name


GIT_PROVIDERS = (
    "gitHub",
    "gitHubEnterprise",
    "bitbucketCloud",
    "bitbucketServer",
    "azureDevOpsServices",
    "gitLab",
    "gitLabEnterpriseEdition",
    "awsCodeCommit",
)
_GIT_PROVIDERS_LOWER = frozenset(p.lower() for p in GIT_PROVIDERS)


class GitSource(Model):
    git_url: NonEmpty
    git_provider: str
    git_branch: str | None = None
    git_tag: str | None = None
    git_commit: str | None = None

    @field_validator("git_provider")
    @classmethod
    def _provider(cls, provider: str) -> str:
        if provider.lower() not in _GIT_PROVIDERS_LOWER:
            raise ValueError(f"must be one of {', '.join(GIT_PROVIDERS)} (any case)")
        return provider

    @model_validator(mode="after")
    def _one_ref(self) -> GitSource:
        if sum(r is not None for r in (self.git_branch, self.git_tag, self.git_commit)) > 1:
            raise ValueError("must set at most one of git_branch, git_tag, git_commit")
        return self


class EnvironmentSpec(Model):
    client: str | None = None
    environment_version: str | None = None
    dependencies: list[str] | None = None
    java_dependencies: list[str] | None = None


class Environment(Model):
    environment_key: NonEmpty
    spec: EnvironmentSpec | None = None


class RunAs(Model):
    user_name: str | None = None
    service_principal_name: str | None = None
    group_name: str | None = None

    @model_validator(mode="after")
    def _one(self) -> RunAs:
        if sum(v is not None for v in (self.user_name, self.service_principal_name, self.group_name)) != 1:
            raise ValueError("must have exactly one of user_name, service_principal_name, group_name")
        return self


def _check_name(name: str) -> str:
    size = len(name.encode())
    if size > MAX_NAME_BYTES:
        raise ValueError(f"must be at most {MAX_NAME_BYTES} bytes of UTF-8 (it is {size})")
    return name


class _RunFields(Model):
    """Fields a saved job and a one-time (submit) run share."""

    tasks: list[Task] | None = Field(None, max_length=MAX_TASKS)
    job_clusters: list[JobCluster] | None = None
    timeout_seconds: int | None = Field(None, ge=0)
    health: Health | None = None
    email_notifications: EmailNotifications | None = None
    webhook_notifications: WebhookNotifications | None = None
    notification_settings: NotificationSettings | None = None
    queue: Queue | None = None
    run_as: RunAs | None = None
    git_source: GitSource | None = None
    environments: list[Environment] | None = None


class JobSettings(_RunFields):
    name: str | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_CHARS)
    schedule: CronSchedule | None = None
    trigger: Trigger | None = None
    continuous: Continuous | None = None
    max_concurrent_runs: int | None = Field(None, ge=0, le=1000)
    parameters: list[JobParameterDefinition] | None = None
    tags: dict[str, ParamStr] | None = None
    format: Any = None  # always MULTI_TASK on output, whatever was written

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _check_name(name)

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str] | None) -> dict[str, str] | None:
        if tags is not None and len(tags) > MAX_TAGS:
            raise ValueError(f"must have at most {MAX_TAGS} tags (it has {len(tags)})")
        return tags


class SubmitRun(_RunFields):
    """The runs/submit body."""

    tasks: list[Task] = Field(min_length=1, max_length=MAX_TASKS)  # type: ignore[assignment]
    run_name: str | None = None
    idempotency_token: str | None = Field(None, max_length=MAX_IDEMPOTENCY_TOKEN)

    @field_validator("run_name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _check_name(name)
