"""Tasks: every task type as its own model, the compute a task runs on, and its libraries.

Per-field rules live here (types, required fields, ranges). Rules that look at several tasks at once
(unique keys, dependencies, cycles, cluster references) live in `core.model.validation`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from core.engine.states import RunIf
from core.model.base import KEY_PATTERN, MAX_ID, Model, ParamStr
from core.model.notifications import EmailNotifications, Health, NotificationSettings, WebhookNotifications


def _check_key(value: str) -> str:
    if not KEY_PATTERN.fullmatch(value):
        raise ValueError("must be 1 to 100 characters among letters, digits, '_', '-' and '.'")
    return value


# task_key, job_cluster_key: Databricks' `^[\w\-.]{1,100}$`.
Key = Annotated[str, AfterValidator(_check_key)]
NonEmpty = Annotated[str, Field(min_length=1)]
ParamMap = dict[str, ParamStr]
ParamList = list[ParamStr]


class Source(StrEnum):
    WORKSPACE = "WORKSPACE"
    GIT = "GIT"


# ------------------------------------------------------------------------------------------ task types


class NotebookTask(Model):
    notebook_path: NonEmpty
    base_parameters: ParamMap | None = None
    source: Source | None = None
    warehouse_id: str | None = None


class SparkPythonTask(Model):
    python_file: NonEmpty
    parameters: ParamList | None = None
    source: Source | None = None


class PythonWheelTask(Model):
    package_name: NonEmpty
    entry_point: NonEmpty
    parameters: ParamList | None = None
    named_parameters: ParamMap | None = None


class SparkJarTask(Model):
    main_class_name: str | None = None
    parameters: ParamList | None = None
    jar_uri: str | None = None  # deprecated
    run_as_repl: bool | None = None  # deprecated


class SparkSubmitTask(Model):
    parameters: ParamList | None = None


class SqlQuery(Model):
    query_id: NonEmpty


class SqlFile(Model):
    path: NonEmpty
    source: Source | None = None


class SqlAlert(Model):
    alert_id: NonEmpty


class SqlDashboard(Model):
    dashboard_id: NonEmpty


class SqlTask(Model):
    warehouse_id: NonEmpty
    query: SqlQuery | None = None
    file: SqlFile | None = None
    alert: SqlAlert | None = None
    dashboard: SqlDashboard | None = None
    parameters: ParamMap | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SqlTask:
        kinds = [k for k in ("query", "file", "alert", "dashboard") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("must have exactly one of query, file, alert, dashboard")
        return self


class ConditionOp(StrEnum):
    EQUAL_TO = "EQUAL_TO"
    NOT_EQUAL = "NOT_EQUAL"
    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"


class ConditionTask(Model):
    op: ConditionOp
    left: ParamStr
    right: ParamStr


class PipelineParams(Model):
    full_refresh: bool | None = None


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would read it as 0 or 1
        raise ValueError("must be a job id (an integer from 1 to 2**63-1), not a boolean")
    return value


def _id_range(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise ValueError("must be a job id (an integer from 1 to 2**63-1)")
    return value


# A job id as run-now takes it: a JSON number or a numeric string, 1 <= id < 2**63.
JobId = Annotated[int, BeforeValidator(_not_bool), AfterValidator(_id_range)]


class RunJobTask(Model):
    job_id: JobId
    job_parameters: ParamMap | None = None
    notebook_params: ParamMap | None = None
    python_params: ParamList | None = None
    python_named_params: ParamMap | None = None
    jar_params: ParamList | None = None
    spark_submit_params: ParamList | None = None
    sql_params: ParamMap | None = None
    dbt_commands: list[str] | None = None
    pipeline_params: PipelineParams | None = None


class PipelineTask(Model):
    pipeline_id: NonEmpty
    full_refresh: bool | None = None


class DbtTask(Model):
    commands: list[str] = Field(min_length=1, max_length=10)
    project_directory: str | None = None
    profiles_directory: str | None = None
    warehouse_id: str | None = None
    catalog: str | None = None
    source: Source | None = None
    # `schema` is kept as an extra field: the name would shadow a BaseModel attribute.

    @field_validator("commands")
    @classmethod
    def _dbt_commands(cls, commands: list[str]) -> list[str]:
        for command in commands:
            if not command.strip().startswith("dbt"):
                raise ValueError(f"must hold commands that start with 'dbt' (not {command[:40]!r})")
        return commands


# -------------------------------------------------------------------------------------------- compute


class Autoscale(Model):
    min_workers: int | None = Field(None, ge=0)
    max_workers: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Autoscale:
        if (
            self.min_workers is not None
            and self.max_workers is not None
            and self.min_workers > self.max_workers
        ):
            raise ValueError("must have min_workers <= max_workers")
        return self


class ClusterSpec(Model):
    """A cluster to create (`new_cluster`). Loose on purpose: provider-specific fields pass through."""

    spark_version: str | None = None
    node_type_id: str | None = None
    driver_node_type_id: str | None = None
    num_workers: int | None = Field(None, ge=0)
    autoscale: Autoscale | None = None
    spark_conf: ParamMap | None = None
    spark_env_vars: ParamMap | None = None
    custom_tags: ParamMap | None = None
    cluster_name: str | None = None
    policy_id: str | None = None
    instance_pool_id: str | None = None
    driver_instance_pool_id: str | None = None
    data_security_mode: str | None = None
    single_user_name: str | None = None
    runtime_engine: str | None = None
    init_scripts: list[dict[str, Any]] | None = None
    ssh_public_keys: list[str] | None = None
    enable_elastic_disk: bool | None = None
    apply_policy_default_values: bool | None = None


class JobCluster(Model):
    job_cluster_key: Key
    new_cluster: ClusterSpec


class PypiLibrary(Model):
    package: NonEmpty
    repo: str | None = None


class MavenLibrary(Model):
    coordinates: NonEmpty
    repo: str | None = None
    exclusions: list[str] | None = None


class CranLibrary(Model):
    package: NonEmpty
    repo: str | None = None


LIBRARY_KINDS = ("pypi", "maven", "cran", "jar", "whl", "egg", "requirements")


class Library(Model):
    pypi: PypiLibrary | None = None
    maven: MavenLibrary | None = None
    cran: CranLibrary | None = None
    jar: NonEmpty | None = None
    whl: NonEmpty | None = None
    egg: NonEmpty | None = None  # legacy
    requirements: NonEmpty | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Library:
        if sum(getattr(self, k) is not None for k in LIBRARY_KINDS) != 1:
            raise ValueError(f"must have exactly one of {', '.join(LIBRARY_KINDS)}")
        return self


# ---------------------------------------------------------------------------------------------- tasks


class TaskDependency(Model):
    task_key: str
    outcome: Literal["true", "false"] | None = None


# The ways of choosing compute; a task names at most one (none means serverless).
COMPUTE_FIELDS = ("existing_cluster_id", "new_cluster", "job_cluster_key", "environment_key")


class _TaskFields(Model):
    task_key: Key
    description: str | None = None
    depends_on: list[TaskDependency] | None = None
    run_if: RunIf | None = None
    disabled: bool | None = None
    existing_cluster_id: NonEmpty | None = None
    new_cluster: ClusterSpec | None = None
    job_cluster_key: NonEmpty | None = None
    environment_key: NonEmpty | None = None
    libraries: list[Library] | None = None
    max_retries: int | None = Field(None, ge=-1)
    min_retry_interval_millis: int | None = Field(None, ge=0)
    retry_on_timeout: bool | None = None
    timeout_seconds: int | None = Field(None, ge=0)
    email_notifications: EmailNotifications | None = None
    webhook_notifications: WebhookNotifications | None = None
    notification_settings: NotificationSettings | None = None
    health: Health | None = None
    notebook_task: NotebookTask | None = None
    spark_python_task: SparkPythonTask | None = None
    python_wheel_task: PythonWheelTask | None = None
    spark_jar_task: SparkJarTask | None = None
    spark_submit_task: SparkSubmitTask | None = None
    sql_task: SqlTask | None = None
    condition_task: ConditionTask | None = None
    run_job_task: RunJobTask | None = None
    pipeline_task: PipelineTask | None = None
    dbt_task: DbtTask | None = None


class NestedTask(_TaskFields):
    """The task a for_each_task runs per input; it cannot itself be a for_each_task."""

    for_each_task: Any = None

    @field_validator("for_each_task")
    @classmethod
    def _not_nested(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError("is not allowed here: a for_each_task cannot run another for_each_task")
        return value


def _inputs_to_str(value: Any) -> Any:
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def _inputs_text(value: str) -> str:
    if "{{" in value:
        return value  # a reference (whole or inside an array), resolved and checked when the task runs
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, list):
        raise ValueError(
            "must be a JSON array (as an array or as its JSON text) or a {{...}} reference to one"
        )
    return value


class ForEachTask(Model):
    """`inputs` is stored as text: Databricks defines it as a string holding a JSON array or a
    `{{...}}` reference to one. A JSON array given as such (not as text) is accepted too, and stored as
    its compact JSON text, so jobs/get echoes `"[1,2]"` for `[1, 2]`. Text without a reference must parse
    as a JSON array."""

    inputs: Annotated[NonEmpty, BeforeValidator(_inputs_to_str), AfterValidator(_inputs_text)]
    task: NestedTask
    concurrency: int | None = Field(None, ge=1, le=100)


class Task(_TaskFields):
    """One task of a job (or of a runs/submit run)."""

    for_each_task: ForEachTask | None = None
