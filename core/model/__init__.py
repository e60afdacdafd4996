"""Jobs API 2.2 shapes (pydantic) and the validation of whole job definitions and requests.

The service calls these functions; each raises `core.errors.InvalidParameterValue` with a message that
names the field path, the bad value and the rule, never a pydantic error.
"""

from __future__ import annotations

from core.engine.states import TASK_TYPES
from core.model.jobs import JobSettings, SubmitRun
from core.model.requests import (
    VIEWS_TO_EXPORT,
    RepairRequest,
    RunNowRequest,
    parse_bool,
    parse_id,
    parse_int,
    parse_views_to_export,
    validate_repair,
    validate_run_now,
)
from core.model.tasks import Task
from core.model.update import merge_update
from core.model.validation import validate_job_settings, validate_submit

__all__ = [
    "TASK_TYPES",
    "VIEWS_TO_EXPORT",
    "JobSettings",
    "RepairRequest",
    "RunNowRequest",
    "SubmitRun",
    "Task",
    "merge_update",
    "parse_bool",
    "parse_id",
    "parse_int",
    "parse_views_to_export",
    "validate_job_settings",
    "validate_repair",
    "validate_run_now",
    "validate_submit",
]
