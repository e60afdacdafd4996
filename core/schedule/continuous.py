"""`continuous`: `{pause_status (default UNPAUSED), task_retry_mode: NEVER (default) | ON_FAILURE}`.

A continuous job keeps exactly one run active: when none is active and the job is not paused, a new
run starts. After a failed run the restart waits a back-off so a job that fails at once does not spin:
10 s after the first consecutive failure, doubling (20 s, 40 s, ...) up to 10 minutes; a successful run
resets the count. Databricks documents an exponential back-off without numbers; these are Floe's.

Trigger type: every run Floe starts on its own is `CONTINUOUS`. The SDK describes
`CONTINUOUS_RESTART` as "a run created by user to manually restart a continuous job run" (run-now on
a continuous job: the active run is cancelled and a new one started), so only that path uses it.

`task_retry_mode` is not a start decision: with ON_FAILURE the engine retries a failed task while
another task is still in its first attempt, otherwise the run ends and the next run starts. It is
only validated here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from core.model.base import invalid, join_path
from core.schedule.debounce import dump_state, load_state, require_mapping, validate_pause_status

TASK_RETRY_MODES = ("NEVER", "ON_FAILURE")
BACKOFF_FIRST_MS = 10_000
BACKOFF_MAX_MS = 600_000


def validate_continuous(settings: Any, field: str = "settings.continuous") -> None:
    settings = require_mapping(settings, field)
    validate_pause_status(settings.get("pause_status"), join_path(field, "pause_status"))
    mode = settings.get("task_retry_mode")
    if mode is not None and mode not in TASK_RETRY_MODES:
        raise invalid(
            join_path(field, "task_retry_mode"), f"must be one of {', '.join(TASK_RETRY_MODES)}", mode
        )


def restart_backoff_ms(consecutive_failures: int) -> int:
    """0 after a success; 10 s, 20 s, 40 s, ... capped at 10 minutes after 1, 2, 3, ... failures."""
    if consecutive_failures <= 0:
        return 0
    if consecutive_failures > 16:  # 10 s * 2**15 is far past the cap; avoid a huge power
        return BACKOFF_MAX_MS
    return min(BACKOFF_FIRST_MS * 2 ** (consecutive_failures - 1), BACKOFF_MAX_MS)


@dataclass(frozen=True)
class ContinuousDecision:
    """`start`: create a run now, with trigger `trigger_type`. Key its idempotency on the job and the
    end of the previous run (`last_run_end_ms`, or "first" for the first run): every host computes the
    same key, so two ticks start one run. `not_before_ms`: when the back-off allows the start.
    `next_check_ms`: when to look again while the back-off holds the start; None otherwise (then the
    end of the active run, or an unpause, is what wakes the job)."""

    start: bool
    not_before_ms: int | None
    next_check_ms: int | None
    trigger_type: str = "CONTINUOUS"


def continuous_decision(
    settings: Any,
    active_runs: int,
    last_run_end_ms: int | None,
    now_ms: int,
    *,
    consecutive_failures: int = 0,
) -> ContinuousDecision:
    """Whether a continuous job starts a run now."""
    if (settings or {}).get("pause_status") == "PAUSED" or active_runs > 0:
        return ContinuousDecision(False, None, None)
    allowed_at = 0 if last_run_end_ms is None else last_run_end_ms + restart_backoff_ms(consecutive_failures)
    if now_ms < allowed_at:
        return ContinuousDecision(False, allowed_at, allowed_at)
    return ContinuousDecision(True, allowed_at if last_run_end_ms is not None else None, None)


@dataclass(frozen=True)
class ContinuousState:
    """What the lead persists for a continuous job between runs."""

    last_run_end_ms: int | None = None
    consecutive_failures: int = 0

    def on_run_finished(self, succeeded: bool, end_ms: int) -> ContinuousState:
        return replace(
            self,
            last_run_end_ms=end_ms,
            consecutive_failures=0 if succeeded else self.consecutive_failures + 1,
        )

    def to_json(self) -> str:
        return dump_state(
            {"last_run_end_ms": self.last_run_end_ms, "consecutive_failures": self.consecutive_failures}
        )

    @classmethod
    def from_json(cls, text: str) -> ContinuousState:
        data = load_state(text, "continuous trigger state")
        try:
            return cls(data.get("last_run_end_ms"), int(data.get("consecutive_failures", 0)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a continuous trigger state: {text[:200]!r}") from exc
