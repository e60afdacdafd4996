"""What the state machine takes and gives: events (what happened) in, a `Step` with commands (what
to do next) out. All frozen dataclasses, so a handler can log, compare and serialise them.

New features add their events and commands here (for-each iterations, run-job children, repairs,
cluster and notification commands) and their handling in `core.engine.machine`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.engine.records import Run, TaskRun
from core.engine.states import Result, TerminationCode

# -- commands: what the handler must do after writing the step ---------------------------------------


@dataclass(frozen=True, slots=True)
class StartTask:
    """Launch this attempt (it is PENDING); report `TaskStarted` once it runs, `TaskEnded` when over."""

    task_run_id: int
    task_key: str
    attempt_number: int


@dataclass(frozen=True, slots=True)
class KillTask:
    """Stop this attempt (PENDING or RUNNING), then report `TaskEnded`; `reason` is CANCELED or
    TIMEDOUT. An attempt that was never launched is answered with `TaskEnded(CANCELED)` at once."""

    task_run_id: int
    task_key: str
    reason: Result


@dataclass(frozen=True, slots=True)
class WakeAt:
    """Apply `Advance` to this run again at `at_ms` (a retry falls due, a timeout expires)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run reached its final state: release its clusters, send its notifications."""

    run_id: int
    result: Result


Command = StartTask | KillTask | WakeAt | RunFinished


# -- events: what happened ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The run may start (PENDING -> RUNNING): one BLOCKED task run per task is created."""


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """The attempt's process is running (PENDING -> RUNNING)."""

    task_run_id: int


@dataclass(frozen=True, slots=True)
class TaskEnded:
    """The attempt is over. `result` is SUCCESS, FAILED, TIMEDOUT or CANCELED; `code` refines a
    failure (e.g. CLUSTER_ERROR, LIBRARY_INSTALLATION_ERROR); `message` says what happened."""

    task_run_id: int
    result: Result
    message: str = ""
    code: TerminationCode | None = None
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class CancelRun:
    """A user cancels the whole run."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class CancelTask:
    """A user cancels one task run (the task's latest attempt, given the id of any of its attempts)."""

    task_run_id: int


@dataclass(frozen=True, slots=True)
class Advance:
    """Re-evaluate the run: a wake-up, or a re-drive by `tick`."""


Event = RunStarted | TaskStarted | TaskEnded | CancelRun | CancelTask | Advance

# The results a launcher may report in `TaskEnded`; the others are decided by the engine.
ENDED_RESULTS = frozenset({Result.SUCCESS, Result.FAILED, Result.TIMEDOUT, Result.CANCELED})


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one event: the run (changed or not), the task runs created or changed (by task run
    id), and the commands to carry out once both are written."""

    run: Run
    tasks: dict[int, TaskRun] = field(default_factory=dict)
    commands: tuple[Command, ...] = ()
