"""The non-cron triggers of a job (`settings.trigger`, `settings.continuous`): validation and the
dispatch by kind. The decision logic of each kind lives in its own module, all pure functions of
(settings, persisted state, now in epoch ms) -> (decision, new state):

| kind | module | state | run trigger type |
|---|---|---|---|
| `periodic` | `periodic.py` | last fire (ms) + creation (ms) | `PERIODIC` |
| `file_arrival` | `file_arrival.py` (+ `urls.py`) | `FileArrivalState` | `FILE_ARRIVAL` |
| `table_update` (`table`) | `table_update.py` | `TableUpdateState` | `TABLE` |
| `job_completion` | `job_completion.py` | `JobCompletionState` | `JOB_COMPLETION` |
| `continuous` | `continuous.py` | `ContinuousState` | `CONTINUOUS` |

`model` and `sql_condition` triggers need a model registry and a SQL warehouse, which Floe does not
have; they are refused with a clear message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.model.base import invalid, join_path
from core.schedule.continuous import validate_continuous
from core.schedule.debounce import DATABRICKS_MIN_SECONDS, require_mapping, validate_pause_status
from core.schedule.file_arrival import validate_file_arrival
from core.schedule.job_completion import validate_job_completion
from core.schedule.periodic import validate_periodic
from core.schedule.table_update import validate_table_update

SUPPORTED_KINDS = ("file_arrival", "periodic", "table_update", "job_completion")
_UNSUPPORTED_KINDS = ("model", "sql_condition")
_ALIASES = {"table": "table_update"}  # the older name of table_update

__all__ = [
    "SUPPORTED_KINDS",
    "is_paused",
    "trigger_kind",
    "validate_continuous",
    "validate_trigger",
]


def trigger_kind(trigger: Mapping[str, Any]) -> str:
    """The kind of a validated trigger (`table` reported as `table_update`)."""
    for name in (*SUPPORTED_KINDS, *_ALIASES):
        if trigger.get(name) is not None:
            return _ALIASES.get(name, name)
    raise ValueError(f"not a validated trigger: {dict(trigger)!r}")


def trigger_settings(trigger: Mapping[str, Any]) -> Mapping[str, Any]:
    """The settings object of a validated trigger's kind (`trigger["periodic"]`, ...)."""
    kind = trigger_kind(trigger)
    return trigger.get(kind) if trigger.get(kind) is not None else trigger["table"]


def is_paused(trigger_or_continuous: Mapping[str, Any] | None) -> bool:
    """`pause_status` PAUSED (absent means UNPAUSED, for `trigger` and `continuous` alike)."""
    return bool(trigger_or_continuous) and trigger_or_continuous.get("pause_status") == "PAUSED"


def validate_trigger(
    trigger: Any,
    *,
    field: str = "settings.trigger",
    min_seconds_floor: int = DATABRICKS_MIN_SECONDS,
    own_job_id: int | None = None,
) -> None:
    """Check a whole `trigger` object; raise `InvalidParameterValue` naming the first broken rule.

    Exactly one kind; `pause_status` PAUSED/UNPAUSED; each kind's own rules. `min_seconds_floor`
    (60, as Databricks) lowers the timer minimum for tests and laptops; `own_job_id`, when known,
    refuses a job-completion trigger on the job itself.
    """
    trigger = require_mapping(trigger, field)
    validate_pause_status(trigger.get("pause_status"), join_path(field, "pause_status"))
    for name in _UNSUPPORTED_KINDS:
        if trigger.get(name) is not None:
            raise invalid(
                join_path(field, name),
                f"is not supported by Floe (supported trigger kinds: {', '.join(SUPPORTED_KINDS)})",
            )
    present = [name for name in (*SUPPORTED_KINDS, *_ALIASES) if trigger.get(name) is not None]
    if len(present) != 1:
        got = f" (it has {', '.join(present)})" if present else ""
        raise invalid(field, f"must have exactly one of {', '.join(SUPPORTED_KINDS)}{got}")
    name = present[0]
    kind = _ALIASES.get(name, name)
    sub = join_path(field, name)
    if kind == "periodic":
        validate_periodic(trigger[name], sub)
    elif kind == "file_arrival":
        validate_file_arrival(trigger[name], sub, min_seconds_floor=min_seconds_floor)
    elif kind == "table_update":
        validate_table_update(trigger[name], sub, min_seconds_floor=min_seconds_floor)
    else:
        validate_job_completion(trigger[name], sub, own_job_id=own_job_id)
