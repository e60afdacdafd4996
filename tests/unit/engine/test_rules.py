"""The Jobs API's rules as tables: run_if over dependency outcomes, condition comparisons, and the
termination code of every task result."""

from __future__ import annotations

import pytest

from core.engine import (
    Dependency,
    LifeCycle,
    Result,
    RunIf,
    TaskRun,
    TerminationCode,
    TerminationType,
    compare,
    decide,
    task_termination,
)

RUN = "run"
_RESULTS = {
    "S": Result.SUCCESS,
    "F": Result.FAILED,
    "T": Result.TIMEDOUT,
    "U": Result.UPSTREAM_FAILED,
    "C": Result.CANCELED,
    "K": Result.UPSTREAM_CANCELED,
    "X": Result.EXCLUDED,
    "D": Result.DISABLED,
}


def finished(letters: str) -> list[tuple[Dependency, TaskRun]]:
    """One finished dependency per letter (see _RESULTS), keyed d0, d1, ..."""
    return [
        (
            Dependency(f"d{i}"),
            TaskRun(
                task_key=f"d{i}",
                run_id=i,
                parent_run_id=1,
                life_cycle=LifeCycle.TERMINATED,
                result=_RESULTS[c],
            ),
        )
        for i, c in enumerate(letters)
    ]


# (run_if, dependency results, what happens): S success, F failed, T timed out, U upstream failed,
# C canceled, K upstream canceled, X excluded, D disabled.
RUN_IF_TABLE = [
    ("ALL_SUCCESS", "S", RUN),
    ("ALL_SUCCESS", "SS", RUN),
    ("ALL_SUCCESS", "SF", Result.UPSTREAM_FAILED),
    ("ALL_SUCCESS", "ST", Result.UPSTREAM_FAILED),
    ("ALL_SUCCESS", "SU", Result.UPSTREAM_FAILED),
    ("ALL_SUCCESS", "SC", Result.UPSTREAM_CANCELED),
    ("ALL_SUCCESS", "SK", Result.UPSTREAM_CANCELED),
    ("ALL_SUCCESS", "FC", Result.UPSTREAM_FAILED),  # a failure outranks a cancel
    ("ALL_SUCCESS", "SX", Result.EXCLUDED),
    ("ALL_SUCCESS", "SD", Result.DISABLED),
    ("ALL_SUCCESS", "XD", Result.DISABLED),
    ("AT_LEAST_ONE_SUCCESS", "SF", RUN),
    ("AT_LEAST_ONE_SUCCESS", "SX", RUN),
    ("AT_LEAST_ONE_SUCCESS", "SD", RUN),
    ("AT_LEAST_ONE_SUCCESS", "FF", Result.UPSTREAM_FAILED),
    ("AT_LEAST_ONE_SUCCESS", "FD", Result.UPSTREAM_FAILED),
    ("AT_LEAST_ONE_SUCCESS", "CX", Result.UPSTREAM_CANCELED),
    ("AT_LEAST_ONE_SUCCESS", "DX", Result.DISABLED),
    ("AT_LEAST_ONE_SUCCESS", "XX", Result.EXCLUDED),
    ("NONE_FAILED", "SS", RUN),
    ("NONE_FAILED", "SX", RUN),
    ("NONE_FAILED", "SD", RUN),
    ("NONE_FAILED", "SF", Result.UPSTREAM_FAILED),
    ("NONE_FAILED", "SU", Result.UPSTREAM_FAILED),
    ("NONE_FAILED", "SC", Result.UPSTREAM_CANCELED),
    ("NONE_FAILED", "XX", Result.EXCLUDED),  # none failed, but none ran either
    ("NONE_FAILED", "DD", Result.DISABLED),
    ("ALL_DONE", "SF", RUN),
    ("ALL_DONE", "FF", RUN),
    ("ALL_DONE", "CK", RUN),
    ("ALL_DONE", "XD", RUN),
    ("AT_LEAST_ONE_FAILED", "SF", RUN),
    ("AT_LEAST_ONE_FAILED", "ST", RUN),
    ("AT_LEAST_ONE_FAILED", "SU", RUN),  # a failure far upstream reaches the error handler
    ("AT_LEAST_ONE_FAILED", "SS", Result.EXCLUDED),
    ("AT_LEAST_ONE_FAILED", "SX", Result.EXCLUDED),
    ("AT_LEAST_ONE_FAILED", "SC", Result.UPSTREAM_CANCELED),
    ("AT_LEAST_ONE_FAILED", "SD", Result.DISABLED),
    ("ALL_FAILED", "F", RUN),
    ("ALL_FAILED", "FT", RUN),
    ("ALL_FAILED", "FU", RUN),
    ("ALL_FAILED", "FS", Result.EXCLUDED),
    ("ALL_FAILED", "FC", Result.UPSTREAM_CANCELED),
    ("ALL_FAILED", "FD", Result.DISABLED),
]


@pytest.mark.parametrize(
    ("run_if", "deps", "expected"), RUN_IF_TABLE, ids=[f"{r}-{d}" for r, d, _ in RUN_IF_TABLE]
)
def test_run_if(run_if: str, deps: str, expected: object) -> None:
    decision = decide(RunIf(run_if), finished(deps))
    if expected == RUN:
        assert decision.run, decision.reason
    else:
        assert not decision.run
        assert decision.result is expected


@pytest.mark.parametrize("run_if", list(RunIf))
def test_a_task_without_dependencies_always_runs(run_if: RunIf) -> None:
    assert decide(run_if, []).run


@pytest.mark.parametrize(
    ("run_if", "deps", "reason"),
    [
        ("ALL_SUCCESS", "SFU", "Not run: upstream 'd1', 'd2' failed (run_if ALL_SUCCESS)."),
        ("ALL_SUCCESS", "SC", "Not run: upstream 'd1' canceled (run_if ALL_SUCCESS)."),
        (
            "ALL_SUCCESS",
            "SX",
            "Not run: upstream 'd1' did not run or took the other branch (run_if ALL_SUCCESS).",
        ),
        ("AT_LEAST_ONE_FAILED", "SS", "Not run: no dependency failed (run_if AT_LEAST_ONE_FAILED)."),
        ("ALL_FAILED", "FS", "Not run: not every dependency failed (run_if ALL_FAILED)."),
    ],
)
def test_the_reason_names_the_dependencies_and_the_rule(run_if: str, deps: str, reason: str) -> None:
    assert decide(RunIf(run_if), finished(deps)).reason == reason


@pytest.mark.parametrize(
    ("dep_outcome", "condition_outcome", "expected"),
    [
        ("true", "true", RUN),
        ("false", "false", RUN),
        ("true", "false", Result.EXCLUDED),
        (None, "false", RUN),
    ],
)
def test_a_condition_outcome_gates_the_dependency(
    dep_outcome: str | None, condition_outcome: str, expected: object
) -> None:
    upstream = TaskRun(
        task_key="check",
        run_id=1,
        parent_run_id=1,
        life_cycle=LifeCycle.TERMINATED,
        result=Result.SUCCESS,
        outcome=condition_outcome,
    )
    decision = decide(RunIf.ALL_SUCCESS, [(Dependency("check", dep_outcome), upstream)])
    assert (RUN if decision.run else decision.result) == expected


COMPARE_TABLE = [
    ("EQUAL_TO", "abc", "abc", True),
    ("EQUAL_TO", "12.0", "12", False),  # strings, not numbers
    ("EQUAL_TO", "true", "true", True),
    ("NOT_EQUAL", "12.0", "12", True),
    ("NOT_EQUAL", "a", "a", False),
    ("GREATER_THAN", "10", "9", True),  # numbers: as strings "10" < "9"
    ("GREATER_THAN", "9", "10", False),
    ("GREATER_THAN", "1e3", "999.5", True),
    ("GREATER_THAN_OR_EQUAL", "12.0", "12", True),
    ("LESS_THAN", "-1", "0", True),
    ("LESS_THAN", " 2 ", "10", True),  # surrounding spaces do not stop a number
    ("LESS_THAN_OR_EQUAL", "3", "3.000", True),
    ("GREATER_THAN", "b", "a", True),  # not numbers: strings
    ("GREATER_THAN", "10", "abc", False),  # one side not a number: strings ("1" < "a")
    ("LESS_THAN", "NaN", "1", False),  # NaN is not a number here: "N" > "1"
    ("GREATER_THAN", "inf", "1", True),  # nor is infinity: "i" > "1"
]


@pytest.mark.parametrize(("op", "left", "right", "expected"), COMPARE_TABLE)
def test_compare(op: str, left: str, right: str, expected: bool) -> None:
    assert compare(op, left, right) is expected


TERMINATION_TABLE = [
    (Result.SUCCESS, None, False, TerminationCode.SUCCESS, TerminationType.SUCCESS),
    (Result.FAILED, None, False, TerminationCode.RUN_EXECUTION_ERROR, TerminationType.CLIENT_ERROR),
    (
        Result.FAILED,
        TerminationCode.CLUSTER_ERROR,
        False,
        TerminationCode.CLUSTER_ERROR,
        TerminationType.CLOUD_FAILURE,
    ),
    (
        Result.FAILED,
        TerminationCode.INTERNAL_ERROR,
        False,
        TerminationCode.INTERNAL_ERROR,
        TerminationType.INTERNAL_ERROR,
    ),
    (Result.TIMEDOUT, None, False, TerminationCode.CANCELED, TerminationType.CLIENT_ERROR),
    (Result.CANCELED, None, True, TerminationCode.USER_CANCELED, TerminationType.SUCCESS),
    (Result.CANCELED, None, False, TerminationCode.CANCELED, TerminationType.CLIENT_ERROR),
    (Result.EXCLUDED, None, False, TerminationCode.SKIPPED, TerminationType.SUCCESS),
    (Result.UPSTREAM_FAILED, None, False, TerminationCode.SKIPPED, TerminationType.CLIENT_ERROR),
    (Result.UPSTREAM_CANCELED, None, False, TerminationCode.SKIPPED, TerminationType.CLIENT_ERROR),
    (Result.DISABLED, None, False, TerminationCode.DISABLED, TerminationType.SUCCESS),
]


@pytest.mark.parametrize(("result", "code", "by_user", "expected_code", "expected_type"), TERMINATION_TABLE)
def test_task_termination(
    result: Result,
    code: TerminationCode | None,
    by_user: bool,
    expected_code: TerminationCode,
    expected_type: TerminationType,
) -> None:
    termination = task_termination(result, "why", code, by_user=by_user)
    assert (termination.code, termination.type, termination.message) == (expected_code, expected_type, "why")


def test_task_terminations_use_only_codes_the_databricks_sdk_knows() -> None:
    sdk_jobs = pytest.importorskip("databricks.sdk.service.jobs")
    known = {code.value for code in sdk_jobs.TerminationCodeCode}
    for result, code, by_user, _, _ in TERMINATION_TABLE:
        assert task_termination(result, "", code, by_user=by_user).code.value in known
