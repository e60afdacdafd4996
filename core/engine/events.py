"""What the state machine takes and gives: events (what happened) in, a `Step` with commands (what
to do next) out. All frozen dataclasses, so a handler can log, compare and serialise them.

New features add their events and commands here (cluster and notification commands, ...) and their
handling in `core.engine.machine`.
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
class StartChildRun:
    """Start a run of job `job_id` for this run_job_task attempt (it is PENDING), with `job_parameters`
    (references already resolved). Stamp the child's run id on the attempt (`TaskRun.child_run_id`) in
    the same write as `TaskStarted`; report the child's end with `TaskEnded` (`runjob.child_run_ended`).
    Deliveries are at least once: start the child idempotently (e.g. keyed by `task_run_id`)."""

    task_run_id: int
    task_key: str
    job_id: int
    job_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KillTask:
    """Stop this attempt (PENDING or RUNNING), then report `TaskEnded`; `reason` is CANCELED or
    TIMEDOUT. An attempt that was never launched is answered with `TaskEnded(CANCELED)` at once. For a
    run_job_task attempt, cancel its child run (`TaskRun.child_run_id`) and report its end."""

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


Command = StartTask | StartChildRun | KillTask | WakeAt | RunFinished


# -- events: what happened ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The run may start (PENDING -> RUNNING): one BLOCKED task run per task is created."""


@dataclass(frozen=True, slots=True)
class Enqueue:
    """A brand-new (PENDING) run must wait for a slot under max_concurrent_runs (queue enabled): it goes
    QUEUED with no task runs yet; `reason_message` becomes `state.queue_reason`. Applied to a run already
    QUEUED it only updates the reason."""

    reason_message: str


@dataclass(frozen=True, slots=True)
class Dequeue:
    """A QUEUED run got its slot: it starts exactly as `RunStarted` starts a PENDING run, with
    `start_time` = now (so `queue_duration` = start_time - created_time)."""


@dataclass(frozen=True, slots=True)
class Skip:
    """A brand-new or QUEUED run will not run (max_concurrent_runs reached, queue disabled): SKIPPED,
    result MAXIMUM_CONCURRENT_RUNS_REACHED, termination MAX_CONCURRENT_RUNS_EXCEEDED."""

    message: str


@dataclass(frozen=True, slots=True)
class RepairRun:
    """runs/repair of a finished (TERMINATED) run: re-run `rerun_tasks`, or with `rerun_all_failed_tasks`
    every task whose latest attempt did not succeed, plus (`rerun_dependent_tasks`) everything downstream
    of them, as new attempts inside the same run. `job_parameters`, when given, replace the run's (pass
    the effective values); `spec_ref`, when given, is the snapshot of the CURRENT job settings the repair
    runs (and the `dag` given with this event must be its graph)."""

    repair_id: int
    rerun_tasks: tuple[str, ...] = ()
    rerun_all_failed_tasks: bool = False
    rerun_dependent_tasks: bool = False
    job_parameters: dict[str, str] | None = None
    spec_ref: str | None = None


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
    """A user cancels one task run: the latest attempt of the task (or of the for-each iteration) that
    `task_run_id` is an attempt of. Cancelling a for-each task stops all its iterations."""

    task_run_id: int


@dataclass(frozen=True, slots=True)
class Advance:
    """Re-evaluate the run: a wake-up, or a re-drive by `tick`."""


Event = (
    RunStarted
    | Enqueue
    | Dequeue
    | Skip
    | TaskStarted
    | TaskEnded
    | CancelRun
    | CancelTask
    | Advance
    | RepairRun
)

# The results a launcher may report in `TaskEnded`; the others are decided by the engine.
ENDED_RESULTS = frozenset({Result.SUCCESS, Result.FAILED, Result.TIMEDOUT, Result.CANCELED})


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one event: the run (changed or not), the task runs created or changed (by task run
    id), and the commands to carry out once both are written."""

    run: Run
    tasks: dict[int, TaskRun] = field(default_factory=dict)
    commands: tuple[Command, ...] = ()
