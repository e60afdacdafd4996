"""Timer: `tick`, every minute, on one instance at a time (the host's singleton lock).

`Floe.tick` starts the runs schedules and triggers owe, heartbeats, and re-drives what lost messages or
instances left behind. Fires are idempotent (a run's idempotency token is made of the fire), so a tick
replayed after a restart (`past_due`), or one that overlaps a slow predecessor, starts nothing twice;
`use_monitor` makes the host catch up one missed occurrence after downtime, and Floe's own index of due
triggers catches up every fire the downtime skipped.
"""

from __future__ import annotations

import logging
import time

import azure.functions as func

from functions import root

log = logging.getLogger("floe.functions")

bp = func.Blueprint()

SCHEDULE = "0 * * * * *"  # NCRONTAB with seconds: at second 0 of every minute, UTC


@bp.function_name("tick")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def tick(timer: func.TimerRequest) -> None:
    scheduled_ms = _scheduled_ms()
    if timer.past_due:
        log.warning("the tick is past due (the app was down or busy); catching up now")
    from core.telemetry import tick as measured

    floe = root.floe()
    with measured(floe.host_id, scheduled_ms=scheduled_ms) as work:
        report = floe.tick()
        work.worked = bool(report.triggered or report.redriven or report.lost)
    if report.triggered or report.redriven or report.lost:
        log.info(
            "tick: %d run(s) triggered, %d attempt(s) re-driven, %d lost",
            report.triggered,
            report.redriven,
            report.lost,
        )


def _scheduled_ms() -> float:
    """When this tick was due: second 0 of the current minute (the schedule), by the wall clock."""
    now = time.time()
    return (now - now % 60) * 1000
