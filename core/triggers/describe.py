"""`trigger_state` for jobs/get?include_trigger_state=true: the SDK's fields (`file_arrival`, `table`,
`job_completion`, `pause_status`) where they exist, and Floe's own (`last_fire_time`, `next_fire_time`,
`fire_count`, ...) beside them."""

from __future__ import annotations

from typing import Any

from core.schedule import continuous as continuous_rules
from core.schedule import file_arrival as file_rules
from core.schedule import job_completion as completion_rules
from core.schedule import table_update as table_rules
from core.triggers.store import TriggerRecord, TriggerStore


def describe(store: TriggerStore, job_id: int) -> dict[str, Any]:
    """The trigger state of one job, by source: the trigger's at the top level, `schedule` and `continuous`
    beside it."""
    out: dict[str, Any] = {}
    for rec in store.records(job_id):
        view: dict[str, Any] = {
            "pause_status": "PAUSED" if rec.paused else "UNPAUSED",
            "fire_count": rec.fires,
        }
        if rec.last_fire_ms is not None:
            view["last_fire_time"] = rec.last_fire_ms
        if rec.next_ms is not None and not rec.paused:
            view["next_fire_time" if rec.kind in ("cron", "periodic") else "next_check_time"] = rec.next_ms
        if rec.error:
            view["error"] = rec.error
        view.update(_kind_state(store, rec))
        if rec.source == "t":
            out.update(view)
        else:
            out["schedule" if rec.source == "s" else "continuous"] = view
    return out


def _kind_state(store: TriggerStore, rec: TriggerRecord) -> dict[str, Any]:
    if rec.kind == "file_arrival":
        state = file_rules.FileArrivalState.from_json(store.state_text(rec))
        return {
            "file_arrival": {
                "using_file_events": True,
                "pending_files": state.pending,
                "seen_files": len(state.seen),
                "last_change_time": state.last_change_ms,
                "last_listing_time": state.last_listing_ms,
            }
        }
    if rec.kind == "table_update":
        state = table_rules.TableUpdateState.from_json(store.state_text(rec))
        tables = [
            {"table_name": name, "has_seen_updates": name in state.updated, "version": version}
            for name, version in state.versions.items()
        ]
        return {"table": {"last_seen_table_states": tables, "using_scalable_monitoring": False}}
    if rec.kind == "job_completion":
        state = completion_rules.JobCompletionState.from_json(store.state_text(rec))
        jobs = []
        for job, seen in sorted(state.last.items()):
            jobs.append(
                {
                    "job_id": job,
                    "has_seen_completion": job in state.pending,
                    "last_seen_completion_time": seen.end_ms,
                }
            )
        return {"job_completion": {"monitored_job_states": jobs}}
    if rec.kind == "continuous":
        state = continuous_rules.ContinuousState.from_json(store.state_text(rec))
        return {"consecutive_failures": state.consecutive_failures}
    return {}
