"""The `jobs/*` endpoints (create, get, list, update, reset, delete, run-now).

Each takes a `Call` and returns the reply body; errors are raised as `FloeError`s and shaped by the app.
"""

from __future__ import annotations

from typing import Any

from core.api.call import Call, Endpoint
from core.api.render import parse_page_token, render_job, render_job_list
from core.errors import InvalidParameterValue
from core.model import validate_job_settings, validate_run_now
from core.model.base import check_string_list, invalid, require_object

JOBS_LIST_MAX_LIMIT = 100
DEFAULT_LIMIT = 20


def create(call: Call) -> dict[str, Any]:
    settings = validate_job_settings(
        dict(call.params), queue_default=call.queue_default, trigger_min_seconds=call.floe.trigger_min_seconds
    )
    return {"job_id": call.floe.create_job(settings, creator=call.user)}


def get(call: Call) -> dict[str, Any]:
    job_id = call.get_id("job_id")
    offset = parse_page_token(call.page_token()) if call.pages_arrays else None
    job = render_job(call.floe.get_job(job_id), page_offset=offset)
    if call.get_bool("include_trigger_state"):
        state = call.floe.trigger_state(job_id)
        if state:  # a job without schedule or trigger has none
            job["trigger_state"] = state
    return job


def list_jobs(call: Call) -> dict[str, Any]:
    limit = call.get_int("limit", min=0, max=JOBS_LIST_MAX_LIMIT, default=DEFAULT_LIMIT) or DEFAULT_LIMIT
    offset = call.get_int("offset", min=0, default=0)
    expand_tasks = call.get_bool("expand_tasks")
    name = call.params.get("name")
    if name is not None and not isinstance(name, str):
        raise invalid("name", "must be a string", name)
    page = call.floe.list_jobs(name=name or None, limit=limit, offset=offset, page_token=call.page_token())
    return render_job_list(page, expand_tasks=expand_tasks, cap=call.pages_arrays)


def update(call: Call) -> dict[str, Any]:
    job_id = call.get_id("job_id")
    new_settings = call.params.get("new_settings")
    if new_settings is not None:
        require_object(new_settings, "new_settings")
    fields_to_remove = call.params.get("fields_to_remove")
    if fields_to_remove is not None:
        check_string_list(fields_to_remove, "fields_to_remove")
    call.floe.update_job(job_id, new_settings or {}, list(fields_to_remove or ()))
    return {}


def reset(call: Call) -> dict[str, Any]:
    job_id = call.get_id("job_id")
    raw = call.params.get("new_settings")
    if raw is None:
        raise InvalidParameterValue("new_settings is required.")
    settings = validate_job_settings(
        raw,
        field="new_settings",
        queue_default=call.queue_default,
        trigger_min_seconds=call.floe.trigger_min_seconds,
    )
    call.floe.reset_job(job_id, settings)
    return {}


def delete(call: Call) -> dict[str, Any]:
    call.floe.delete_job(call.get_id("job_id"))
    return {}


def run_now(call: Call) -> dict[str, Any]:
    run = call.floe.run_now(validate_run_now(call.params), creator=call.user)
    return {"run_id": run.run_id, "number_in_job": run.run_id}


ROUTES: tuple[tuple[str, str, Endpoint], ...] = (
    ("POST", "jobs/create", create),
    ("GET", "jobs/get", get),
    ("GET", "jobs/list", list_jobs),
    ("POST", "jobs/update", update),
    ("POST", "jobs/reset", reset),
    ("POST", "jobs/delete", delete),
    ("POST", "jobs/run-now", run_now),
)
