"""Control flow through whole runs: run_if error handlers, condition tasks (evaluated by the engine,
gating their dependents by outcome), and disabled tasks."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine import LifeCycle, ReferenceContext, Result, RunStarted, StartTask, TerminationCode
from tests.unit.engine.harness import Sim, condition, task

T = LifeCycle.TERMINATED
OK, FAILED = Result.SUCCESS, Result.FAILED


class TestRunIf:
    def test_an_error_handler_sees_a_failure_far_upstream(self) -> None:
        sim = Sim.start(
            {
                "tasks": [
                    task("ingest"),
                    task("transform", ["ingest"]),
                    task("alert", ["transform"], run_if="AT_LEAST_ONE_FAILED"),
                ]
            }
        )
        step = sim.run_task("ingest", FAILED)

        assert sim.results() == {"ingest": FAILED, "transform": Result.UPSTREAM_FAILED, "alert": None}
        assert sim.started_keys(step) == ["alert"]
        sim.run_task("alert")
        # the leaf (alert) succeeded, tasks before it failed
        assert sim.run_state() == (T, Result.SUCCESS_WITH_FAILURES)

    def test_all_done_runs_after_a_mix_of_results(self) -> None:
        sim = Sim.start({"tasks": [task("a"), task("b"), task("report", ["a", "b"], run_if="ALL_DONE")]})
        sim.run_task("a", FAILED)
        step = sim.run_task("b")
        assert sim.started_keys(step) == ["report"]

    def test_a_skipped_chain_resolves_in_one_step(self) -> None:
        sim = Sim.start(
            {"tasks": [task("a"), *(task(f"t{i}", ["a" if i == 0 else f"t{i - 1}"]) for i in range(5))]}
        )
        sim.run_task("a", FAILED)
        assert all(sim.state(f"t{i}") == (T, Result.UPSTREAM_FAILED) for i in range(5))
        assert sim.run_state() == (T, FAILED)


def branching(op: str, left: str, right: str) -> dict[str, Any]:
    return {
        "tasks": [
            condition("check", op, left, right),
            task("when_true", ["check:true"]),
            task("when_false", ["check:false"]),
            task("after_true", ["when_true"]),
        ]
    }


class TestConditionTasks:
    @pytest.mark.parametrize(
        ("op", "left", "right", "outcome", "runs", "excluded"),
        [
            ("EQUAL_TO", "a", "a", "true", "when_true", "when_false"),
            ("GREATER_THAN", "9", "10", "false", "when_false", "when_true"),
        ],
    )
    def test_the_outcome_picks_a_branch(
        self, op: str, left: str, right: str, outcome: str, runs: str, excluded: str
    ) -> None:
        sim = Sim.start(branching(op, left, right))

        check = sim.latest("check")
        assert (check.life_cycle, check.result, check.outcome) == (T, OK, outcome)
        assert check.resolved_values == {"condition_task": {"left": left, "right": right}}
        assert sim.started_keys() == [runs]  # no StartTask for the condition itself
        assert sim.state(excluded) == (T, Result.EXCLUDED)
        assert sim.code(excluded) is TerminationCode.SKIPPED

        sim.run_task(runs)
        if runs == "when_false":
            assert sim.state("after_true") == (T, Result.EXCLUDED)  # exclusion flows down the branch
        else:
            sim.run_task("after_true")
        assert sim.run_state() == (T, OK)

    def test_operands_are_resolved_from_the_context(self) -> None:
        settings = branching("GREATER_THAN_OR_EQUAL", "{{tasks.count.values.rows}}", "{{job.parameters.min}}")
        settings["tasks"].insert(0, task("count"))
        settings["tasks"][1]["depends_on"] = [{"task_key": "count"}]
        sim = Sim.create(settings)
        sim.ctx = ReferenceContext(parameters={"min": "100"}, task_values={"count": {"rows": 250}})
        sim.apply(RunStarted())
        sim.run_task("count")

        assert sim.latest("check").outcome == "true"
        assert sim.latest("check").resolved_values == {"condition_task": {"left": "250", "right": "100"}}
        assert sim.latest("check").state_message == "Condition '250' GREATER_THAN_OR_EQUAL '100' is true."

    def test_a_condition_can_read_an_upstream_result_state(self) -> None:
        settings = {
            "tasks": [
                task("load"),
                {
                    **condition("did_load_fail", "EQUAL_TO", "{{tasks.load.result_state}}", "FAILED"),
                    "depends_on": [{"task_key": "load"}],
                    "run_if": "ALL_DONE",
                },
                task("page_someone", ["did_load_fail:true"]),
            ]
        }
        sim = Sim.start(settings)
        sim.run_task("load", FAILED)
        assert sim.latest("did_load_fail").outcome == "true"
        assert sim.started_keys() == ["page_someone"]

    def test_an_unresolvable_operand_fails_the_condition_without_retrying(self) -> None:
        settings = {
            "tasks": [
                {**condition("check", "EQUAL_TO", "{{job.parameters.missing}}", "x"), "max_retries": 3},
                task("next", ["check:true"]),
            ]
        }
        sim = Sim.start(settings)

        check = sim.latest("check")
        assert (check.result, check.attempt_number) == (FAILED, 0)
        assert (
            check.state_message
            == "Cannot resolve {{job.parameters.missing}}: the run has no job parameter 'missing'."
        )
        assert sim.code("check") is TerminationCode.INVALID_RUN_CONFIGURATION
        assert sim.state("next") == (T, Result.UPSTREAM_FAILED)
        assert sim.run_state() == (T, FAILED)


class TestDisabledTasks:
    def test_a_disabled_task_ends_disabled_without_starting(self) -> None:
        sim = Sim.start({"tasks": [task("a"), task("b", ["a"], disabled=True)]})
        step = sim.run_task("a")

        assert sim.state("b") == (T, Result.DISABLED)
        assert sim.code("b") is TerminationCode.DISABLED
        assert not any(isinstance(c, StartTask) and c.task_key == "b" for c in sim.commands)
        assert sim.run_state() == (T, OK)  # a disabled leaf does not fail the run
        assert step.commands[-1].result is OK  # type: ignore[union-attr]

    def test_a_disabled_task_waits_for_its_dependencies(self) -> None:
        sim = Sim.start({"tasks": [task("a"), task("b", ["a"], disabled=True)]})
        assert sim.state("b") == (LifeCycle.BLOCKED, None)

    @pytest.mark.parametrize(
        ("run_if", "expected"),
        [
            ("ALL_SUCCESS", Result.DISABLED),  # a disabled parent is no success
            ("ALL_DONE", None),  # ... but it is done: the task starts
            ("AT_LEAST_ONE_FAILED", Result.DISABLED),  # ... and no failure
        ],
    )
    def test_dependents_of_a_disabled_task(self, run_if: str, expected: Result | None) -> None:
        sim = Sim.start({"tasks": [task("a", disabled=True), task("b", ["a"], run_if=run_if)]})
        assert sim.results()["b"] is expected
        assert sim.started_keys() == ([] if expected else ["b"])

    def test_a_disabled_task_does_not_hide_an_upstream_failure(self) -> None:
        sim = Sim.start({"tasks": [task("a"), task("b", ["a"], disabled=True), task("c", ["b"])]})
        sim.run_task("a", FAILED)
        assert sim.results() == {"a": FAILED, "b": Result.UPSTREAM_FAILED, "c": Result.UPSTREAM_FAILED}
        assert sim.run_state() == (T, FAILED)
