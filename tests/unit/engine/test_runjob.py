"""Run-job tasks: a child run instead of a process, its result mirrored, retries and cancel."""

from __future__ import annotations

import pytest

from core.engine import (
    Dag,
    KillTask,
    LifeCycle,
    ReferenceContext,
    Result,
    Run,
    StartChildRun,
    StartTask,
    TerminationCode,
    child_run_ended,
)
from core.errors import InvalidParameterValue
from tests.unit.engine.harness import Sim, run_job, task

P, R, T = LifeCycle.PENDING, LifeCycle.RUNNING, LifeCycle.TERMINATED
OK, FAILED, CANCELED = Result.SUCCESS, Result.FAILED, Result.CANCELED


def child(result: Result | None, life_cycle: LifeCycle = T, message: str = "") -> Run:
    return Run(run_id=555, job_id=42, life_cycle=life_cycle, result=result, state_message=message)


class TestStart:
    def test_the_child_run_is_asked_for_with_resolved_parameters(self) -> None:
        params = {"day": "{{job.parameters.day}}", "rows": "{{tasks.count.values.rows}}", "n": 5, "on": True}
        sim = Sim.create({"tasks": [task("count"), run_job("load", 42, params, ["count"])]})
        sim.ctx = ReferenceContext(parameters={"day": "2026-01-01"}, task_values={"count": {"rows": 250}})
        sim.start_run()
        step = sim.run_task("count")

        load = sim.latest("load")
        expected = {"day": "2026-01-01", "rows": "250", "n": "5", "on": "true"}
        assert step.commands == (StartChildRun(load.run_id, "load", 42, expected),)
        assert sim.commands_of(StartTask) == []
        assert (load.life_cycle, load.queued_time, load.state_message) == (P, sim.now, "Starting.")
        assert load.resolved_values == {"run_job_task": {"job_id": 42, "job_parameters": expected}}

    def test_no_job_parameters(self) -> None:
        sim = Sim.start({"tasks": [run_job("load", 42)]})
        assert sim.commands_of(StartChildRun) == [StartChildRun(sim.latest("load").run_id, "load", 42, {})]

    def test_a_parameter_that_does_not_resolve_fails_the_task(self) -> None:
        sim = Sim.start({"tasks": [run_job("load", 42, {"x": "{{tasks.nope.values.v}}"})]})
        load = sim.latest("load")
        assert (load.life_cycle, load.result) == (T, FAILED)
        assert load.termination is not None
        assert load.termination.code is TerminationCode.INVALID_RUN_CONFIGURATION
        assert (
            load.state_message
            == "Cannot resolve {{tasks.nope.values.v}}: task 'nope' did not set the task value 'v'."
        )
        assert sim.commands_of(StartChildRun) == []
        assert sim.run_state() == (T, FAILED)

    @pytest.mark.parametrize("job_id", [None, 0, -1, "x", True])
    def test_the_job_id_must_be_a_positive_integer(self, job_id: object) -> None:
        settings = {"tasks": [{"task_key": "load", "run_job_task": {"job_id": job_id}}]}
        with pytest.raises(
            InvalidParameterValue, match=r"^tasks\[0\]\.run_job_task\.job_id must be a positive"
        ):
            Dag.from_settings(settings)

    def test_a_job_id_written_as_a_string_is_accepted(self) -> None:
        dag = Dag.from_settings({"tasks": [{"task_key": "load", "run_job_task": {"job_id": "42"}}]})
        assert dag["load"].run_job is not None and dag["load"].run_job.job_id == 42


class TestEnd:
    @pytest.mark.parametrize(
        ("life_cycle", "result", "message", "expected", "expected_message"),
        [
            (T, OK, "", OK, "Run 555 of job 42 succeeded."),
            (T, FAILED, "Task 'a' failed.", FAILED, "Run 555 of job 42 ended FAILED: Task 'a' failed."),
            (T, Result.TIMEDOUT, "", FAILED, "Run 555 of job 42 ended TIMEDOUT."),
            (T, CANCELED, "", FAILED, "Run 555 of job 42 ended CANCELED."),
            (T, Result.SUCCESS_WITH_FAILURES, "", OK, "Run 555 of job 42 ended SUCCESS_WITH_FAILURES."),
            (
                LifeCycle.SKIPPED,
                Result.MAXIMUM_CONCURRENT_RUNS_REACHED,
                "",
                FAILED,
                "Run 555 of job 42 ended MAXIMUM_CONCURRENT_RUNS_REACHED.",
            ),
            (LifeCycle.INTERNAL_ERROR, None, "", FAILED, "Run 555 of job 42 ended INTERNAL_ERROR."),
        ],
    )
    def test_the_child_result_is_mirrored(
        self,
        life_cycle: LifeCycle,
        result: Result | None,
        message: str,
        expected: Result,
        expected_message: str,
    ) -> None:
        sim = Sim.start({"tasks": [run_job("load", 42)]})
        load = sim.latest("load").run_id
        sim.started("load")

        sim.apply(child_run_ended(load, child(result, life_cycle, message)))

        assert sim.state("load") == (T, expected)
        assert sim.latest("load").state_message == expected_message
        assert sim.run_state() == (T, expected)

    def test_a_failed_child_is_retried_with_a_new_child_run(self) -> None:
        sim = Sim.start({"tasks": [run_job("load", 42, {"a": "{{task.run_id}}"}, max_retries=1)]})
        first = sim.latest("load").run_id
        sim.started("load")
        step = sim.apply(child_run_ended(first, child(FAILED)))
        retry = sim.latest("load")
        assert retry.attempt_number == 1
        assert step.commands == (StartChildRun(retry.run_id, "load", 42, {"a": str(retry.run_id)}),)

    def test_cancelling_the_parent_kills_the_task_and_the_child_ends_it_canceled(self) -> None:
        sim = Sim.start({"tasks": [run_job("load", 42)]})
        load = sim.latest("load").run_id
        sim.started("load")

        step = sim.cancel()

        assert step.commands == (KillTask(load, "load", CANCELED),)
        sim.apply(child_run_ended(load, child(CANCELED)))  # the handler cancelled the child
        assert sim.state("load") == (T, CANCELED)
        assert sim.run_state() == (T, CANCELED)
