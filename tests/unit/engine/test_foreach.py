"""For-each tasks: iterations created per input, at most `concurrency` active, retries and timeouts per
iteration, the for-each's result, stopping it, its stats, and the deadlines of its iterations."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.engine import (
    CancelTask,
    KillTask,
    LifeCycle,
    ReferenceContext,
    Result,
    RunFinished,
    StartChildRun,
    StartTask,
    TaskEnded,
    TaskStarted,
    TerminationCode,
    WakeAt,
    for_each_stats,
    iterations_of,
    latest_attempts,
    next_deadline,
    node_of,
)
from core.errors import InvalidState
from tests.unit.engine.harness import RUN_ID, T0, Sim, condition, for_each, run_job, task

B, P, R, T = LifeCycle.BLOCKED, LifeCycle.PENDING, LifeCycle.RUNNING, LifeCycle.TERMINATED
W = LifeCycle.WAITING_FOR_RETRY
OK, FAILED, CANCELED, TIMEDOUT = Result.SUCCESS, Result.FAILED, Result.CANCELED, Result.TIMEDOUT


def job(inputs: str = '["a","b","c"]', concurrency: int | None = 2, **nested: Any) -> dict[str, Any]:
    return {
        "tasks": [
            for_each("each", inputs, task("work", **nested), concurrency=concurrency),
            task("after", ["each"]),
        ]
    }


class TestIterations:
    def test_three_inputs_two_at_a_time(self) -> None:
        sim = Sim.start(job())
        each = sim.latest("each")

        assert (each.life_cycle, each.start_time, each.queued_time) == (R, T0, T0)
        assert each.state_message == "Running 3 iterations, at most 2 at a time."
        assert each.resolved_values == {"for_each_task": {"inputs": '["a","b","c"]'}}
        its = sim.iterations("each")
        assert [(it.task_key, it.iteration, it.input) for it in its] == [
            ("work", 0, '"a"'),
            ("work", 1, '"b"'),
            ("work", 2, '"c"'),
        ]
        for it in its:
            assert (it.parent_task_run_id, it.parent_run_id) == (each.run_id, RUN_ID)
            assert (it.attempt_number, it.original_attempt_run_id) == (0, it.run_id)
        # the for-each itself is never launched; its first two iterations are
        assert sim.commands_of(StartTask) == [
            StartTask(its[0].run_id, "work", 0),
            StartTask(its[1].run_id, "work", 0),
        ]
        assert sim.iteration_states("each") == [(P, None), (P, None), (B, None)]
        assert set(latest_attempts(sim.tasks)) == {"each", "after"}  # iterations are not top-level tasks

        most = 0
        for index in (0, 1, 2):
            sim.iteration_started("each", index)
            most = max(most, len(sim.active_iterations("each")))
            step = sim.iteration_ended("each", index)
            most = max(most, len(sim.active_iterations("each")))
            if index == 0:
                assert sim.started_keys(step) == ["work"]  # iteration 2 takes the free slot
        assert most == 2

        assert sim.state("each") == (T, OK)
        assert sim.latest("each").state_message == "All 3 iterations succeeded."
        assert sim.started_keys() == ["after"]
        sim.run_task("after")
        assert sim.run_state() == (T, OK)

    def test_iterations_run_in_input_order_and_refill_as_they_end(self) -> None:
        sim = Sim.start(job("[1,2,3,4,5]", concurrency=2))
        sim.run_iteration("each", 1)
        assert sim.active_iterations("each") == [0, 2]
        sim.run_iteration("each", 0)
        assert sim.active_iterations("each") == [2, 3]

    def test_concurrency_defaults_to_one(self) -> None:
        sim = Sim.start(job(concurrency=None))
        assert sim.active_iterations("each") == [0]

    def test_an_empty_array_succeeds_at_once(self) -> None:
        sim = Sim.start(job("[]"))
        assert sim.state("each") == (T, OK)
        assert sim.latest("each").state_message == "No inputs: nothing to run."
        assert sim.iterations("each") == []
        assert sim.started_keys() == ["after"]

    def test_a_failed_iteration_is_retried_and_keeps_its_slot_meanwhile(self) -> None:
        sim = Sim.start(job(max_retries=1, min_retry_interval_millis=60_000))
        sim.iteration_started("each", 1)
        step = sim.iteration_ended("each", 1, FAILED, "boom")

        retry = sim.iteration("each", 1)
        assert (retry.life_cycle, retry.attempt_number, retry.retry_at) == (W, 1, T0 + 60_000)
        assert (retry.iteration, retry.input, retry.parent_task_run_id) == (
            1,
            '"b"',
            sim.latest("each").run_id,
        )
        assert sim.active_iterations("each") == [0, 1]  # iteration 2 waits: the retry holds the slot
        assert step.commands == (WakeAt(T0 + 60_000),)

        step = sim.tick(60_000)
        assert step.commands == (StartTask(retry.run_id, "work", 1),)
        assert sim.iteration("each", 1).state_message == "Starting retry 1 of 1."
        assert len(iterations_of(sim.tasks, sim.latest("each").run_id, all_attempts=True)) == 4

    def test_one_iteration_failing_after_its_retries_fails_the_for_each_and_its_dependents(self) -> None:
        sim = Sim.start(job(max_retries=1))
        sim.run_iteration("each", 0)
        sim.run_iteration("each", 1, FAILED, "bad input")
        sim.run_iteration("each", 1, FAILED, "bad input again")  # the retry, started at once
        assert sim.state("each") == (R, None)  # iteration 2 still runs: iterations go on after a failure
        sim.run_iteration("each", 2)

        each = sim.latest("each")
        assert (each.life_cycle, each.result) == (T, FAILED)
        assert each.state_message == (
            '1 of 3 iterations failed; the first, iteration 1 (input "b"), ended FAILED: bad input again.'
        )
        assert sim.state("after") == (T, Result.UPSTREAM_FAILED)
        assert sim.run_state() == (T, FAILED)
        assert len(sim.attempts("each")) == 1  # the for-each itself is never retried

    def test_a_nested_condition_task_is_evaluated_per_iteration(self) -> None:
        nested = condition("check", "GREATER_THAN", "{{input.size}}", "10")
        sim = Sim.start({"tasks": [for_each("each", '[{"size":5},{"size":50}]', nested, concurrency=1)]})
        assert [it.outcome for it in sim.iterations("each")] == ["false", "true"]
        assert sim.run_state() == (T, OK)

    def test_a_nested_run_job_task_starts_one_child_run_per_iteration(self) -> None:
        nested = run_job("child", 42, {"city": "{{input}}"})
        sim = Sim.start({"tasks": [for_each("each", '["Oslo","Rome"]', nested, concurrency=2)]})
        its = sim.iterations("each")
        assert sim.commands_of(StartChildRun) == [
            StartChildRun(its[0].run_id, "child", 42, {"city": "Oslo"}),
            StartChildRun(its[1].run_id, "child", 42, {"city": "Rome"}),
        ]


class TestInputs:
    def test_from_a_job_parameter(self) -> None:
        sim = Sim.create(job("{{job.parameters.cities}}"))
        sim.ctx = ReferenceContext(parameters={"cities": '["Oslo", "Rome"]'})
        sim.start_run()
        assert [it.input for it in sim.iterations("each")] == ['"Oslo"', '"Rome"']
        assert sim.latest("each").resolved_values == {"for_each_task": {"inputs": '["Oslo", "Rome"]'}}

    def test_from_the_run_job_parameters_without_a_context(self) -> None:
        sim = Sim.create(job("{{job.parameters.n}}"), job_parameters={"n": "[1,2]"})
        sim.start_run()
        assert [it.input for it in sim.iterations("each")] == ["1", "2"]

    def test_from_a_task_value(self) -> None:
        settings = {
            "tasks": [
                task("list"),
                for_each("each", "{{tasks.list.values.tables}}", deps=["list"], concurrency=5),
            ]
        }
        sim = Sim.create(settings)
        sim.ctx = ReferenceContext(task_values={"list": {"tables": ["t1", {"name": "t2", "full": True}]}})
        sim.start_run()
        sim.run_task("list")
        assert [it.input for it in sim.iterations("each")] == ['"t1"', '{"name":"t2","full":true}']
        assert sim.active_iterations("each") == [0, 1]

    def test_an_array_given_as_json_in_the_settings(self) -> None:
        settings = job()
        settings["tasks"][0]["for_each_task"]["inputs"] = [{"id": 1}]
        sim = Sim.start(settings)
        assert [it.input for it in sim.iterations("each")] == ['{"id":1}']

    @pytest.mark.parametrize(
        ("inputs", "parameters", "message"),
        [
            ("not json", {}, r"must be a JSON array, and 'not json' is not valid JSON \(Expecting value"),
            ('{"a": 1}', {}, r"""must be a JSON array, and '\{"a": 1\}' is a JSON object\.$"""),
            ('"abc"', {}, r"""must be a JSON array, and '"abc"' is a JSON string\.$"""),
            ("3", {}, r"must be a JSON array, and '3' is a JSON number\.$"),
            (
                "{{job.parameters.p}}",
                {"p": "x,y"},
                r"must be a JSON array, and '\{\{job.parameters.p\}\}' \(resolved to 'x,y'\) "
                r"is not valid JSON",
            ),
            (
                "{{job.parameters.missing}}",
                {},
                r"^Cannot compute the for_each_task inputs: Cannot resolve \{\{job.parameters.missing\}\}: "
                r"the run has no job parameter 'missing'\.$",
            ),
        ],
    )
    def test_invalid_inputs_fail_the_for_each_naming_the_value(
        self, inputs: str, parameters: dict[str, str], message: str
    ) -> None:
        sim = Sim.create(job(inputs))
        sim.ctx = ReferenceContext(parameters=parameters)
        sim.start_run()

        each = sim.latest("each")
        assert (each.life_cycle, each.result) == (T, FAILED)
        assert (
            each.termination is not None
            and each.termination.code is TerminationCode.INVALID_RUN_CONFIGURATION
        )
        assert re.search(message, each.state_message), each.state_message
        assert sim.iterations("each") == []
        assert sim.state("after") == (T, Result.UPSTREAM_FAILED)
        assert sim.run_state() == (T, FAILED)

    def test_too_many_inputs(self) -> None:
        sim = Sim.start(job("[" + ",".join(["0"] * 5001) + "]"))
        assert sim.state("each") == (T, FAILED)
        assert (
            "have 5001 items; a for-each task runs at most 5000 iterations"
            in sim.latest("each").state_message
        )


class TestStopping:
    def test_cancelling_the_run_kills_launched_iterations_and_cancels_the_rest(self) -> None:
        sim = Sim.start(job("[1,2,3]"))
        sim.iteration_started("each", 0)
        its = sim.iterations("each")

        step = sim.cancel()

        assert step.commands == (
            KillTask(its[0].run_id, "work", CANCELED),
            KillTask(its[1].run_id, "work", CANCELED),
        )
        assert sim.iteration_states("each")[2] == (T, CANCELED)
        assert sim.state("each") == (R, None)  # waits for its killed iterations
        assert sim.run.life_cycle is LifeCycle.TERMINATING

        sim.iteration_ended("each", 0, FAILED, "SIGTERM")
        sim.apply(TaskEnded(its[1].run_id, CANCELED))

        assert sim.iteration_states("each") == [(T, CANCELED)] * 3
        each = sim.latest("each")
        assert (each.life_cycle, each.result) == (T, CANCELED)
        assert each.termination is not None and each.termination.code is TerminationCode.USER_CANCELED
        assert len(sim.iterations("each")) == 3  # no retries
        assert sim.run_state() == (T, CANCELED)

    def test_cancelling_the_for_each_task(self) -> None:
        sim = Sim.start(job("[1,2,3]"))
        sim.run_iteration("each", 0)
        running = sim.iteration("each", 1)  # 0 done, 1 and 2 launched

        step = sim.cancel_task("each")

        assert sim.commands_of(KillTask, step) == [
            KillTask(running.run_id, "work", CANCELED),
            KillTask(sim.iteration("each", 2).run_id, "work", CANCELED),
        ]
        sim.iteration_ended("each", 1, CANCELED)
        sim.iteration_ended("each", 2, OK)  # finished before the kill landed
        assert sim.state("each") == (T, CANCELED)
        assert (
            sim.latest("each").state_message == "Canceled: 2 of 3 iterations succeeded before it was stopped."
        )
        assert sim.state("after") == (T, Result.UPSTREAM_CANCELED)

    def test_cancelling_one_iteration_frees_its_slot_and_fails_the_for_each_in_the_end(self) -> None:
        sim = Sim.start(job("[1,2,3]", concurrency=1))
        step = sim.apply(CancelTask(sim.iteration("each", 0).run_id))
        assert step.commands == (KillTask(sim.iteration("each", 0).run_id, "work", CANCELED),)
        step = sim.iteration_ended("each", 0, CANCELED)
        assert sim.active_iterations("each") == [1]
        assert len(iterations_of(sim.tasks, sim.latest("each").run_id, all_attempts=True)) == 3  # no retry
        sim.run_iteration("each", 1)
        sim.run_iteration("each", 2)
        assert sim.state("each") == (T, FAILED)

    def test_a_blocked_iteration_can_be_cancelled_before_it_starts(self) -> None:
        sim = Sim.start(job("[1,2]", concurrency=1))
        sim.apply(CancelTask(sim.iteration("each", 1).run_id))
        assert sim.iteration_states("each") == [(P, None), (T, CANCELED)]

    def test_an_iteration_that_runs_too_long_is_killed_and_retried_on_timeout(self) -> None:
        sim = Sim.start(job("[1]", timeout_seconds=30, max_retries=1, retry_on_timeout=True))
        step = sim.iteration_started("each", 0)
        assert step.commands == (WakeAt(T0 + 30_000),)
        assert next_deadline(sim.run, sim.tasks, sim.dag, sim.now) == T0 + 30_000

        step = sim.tick(30_000)
        first = sim.iteration("each", 0)
        assert step.commands == (KillTask(first.run_id, "work", TIMEDOUT),)
        step = sim.iteration_ended("each", 0, FAILED)
        assert (sim.attempts_of_iteration("each", 0)[0].result, sim.iteration("each", 0).life_cycle) == (
            TIMEDOUT,
            P,
        )

    def test_the_for_each_own_timeout_stops_its_iterations(self) -> None:
        settings = job("[1,2,3]")
        settings["tasks"][0]["timeout_seconds"] = 60
        sim = Sim.start(settings)
        sim.iteration_started("each", 0)
        assert sim.run.wake_at == T0 + 60_000

        step = sim.tick(60_000)

        its = sim.iterations("each")
        assert step.commands == (
            KillTask(its[0].run_id, "work", TIMEDOUT),
            KillTask(its[1].run_id, "work", TIMEDOUT),
        )
        assert sim.iteration_states("each")[2] == (T, CANCELED)
        sim.iteration_ended("each", 0, CANCELED)
        assert sim.iteration("each", 0).state_message == "Timed out: the for-each task timed out."
        sim.iteration_ended("each", 1, CANCELED)
        assert sim.state("each") == (T, TIMEDOUT)
        assert len(sim.attempts("each")) == 1
        assert sim.run_state() == (T, FAILED)  # the leaf 'after' was upstream-failed

    def test_the_job_timeout_stops_a_for_each(self) -> None:
        settings = job("[1,2]")
        settings["timeout_seconds"] = 10
        sim = Sim.start(settings)
        step = sim.tick(10_000)
        assert len(sim.commands_of(KillTask, step)) == 2
        sim.iteration_ended("each", 0, OK)
        sim.iteration_ended("each", 1, FAILED)
        assert sim.state("each") == (T, TIMEDOUT)
        assert sim.run_state() == (T, TIMEDOUT)


class TestAtLeastOnce:
    def test_duplicate_and_stale_iteration_events_are_no_ops(self) -> None:
        sim = Sim.start(job("[1]"))
        it = sim.iteration("each", 0)
        sim.apply(TaskStarted(it.run_id))
        assert sim.apply(TaskStarted(it.run_id)).tasks == {}
        sim.apply(TaskEnded(it.run_id, OK))
        run, tasks = sim.run, dict(sim.tasks)
        step = sim.apply(TaskEnded(it.run_id, FAILED))
        assert (step.run, step.tasks, step.commands) == (run, {}, ())
        assert sim.tasks == tasks

    def test_the_for_each_task_run_takes_no_process_events(self) -> None:
        sim = Sim.start(job("[1]"))
        each = sim.latest("each").run_id
        assert sim.apply(TaskStarted(each)).tasks == {}  # already RUNNING: stale
        with pytest.raises(InvalidState, match=r"is a for_each_task: it is never launched"):
            sim.apply(TaskEnded(each, OK))


class TestReading:
    def test_stats(self) -> None:
        sim = Sim.start(job("[1,2,3,4]", max_retries=1, min_retry_interval_millis=1_000))
        each = sim.latest("each").run_id

        def counts() -> dict[str, int]:
            stats = for_each_stats(sim.tasks, each)["task_run_stats"]
            return {k.removesuffix("_iterations"): v for k, v in stats.items()}

        assert counts() == dict(total=4, scheduled=2, active=2, completed=0, succeeded=0, failed=0)
        sim.run_iteration("each", 0)
        sim.run_iteration("each", 1, FAILED, "boom")  # waits for its retry
        assert counts() == dict(total=4, scheduled=3, active=2, completed=1, succeeded=1, failed=0)
        sim.tick(1_000)
        sim.run_iteration("each", 1, FAILED, "boom")
        sim.run_iteration("each", 2, FAILED, "boom")
        sim.tick(1_000)
        sim.run_iteration("each", 2, FAILED, "boom")
        sim.run_iteration("each", 3)
        assert counts() == dict(total=4, scheduled=4, active=0, completed=4, succeeded=2, failed=2)
        assert for_each_stats(sim.tasks, each)["error_message_stats"] == [
            {"error_message": "boom", "count": 2, "termination_category": "RUN_EXECUTION_ERROR"}
        ]

    def test_node_of_an_iteration_is_the_nested_task(self) -> None:
        sim = Sim.start(job(max_retries=3))
        it = sim.iteration("each", 0)
        node = node_of(sim.dag, sim.tasks, it)
        assert node is not None and node.key == "work" and node.retry.max_retries == 3
        assert node.settings is not None and node.settings["notebook_task"] == {"notebook_path": "/nb/work"}
        assert node_of(sim.dag, sim.tasks, sim.latest("each")) is sim.dag["each"]

    def test_a_retry_deadline_of_an_iteration_wakes_the_run(self) -> None:
        sim = Sim.start(job("[1]", max_retries=1, min_retry_interval_millis=5_000))
        sim.run_iteration("each", 0, FAILED)
        assert next_deadline(sim.run, sim.tasks, sim.dag, sim.now) == T0 + 5_000
        assert sim.run.wake_at == T0 + 5_000
        sim.tick(5_000)
        sim.run_iteration("each", 0)
        assert sim.run.wake_at == 0
        assert sim.commands[-1] == StartTask(sim.latest("after").run_id, "after", 0)
        sim.run_task("after")
        assert sim.commands[-1] == RunFinished(RUN_ID, OK)
