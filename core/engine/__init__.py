"""The run engine: pure, no I/O, no clock.

- `states`: the vocabulary (life cycle, result, termination code and type).
- `records`: `Run` and `TaskRun`, the persisted state the engine reads and returns.
- `dag`: the task graph of a job's settings.
- `events`: what the machine takes (events) and gives (a `Step` with commands).
- `machine`: `apply(run, tasks, dag, event, now, new_id) -> Step` and the transition tables.
- `rules`: the Jobs API's decisions (run_if, condition tasks, the run's result).
- `references`: `{{dynamic.value.references}}`: resolution at run time, validation at save time.
"""

from core.engine.dag import CONDITION_OPS, Condition, Dag, Dependency, Node, RetryPolicy
from core.engine.events import (
    Advance,
    CancelRun,
    CancelTask,
    Command,
    Event,
    KillTask,
    RunFinished,
    RunStarted,
    StartTask,
    Step,
    TaskEnded,
    TaskStarted,
    WakeAt,
)
from core.engine.machine import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    IllegalTransition,
    apply,
    check_run_transition,
    check_task_transition,
    latest_attempts,
    next_deadline,
)
from core.engine.records import RepairEntry, Run, TaskRun, Termination
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

__all__ = [
    "CONDITION_OPS",
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
    "Event",
    "IllegalTransition",
    "KillTask",
    "LifeCycle",
    "Node",
    "Outcome",
    "Reference",
    "ReferenceContext",
    "RepairEntry",
    "Result",
    "RetryPolicy",
    "Run",
    "RunFinished",
    "RunIf",
    "RunStarted",
    "RunType",
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
    "compare",
    "decide",
    "latest_attempts",
    "next_deadline",
    "parse",
    "resolve",
    "resolve_all",
    "run_outcome",
    "status_state",
    "task_termination",
]
