"""The `jobs/runs/*` endpoints (submit, get, list, get-output, export, repair, cancel, cancel-all, delete)."""

from __future__ import annotations

from typing import Any

from core.api.call import Call, Endpoint
from core.api.render import page_run, parse_page_token, render_output, render_run, render_run_list
from core.engine.states import RunType
from core.model import parse_views_to_export, validate_repair, validate_submit
from core.model.base import invalid

RUNS_LIST_MAX_LIMIT = 25
DEFAULT_LIMIT = 20
_RUN_TYPES = frozenset(t.value for t in RunType)


def submit(call: Call) -> dict[str, Any]:
    run = call.floe.submit(validate_submit(dict(call.params)), creator=call.user)
    return {"run_id": run.run_id}


def get(call: Call) -> dict[str, Any]:
    run_id = call.get_id("run_id")
    include_history = call.get_bool("include_history")
    include_resolved_values = call.get_bool("include_resolved_values")
    offset = parse_page_token(call.page_token()) if call.pages_arrays else None
    out = render_run(
        call.floe.get_run(run_id),
        base_url=call.base_url,
        now_ms=call.now_ms,
        include_history=include_history,
        include_resolved_values=include_resolved_values,
    )
    return out if offset is None else page_run(out, offset)


def list_runs(call: Call) -> dict[str, Any]:
    job_id = call.get_optional_id("job_id")
    active_only = call.get_bool("active_only")
    completed_only = call.get_bool("completed_only")
    if active_only and completed_only:
        raise invalid("completed_only", "cannot be true together with active_only")
    run_type = call.params.get("run_type") or None
    if run_type is not None and run_type not in _RUN_TYPES:
        raise invalid("run_type", f"must be one of {', '.join(sorted(_RUN_TYPES))}", run_type)
    # "0 means the maximum", as the SDK documents it.
    limit = (
        call.get_int("limit", min=0, max=RUNS_LIST_MAX_LIMIT, default=DEFAULT_LIMIT) or RUNS_LIST_MAX_LIMIT
    )
    page = call.floe.list_runs(
        job_id=job_id,
        active_only=active_only,
        completed_only=completed_only,
        run_type=run_type,
        start_time_from=call.get_optional_int("start_time_from", min=0),
        start_time_to=call.get_optional_int("start_time_to", min=0),
        limit=limit,
        offset=call.get_int("offset", min=0, default=0),
        page_token=call.page_token(),
    )
    return render_run_list(
        page,
        base_url=call.base_url,
        now_ms=call.now_ms,
        expand_tasks=call.get_bool("expand_tasks"),
        cap=call.pages_arrays,
    )


def get_output(call: Call) -> dict[str, Any]:
    output = call.floe.get_run_output(call.get_id("run_id"))
    return render_output(output, base_url=call.base_url, now_ms=call.now_ms)


def export(call: Call) -> dict[str, Any]:
    run_id = call.get_id("run_id")
    views = call.floe.export_run(run_id, parse_views_to_export(call.params.get("views_to_export")))
    return {"views": [{"content": v.content, "name": v.name, "type": v.type} for v in views]}


def repair(call: Call) -> dict[str, Any]:
    return {"repair_id": call.floe.repair_run(validate_repair(call.params), creator=call.user)}


def cancel(call: Call) -> dict[str, Any]:
    call.floe.cancel_run(call.get_id("run_id"))
    return {}


def cancel_all(call: Call) -> dict[str, Any]:
    job_id = call.get_optional_id("job_id")
    all_queued_runs = call.get_bool("all_queued_runs")
    if job_id is None and not all_queued_runs:
        raise invalid("job_id", "is required unless all_queued_runs is true")
    call.floe.cancel_all_runs(job_id=job_id, all_queued_runs=all_queued_runs)
    return {}


def delete(call: Call) -> dict[str, Any]:
    call.floe.delete_run(call.get_id("run_id"))
    return {}


ROUTES: tuple[tuple[str, str, Endpoint], ...] = (
    ("POST", "jobs/runs/submit", submit),
    ("GET", "jobs/runs/get", get),
    ("GET", "jobs/runs/list", list_runs),
    ("GET", "jobs/runs/get-output", get_output),
    ("GET", "jobs/runs/export", export),
    ("POST", "jobs/runs/repair", repair),
    ("POST", "jobs/runs/cancel", cancel),
    ("POST", "jobs/runs/cancel-all", cancel_all),
    ("POST", "jobs/runs/delete", delete),
)
