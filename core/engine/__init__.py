"""The run engine: pure, no I/O, no clock.

- `states`: the vocabulary (life cycle, result, termination code and type).
- `records`: `Run` and `TaskRun`, the persisted state the engine reads and returns.
- `dag`: the task graph of a job's settings.
- `events`: what the machine takes (events) and gives (a `Step` with commands).
- `transitions`: every legal change of life cycle, in one table for runs and one for task runs.
- `machine`: `apply(run, tasks, dag, event, now, new_id, ctx) -> Step`, the one way a run changes.
- `foreach`, `runjob`, `repair`, `deadlines`: the parts of the machine for for-each tasks, run-job tasks,
  runs/repair, and the deadlines that bring a run back (`next_deadline`). `work` is their shared
  working copy of one step (internal).
- `rules`: the Jobs API's decisions (run_if, condition tasks, the run's result).
- `references`: `{{dynamic.value.references}}`: resolution at run time, validation at save time.
"""

from core.engine.dag import CONDITION_OPS, Condition, Dag, Dependency, ForEach, Node, RetryPolicy, RunJob
from core.engine.deadlines import next_deadline
from core.engine.events import (
    Advance,
    CancelRun,
    CancelTask,
    Command,
    Dequeue,
    Enqueue,
    Event,
    KillTask,
    RepairRun,
    RunFinished,
    RunStarted,
    Skip,
    StartChildRun,
    StartTask,
    Step,
    TaskEnded,
    TaskStarted,
    WakeAt,
)
from core.engine.foreach import MAX_INPUT_CHARS, MAX_ITERATIONS, for_each_stats, parse_inputs
from core.engine.machine import apply
from core.engine.records import RepairEntry, Run, TaskRun, Termination, iterations_of, latest_attempts
from core.engine.references import (
    NO_INPUT,
    Reference,
    ReferenceContext,
    check_references,
    parse,
    resolve,
    resolve_all,
)
from core.engine.rules import Decision, DepState, Outcome, compare, decide, run_outcome, task_termination
from core.engine.runjob import child_run_ended
from core.engine.states import (
    LifeCycle,
    Result,
    RunIf,
    RunType,
    StatusState,
    TerminationCode,
    TerminationType,
    TriggerType,
    status_state,
)
from core.engine.transitions import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    IllegalTransition,
    check_run_transition,
    check_task_transition,
)
from core.engine.work import node_of

__all__ = [
    "CONDITION_OPS",
    "MAX_INPUT_CHARS",
    "MAX_ITERATIONS",
    "NO_INPUT",
    "RUN_TRANSITIONS",
    "TASK_TRANSITIONS",
    "Advance",
    "CancelRun",
    "CancelTask",
    "Command",
    "Condition",
    "Dag",
    "Decision",
    "DepState",
    "Dependency",
    "Dequeue",
    "Enqueue",
    "Event",
    "ForEach",
    "IllegalTransition",
    "KillTask",
    "LifeCycle",
    "Node",
    "Outcome",
    "Reference",
    "ReferenceContext",
    "RepairEntry",
    "RepairRun",
    "Result",
    "RetryPolicy",
    "Run",
    "RunFinished",
    "RunIf",
    "RunJob",
    "RunStarted",
    "RunType",
    "Skip",
    "StartChildRun",
    "StartTask",
    "StatusState",
    "Step",
    "TaskEnded",
    "TaskRun",
    "TaskStarted",
    "Termination",
    "TerminationCode",
    "TerminationType",
    "TriggerType",
    "WakeAt",
    "apply",
    "check_references",
    "check_run_transition",
    "check_task_transition",
    "child_run_ended",
    "compare",
    "decide",
    "for_each_stats",
    "iterations_of",
    "latest_attempts",
    "next_deadline",
    "node_of",
    "parse",
    "parse_inputs",
    "resolve",
    "resolve_all",
    "run_outcome",
    "status_state",
    "task_termination",
]
