"""The Jobs API's rules, as pure functions of task results: whether a blocked task runs (`decide`), what
a condition task's operands compare to (`compare`), why a task run ended (`task_termination`) and how a
run ended (`run_outcome`). `core.engine.machine` applies them; they know nothing of events or commands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from core.engine.dag import Dag, Dependency
from core.engine.records import TaskRun, Termination
from core.engine.states import Result, RunIf, TerminationCode, TerminationType


class DepState(StrEnum):
    """How a finished dependency counts for `run_if`."""

    SUCCEEDED = "succeeded"  # SUCCESS, and the condition outcome matches when the dependency names one
    FAILED = "failed"  # FAILED, TIMEDOUT, UPSTREAM_FAILED, or ended with no result (INTERNAL_ERROR)
    CANCELED = "canceled"  # CANCELED, UPSTREAM_CANCELED
    EXCLUDED = "excluded"  # EXCLUDED, or a condition that took the other branch
    DISABLED = "disabled"  # DISABLED


_STATE_OF_RESULT = {
    Result.SUCCESS: DepState.SUCCEEDED,
    Result.FAILED: DepState.FAILED,
    Result.TIMEDOUT: DepState.FAILED,
    Result.UPSTREAM_FAILED: DepState.FAILED,
    Result.CANCELED: DepState.CANCELED,
    Result.UPSTREAM_CANCELED: DepState.CANCELED,
    Result.EXCLUDED: DepState.EXCLUDED,
    Result.DISABLED: DepState.DISABLED,
}


def dependency_state(dep: Dependency, upstream: TaskRun) -> DepState:
    """How the finished latest attempt `upstream` counts for a task that depends on it through `dep`."""
    state = _STATE_OF_RESULT.get(upstream.result, DepState.FAILED) if upstream.result else DepState.FAILED
    if state is DepState.SUCCEEDED and dep.outcome is not None and upstream.outcome != dep.outcome:
        return DepState.EXCLUDED
    return state


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a task whose dependencies all finished runs; if not, the result it ends with and why."""

    run: bool
    result: Result | None = None
    reason: str = ""


_RUN = Decision(run=True)


def decide(run_if: RunIf, deps: Sequence[tuple[Dependency, TaskRun]]) -> Decision:
    """Apply `run_if` to the finished latest attempts of a task's dependencies.

    | run_if               | the task runs when                                            |
    |----------------------|---------------------------------------------------------------|
    | ALL_SUCCESS          | every dependency succeeded                                    |
    | AT_LEAST_ONE_SUCCESS | at least one dependency succeeded                             |
    | NONE_FAILED          | none failed or was canceled, and at least one succeeded       |
    | ALL_DONE             | always (every dependency finished, whatever its result)       |
    | AT_LEAST_ONE_FAILED  | at least one dependency failed                                |
    | ALL_FAILED           | every dependency failed                                       |

    "Succeeded" is SUCCESS with the right condition outcome; "failed" includes TIMEDOUT and
    UPSTREAM_FAILED (so an error handler at the end of a chain sees a failure far upstream). A disabled
    or excluded dependency is neither: it did not run (as Databricks documents for disabled tasks).

    When the task does not run it ends with, in this order of precedence: UPSTREAM_FAILED if a
    dependency failed (only for the three rules that want successes: for the two that want failures a
    failure is not the reason), UPSTREAM_CANCELED if one was canceled, DISABLED if one was disabled
    (Databricks marks tasks that cannot run because of a disabled parent as disabled), else EXCLUDED
    (a condition branch not taken, or a rule such as AT_LEAST_ONE_FAILED with nothing failed).
    A task with no dependencies always runs.
    """
    if not deps:
        return _RUN
    states = [dependency_state(dep, upstream) for dep, upstream in deps]
    count = {state: states.count(state) for state in DepState}
    succeeded, failed = count[DepState.SUCCEEDED], count[DepState.FAILED]
    wants_success = run_if in (RunIf.ALL_SUCCESS, RunIf.AT_LEAST_ONE_SUCCESS, RunIf.NONE_FAILED)
    runs = {
        RunIf.ALL_SUCCESS: succeeded == len(states),
        RunIf.AT_LEAST_ONE_SUCCESS: succeeded >= 1,
        RunIf.NONE_FAILED: failed == 0 and count[DepState.CANCELED] == 0 and succeeded >= 1,
        RunIf.ALL_DONE: True,
        RunIf.AT_LEAST_ONE_FAILED: failed >= 1,
        RunIf.ALL_FAILED: failed == len(states),
    }[run_if]
    if runs:
        return _RUN

    def naming(state: DepState) -> str:
        keys = [dep.task_key for (dep, _), s in zip(deps, states, strict=True) if s is state]
        return ", ".join(repr(key) for key in keys)

    rule = f"run_if {run_if.value}"
    if wants_success and failed:
        why, result = f"upstream {naming(DepState.FAILED)} failed", Result.UPSTREAM_FAILED
    elif count[DepState.CANCELED]:
        why, result = f"upstream {naming(DepState.CANCELED)} canceled", Result.UPSTREAM_CANCELED
    elif count[DepState.DISABLED]:
        why, result = f"upstream {naming(DepState.DISABLED)} disabled", Result.DISABLED
    elif wants_success:
        why = f"upstream {naming(DepState.EXCLUDED)} did not run or took the other branch"
        result = Result.EXCLUDED
    else:
        why = "no dependency failed" if run_if is RunIf.AT_LEAST_ONE_FAILED else "not every dependency failed"
        result = Result.EXCLUDED
    return Decision(run=False, result=result, reason=f"Not run: {why} ({rule}).")


# -- condition tasks ----------------------------------------------------------------------------------


def compare(op: str, left: str, right: str) -> bool:
    """Evaluate a condition task. EQUAL_TO / NOT_EQUAL compare the strings ("12.0" != "12"); the four
    ordering ops compare numbers when both sides parse as finite decimals, else the strings."""
    if op == "EQUAL_TO":
        return left == right
    if op == "NOT_EQUAL":
        return left != right
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return _ordered(op, a, b)
    return _ordered(op, left, right)


def _ordered(op: str, a: Decimal | str, b: Decimal | str) -> bool:
    if op == "GREATER_THAN":
        return a > b  # type: ignore[operator]  # both sides have the same type
    if op == "GREATER_THAN_OR_EQUAL":
        return a >= b  # type: ignore[operator]
    if op == "LESS_THAN":
        return a < b  # type: ignore[operator]
    if op == "LESS_THAN_OR_EQUAL":
        return a <= b  # type: ignore[operator]
    raise ValueError(f"unknown condition op {op!r}")  # Dag.from_settings admits only the six ops


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


# -- terminations -------------------------------------------------------------------------------------

_TYPE_OF_CODE = {
    TerminationCode.SUCCESS: TerminationType.SUCCESS,
    TerminationCode.SUCCESS_WITH_FAILURES: TerminationType.SUCCESS,
    TerminationCode.USER_CANCELED: TerminationType.SUCCESS,
    TerminationCode.DISABLED: TerminationType.SUCCESS,
    TerminationCode.INTERNAL_ERROR: TerminationType.INTERNAL_ERROR,
    TerminationCode.CLUSTER_ERROR: TerminationType.CLOUD_FAILURE,
}


def termination(code: TerminationCode, message: str = "") -> Termination:
    """A `Termination` with the type that goes with `code` (CLIENT_ERROR unless listed otherwise)."""
    return Termination(code=code, type=_TYPE_OF_CODE.get(code, TerminationType.CLIENT_ERROR), message=message)


_SKIPPED = {
    # Never executed: SKIPPED in the SDK's words ("the upstream task run failed, the dependency type
    # condition was not met"). A branch not taken is no problem; an upstream failure is the job's.
    Result.EXCLUDED: Termination(TerminationCode.SKIPPED, TerminationType.SUCCESS),
    Result.UPSTREAM_FAILED: Termination(TerminationCode.SKIPPED, TerminationType.CLIENT_ERROR),
    Result.UPSTREAM_CANCELED: Termination(TerminationCode.SKIPPED, TerminationType.CLIENT_ERROR),
    Result.DISABLED: Termination(TerminationCode.DISABLED, TerminationType.SUCCESS),
}


def task_termination(
    result: Result, message: str = "", code: TerminationCode | None = None, *, by_user: bool = False
) -> Termination:
    """Why a task run ended, using only codes the Databricks SDK knows (others would read as None).

    | result                               | code                                                  |
    |--------------------------------------|-------------------------------------------------------|
    | SUCCESS                              | SUCCESS                                               |
    | FAILED                               | `code` if given, else RUN_EXECUTION_ERROR             |
    | TIMEDOUT                             | CANCELED (stopped by the platform: the SDK's wording) |
    | CANCELED                             | USER_CANCELED if a user asked, else `code` or CANCELED |
    | EXCLUDED, UPSTREAM_FAILED / CANCELED | SKIPPED (never executed)                              |
    | DISABLED                             | DISABLED                                              |
    """
    if result in _SKIPPED:
        skipped = _SKIPPED[result]
        return Termination(skipped.code, skipped.type, message)
    if result is Result.SUCCESS:
        chosen = TerminationCode.SUCCESS
    elif result is Result.TIMEDOUT:
        chosen = TerminationCode.CANCELED
    elif result is Result.CANCELED:
        chosen = TerminationCode.USER_CANCELED if by_user else code or TerminationCode.CANCELED
    else:
        chosen = code or TerminationCode.RUN_EXECUTION_ERROR
    return termination(chosen, message)


# -- the run's result ---------------------------------------------------------------------------------

# A leaf that ended with one of these did not fail the run: it succeeded, or had nothing to do.
LEAF_OK = frozenset({Result.SUCCESS, Result.EXCLUDED, Result.DISABLED})
# Results that make a run SUCCESS_WITH_FAILURES when only non-leaf tasks have them.
_FAILURES = frozenset(
    {Result.FAILED, Result.TIMEDOUT, Result.CANCELED, Result.UPSTREAM_FAILED, Result.UPSTREAM_CANCELED}
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: its result and its termination details (whose message is its state message)."""

    result: Result
    termination: Termination

    @property
    def message(self) -> str:
        return self.termination.message


def run_outcome(
    dag: Dag, latest: Mapping[str, TaskRun], cancel_reason: Result | None, cancel_message: str = ""
) -> Outcome:
    """How a run whose tasks are all final ended.

    - Cancelled by a user (`cancel_reason` CANCELED): CANCELED / USER_CANCELED.
    - Stopped by the job's timeout (`cancel_reason` TIMEDOUT): TIMEDOUT / CANCELED (the SDK's code for
      "canceled by the platform, e.g. the maximum run duration was exceeded").
    - Otherwise from the leaf tasks (tasks nothing depends on). A leaf is fine when it ended SUCCESS,
      EXCLUDED or DISABLED. All leaves fine and no task failed: SUCCESS. All leaves fine but some
      other task failed, timed out or was canceled: SUCCESS_WITH_FAILURES. Some leaf not fine: FAILED
      if any such leaf failed or was upstream-failed, else TIMEDOUT if one timed out, else CANCELED
      (a single task run was cancelled). So a one-task job ends with its task's result.
    """
    if cancel_reason is Result.CANCELED:
        return Outcome(Result.CANCELED, termination(TerminationCode.USER_CANCELED, cancel_message))
    if cancel_reason is Result.TIMEDOUT:
        return Outcome(Result.TIMEDOUT, termination(TerminationCode.CANCELED, cancel_message))

    tasks = [latest[key] for key in dag.order if key in latest]
    bad_leaves = [latest[key] for key in dag.leaves if key in latest and latest[key].result not in LEAF_OK]
    failures = [task for task in tasks if task.result in _FAILURES or task.result is None]
    if not bad_leaves:
        if not failures:
            return Outcome(Result.SUCCESS, termination(TerminationCode.SUCCESS))
        message = f"{describe_failures(failures)} The leaf tasks succeeded."
        return Outcome(
            Result.SUCCESS_WITH_FAILURES, termination(TerminationCode.SUCCESS_WITH_FAILURES, message)
        )

    leaf_results = {task.result for task in bad_leaves}
    message = describe_failures(failures)
    if leaf_results & {Result.FAILED, Result.UPSTREAM_FAILED, None}:
        return Outcome(Result.FAILED, termination(TerminationCode.RUN_EXECUTION_ERROR, message))
    if Result.TIMEDOUT in leaf_results:
        return Outcome(Result.TIMEDOUT, termination(TerminationCode.RUN_EXECUTION_ERROR, message))
    return Outcome(Result.CANCELED, termination(TerminationCode.USER_CANCELED, message))


_VERB = {
    Result.FAILED: "failed",
    Result.TIMEDOUT: "timed out",
    Result.CANCELED: "was canceled",
}
_MAX_NAMED = 5


def describe_failures(failures: Sequence[TaskRun]) -> str:
    """A sentence naming the tasks that failed and those that were skipped because of them."""
    direct = [task for task in failures if task.result in _VERB or task.result is None]
    skipped = [task.task_key for task in failures if not (task.result in _VERB or task.result is None)]
    parts = []
    for task in direct[:_MAX_NAMED]:
        verb = _VERB.get(task.result, "failed") if task.result else "failed"
        detail = first_line(task.state_message).rstrip(".")
        parts.append(f"Task {task.task_key!r} {verb}" + (f": {detail}" if detail else ""))
    if len(direct) > _MAX_NAMED:
        parts.append(f"{len(direct) - _MAX_NAMED} more tasks failed")
    sentence = "; ".join(parts) + "." if parts else ""
    if skipped:
        named = ", ".join(repr(key) for key in skipped[:_MAX_NAMED])
        more = f" and {len(skipped) - _MAX_NAMED} more" if len(skipped) > _MAX_NAMED else ""
        sentence += f" Downstream tasks {named}{more} did not run."
    return sentence.strip()


def first_line(message: str, limit: int = 200) -> str:
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
