"""The state machine driven through whole runs: chains, fan-out/fan-in, failures, run results, the
transition tables, and the at-least-once guarantees (duplicate and stale events change nothing)."""

from __future__ import annotations

import pytest

from core.engine import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    Advance,
    CancelRun,
    IllegalTransition,
    LifeCycle,
    Result,
    Run,
    RunFinished,
    RunStarted,
    StartTask,
    Step,
    TaskEnded,
    TaskRun,
    TaskStarted,
    TerminationCode,
    TerminationType,
    apply,
    check_run_transition,
    check_task_transition,
    latest_attempts,
)
from core.errors import InvalidParameterValue, NotFound
from tests.unit.engine.harness import RUN_ID, T0, Sim, task

B, P, R, T = LifeCycle.BLOCKED, LifeCycle.PENDING, LifeCycle.RUNNING, LifeCycle.TERMINATED
OK, FAILED = Result.SUCCESS, Result.FAILED

CHAIN = {"tasks": [task("a"), task("b", ["a"]), task("c", ["b"])]}
DIAMOND = {
    "tasks": [
        task("extract"),
        task("left", ["extract"]),
        task("middle", ["extract"]),
        task("right", ["extract"]),
        task("load", ["left", "middle", "right"]),
    ]
}


class TestRunStarted:
    def test_creates_one_blocked_task_run_per_task_and_starts_the_roots(self) -> None:
        sim = Sim.create(CHAIN)
        step = sim.apply(RunStarted())

        assert step.run.life_cycle is R
        assert step.run.start_time == T0
        assert [t.task_key for t in step.tasks.values()] == ["a", "b", "c"]
        a, b, c = step.tasks.values()
        assert (a.run_id, b.run_id, c.run_id) == (1000, 1001, 1002)
        for t in (a, b, c):
            assert t.parent_run_id == RUN_ID
            assert t.original_attempt_run_id == t.run_id
            assert t.attempt_number == 0
        assert (a.life_cycle, a.queued_time) == (P, T0)
        assert (b.life_cycle, b.state_message) == (B, "Waiting for 'a'.")
        assert step.commands == (StartTask(1000, "a", 0),)

    def test_twice_is_a_no_op(self) -> None:
        sim = Sim.start(CHAIN)
        run, tasks = sim.run, dict(sim.tasks)

        step = sim.apply(RunStarted())

        assert step == Step(run=run)
        assert sim.tasks == tasks

    def test_a_queued_run_must_be_promoted_first(self) -> None:
        sim = Sim.create(CHAIN, life_cycle=LifeCycle.QUEUED)
        assert sim.apply(RunStarted()) == Step(run=sim.run)  # no-op: only a PENDING run starts

    def test_a_job_with_no_tasks_succeeds_at_once(self) -> None:
        sim = Sim.start({"tasks": []})
        assert sim.run_state() == (T, OK)
        assert sim.last is not None and sim.last.commands == (RunFinished(RUN_ID, OK),)


class TestRecovery:
    def test_advance_recreates_task_runs_lost_between_two_writes(self) -> None:
        # The run was written RUNNING but its task runs were not (a crash between the two writes).
        sim = Sim.create({"timeout_seconds": 60, "tasks": [task("a"), task("b", ["a"])]})
        sim.run = Run(run_id=RUN_ID, job_id=7, life_cycle=R)  # no start or created time either

        step = sim.apply(Advance())

        assert [t.task_key for t in step.tasks.values()] == ["a", "b"]
        assert sim.started_keys(step) == ["a"]
        assert sim.run.life_cycle is R  # no start time: the job timeout cannot be counted, so it is not


class TestLinearChain:
    def test_each_task_starts_when_the_previous_one_succeeds(self) -> None:
        sim = Sim.start(CHAIN)
        assert [sim.state(k) for k in "abc"] == [(P, None), (B, None), (B, None)]

        step = sim.started("a")
        assert sim.latest("a").start_time == T0 and step.commands == ()
        sim.now += 5_000
        step = sim.ended("a")
        assert sim.started_keys(step) == ["b"]
        assert sim.latest("a").end_time == T0 + 5_000
        assert sim.code("a") is TerminationCode.SUCCESS

        assert sim.started_keys(sim.run_task("b")) == ["c"]
        step = sim.run_task("c")

        assert sim.run_state() == (T, OK)
        assert sim.run.end_time == sim.now
        assert sim.run.termination is not None
        assert (sim.run.termination.code, sim.run.termination.type) == (
            TerminationCode.SUCCESS,
            TerminationType.SUCCESS,
        )
        assert step.commands == (RunFinished(RUN_ID, OK),)

    def test_a_failure_skips_everything_downstream_and_fails_the_run(self) -> None:
        sim = Sim.start(CHAIN)
        step = sim.run_task("a", FAILED, "ZeroDivisionError: division by zero")

        assert sim.results() == {"a": FAILED, "b": Result.UPSTREAM_FAILED, "c": Result.UPSTREAM_FAILED}
        assert sim.latest("b").state_message == "Not run: upstream 'a' failed (run_if ALL_SUCCESS)."
        assert sim.code("c") is TerminationCode.SKIPPED
        assert sim.run_state() == (T, FAILED)
        assert sim.run.termination is not None
        assert sim.run.termination.code is TerminationCode.RUN_EXECUTION_ERROR
        assert sim.run.state_message == (
            "Task 'a' failed: ZeroDivisionError: division by zero. Downstream tasks 'b', 'c' did not run."
        )
        assert step.commands == (RunFinished(RUN_ID, FAILED),)


class TestFanOutFanIn:
    def test_branches_run_in_parallel_and_the_join_waits_for_all(self) -> None:
        sim = Sim.start(DIAMOND)
        step = sim.run_task("extract")
        assert sim.started_keys(step) == ["left", "middle", "right"]

        for key in ("left", "middle", "right"):
            sim.started(key)
        assert sim.started_keys(sim.ended("middle")) == []
        assert sim.started_keys(sim.ended("right")) == []
        assert sim.state("load") == (B, None)
        assert sim.started_keys(sim.ended("left")) == ["load"]

        sim.run_task("load")
        assert sim.run_state() == (T, OK)

    def test_one_failed_branch_fails_the_join_only_after_the_others_end(self) -> None:
        sim = Sim.start(DIAMOND)
        sim.run_task("extract")
        for key in ("left", "middle", "right"):
            sim.started(key)

        sim.ended("left", FAILED)
        assert sim.state("load") == (B, None)  # evaluated only once every dependency is final
        sim.ended("middle")
        sim.ended("right")

        assert sim.state("load") == (T, Result.UPSTREAM_FAILED)
        assert sim.run_state() == (T, FAILED)


class TestTaskEnded:
    def test_an_attempt_that_fails_to_launch_ends_from_pending_with_its_code(self) -> None:
        sim = Sim.start({"tasks": [task("a", max_retries=1, min_retry_interval_millis=10_000)]})
        sim.now += 3_000
        a = sim.latest("a").run_id

        step = sim.apply(TaskEnded(a, FAILED, "cluster did not start", TerminationCode.CLUSTER_ERROR))

        failed = sim.attempts("a")[0]
        assert (failed.result, failed.start_time, failed.end_time) == (FAILED, 0, T0 + 3_000)
        assert failed.termination is not None
        assert (failed.termination.code, failed.termination.type) == (
            TerminationCode.CLUSTER_ERROR,
            TerminationType.CLOUD_FAILURE,
        )
        assert failed.error == "cluster did not start"
        # never started: the retry interval counts from when it was queued
        assert sim.latest("a").retry_at == T0 + 10_000
        assert step.commands[-1].at_ms == T0 + 10_000  # type: ignore[union-attr]

    def test_exit_code_and_error_are_recorded(self) -> None:
        sim = Sim.start({"tasks": [task("a")]})
        sim.started("a")
        sim.apply(TaskEnded(sim.latest("a").run_id, FAILED, "exit status 3", exit_code=3))
        latest = sim.latest("a")
        assert (latest.exit_code, latest.error, latest.state_message) == (3, "exit status 3", "exit status 3")

    def test_a_failure_without_a_message_still_says_something(self) -> None:
        sim = Sim.start({"tasks": [task("a")]})
        sim.run_task("a", FAILED)
        assert sim.latest("a").state_message == "The task failed."
        assert sim.run.state_message == "Task 'a' failed: The task failed."


class TestRunResult:
    def test_success_with_failures_when_only_a_non_leaf_fails(self) -> None:
        sim = Sim.start({"tasks": [task("a"), task("cleanup", ["a"], run_if="ALL_DONE")]})
        sim.run_task("a", FAILED, "boom")
        sim.run_task("cleanup")

        assert sim.run_state() == (T, Result.SUCCESS_WITH_FAILURES)
        assert sim.run.termination is not None
        assert sim.run.termination.code is TerminationCode.SUCCESS_WITH_FAILURES
        assert sim.run.state_message == "Task 'a' failed: boom. The leaf tasks succeeded."

    def test_a_failed_leaf_fails_the_run_even_when_another_leaf_succeeds(self) -> None:
        sim = Sim.start({"tasks": [task("a"), task("b")]})
        sim.run_task("a")
        sim.run_task("b", FAILED)
        assert sim.run_state() == (T, FAILED)

    def test_excluded_leaves_count_as_fine(self) -> None:
        sim = Sim.start({"tasks": [task("a"), task("on_failure", ["a"], run_if="AT_LEAST_ONE_FAILED")]})
        sim.run_task("a")
        assert sim.results() == {"a": OK, "on_failure": Result.EXCLUDED}
        assert sim.run_state() == (T, OK)

    def test_a_single_task_job_ends_with_its_task_result(self) -> None:
        sim = Sim.start({"tasks": [task("a", timeout_seconds=10)]})
        sim.started("a")
        sim.tick(10_000)
        sim.ended("a", Result.CANCELED)  # the launcher reports the kill; the engine knows it was a timeout
        assert sim.state("a") == (T, Result.TIMEDOUT)
        assert sim.run_state() == (T, Result.TIMEDOUT)


class TestAtLeastOnce:
    """Queues deliver at least once and out of order: repeated or stale events change nothing."""

    def test_duplicate_task_ended_is_a_no_op(self) -> None:
        sim = Sim.start(CHAIN)
        sim.started("a")
        first = sim.latest("a").run_id
        sim.apply(TaskEnded(first, OK))
        run, tasks = sim.run, dict(sim.tasks)

        step = sim.apply(TaskEnded(first, FAILED, "late and wrong"))

        assert step == Step(run=run)
        assert sim.tasks == tasks

    def test_duplicate_task_started_is_a_no_op(self) -> None:
        sim = Sim.start(CHAIN)
        sim.started("a")
        run = sim.run
        assert sim.started("a") == Step(run=run)
        assert sim.latest("a").start_time == T0

    def test_task_started_after_the_attempt_ended_is_a_no_op(self) -> None:
        sim = Sim.start(CHAIN)
        a = sim.latest("a").run_id
        sim.apply(TaskEnded(a, OK))  # delivered before TaskStarted
        run = sim.run
        assert sim.apply(TaskStarted(a)) == Step(run=run)
        assert sim.state("a") == (T, OK)

    def test_events_for_a_finished_run_are_no_ops(self) -> None:
        sim = Sim.start({"tasks": [task("a")]})
        sim.run_task("a")
        run = sim.run
        for event in (RunStarted(), CancelRun(), Advance(), TaskEnded(sim.latest("a").run_id, FAILED)):
            assert sim.apply(event) == Step(run=run)

    def test_advance_with_nothing_to_do_changes_nothing(self) -> None:
        sim = Sim.start(CHAIN)
        run = sim.run
        assert sim.apply(Advance()) == Step(run=run)

    def test_the_input_records_are_not_modified(self) -> None:
        sim = Sim.start(CHAIN)
        tasks = dict(sim.tasks)
        before = dict(tasks)
        apply(sim.run, tasks, sim.dag, TaskEnded(sim.latest("a").run_id, OK), sim.now, lambda: 1)
        assert tasks == before


class TestBadEvents:
    def test_an_unknown_task_run_id_is_not_found(self) -> None:
        sim = Sim.start(CHAIN)
        with pytest.raises(NotFound, match=r"^Task run 424242 does not exist\.$"):
            sim.apply(TaskEnded(424242, OK))

    def test_a_task_cannot_start_before_its_dependencies(self) -> None:
        sim = Sim.start(CHAIN)
        b = sim.latest("b").run_id
        with pytest.raises(
            IllegalTransition, match=rf"^task run {b} \(task 'b'\) cannot go from BLOCKED to RUNNING$"
        ):
            sim.apply(TaskStarted(b))

    def test_a_task_that_never_started_cannot_end(self) -> None:
        sim = Sim.start(CHAIN)
        b = sim.latest("b").run_id
        with pytest.raises(
            IllegalTransition,
            match=rf"^task run {b} \(task 'b'\) cannot go from BLOCKED to TERMINATED: it was never started$",
        ):
            sim.apply(TaskEnded(b, OK))

    @pytest.mark.parametrize(
        "result", [Result.EXCLUDED, Result.UPSTREAM_FAILED, Result.SUCCESS_WITH_FAILURES]
    )
    def test_a_launcher_reports_only_attempt_results(self, result: Result) -> None:
        sim = Sim.start(CHAIN)
        with pytest.raises(InvalidParameterValue, match=f"cannot end with result {result}"):
            sim.ended("a", result)

    def test_not_an_event(self) -> None:
        sim = Sim.start(CHAIN)
        with pytest.raises(TypeError, match="str is not an engine event"):
            apply(sim.run, sim.tasks, sim.dag, "go", sim.now, lambda: 1)  # type: ignore[arg-type]


class TestTransitionTables:
    @pytest.mark.parametrize("table", [TASK_TRANSITIONS, RUN_TRANSITIONS], ids=["task", "run"])
    def test_every_life_cycle_has_a_row_and_final_states_are_dead_ends(
        self, table: dict[LifeCycle, frozenset[LifeCycle]]
    ) -> None:
        assert set(table) == set(LifeCycle)
        for state in LifeCycle:
            if state.is_final:
                # the one way out of a final state: a repair reopens a TERMINATED run
                reopen = frozenset({R}) if table is RUN_TRANSITIONS and state is T else frozenset()
                assert table[state] == reopen

    def test_illegal_task_transition_names_the_record_and_both_states(self) -> None:
        done = TaskRun(task_key="b", run_id=123, parent_run_id=1, life_cycle=T, result=OK)
        with pytest.raises(
            IllegalTransition, match=r"^task run 123 \(task 'b'\) cannot go from TERMINATED to RUNNING$"
        ):
            check_task_transition(done, R)

    def test_illegal_run_transition_names_the_run_and_both_states(self) -> None:
        with pytest.raises(IllegalTransition, match=r"^run 5 cannot go from SKIPPED to RUNNING$"):
            check_run_transition(Run(run_id=5, job_id=1, life_cycle=LifeCycle.SKIPPED), R)

    def test_only_a_repair_reopens_a_finished_run(self) -> None:
        done = Run(run_id=5, job_id=1, life_cycle=T)
        with pytest.raises(
            IllegalTransition,
            match=r"^run 5 cannot go from TERMINATED to RUNNING: only a repair \(runs/repair\) reopens",
        ):
            check_run_transition(done, R)
        check_run_transition(done, R, repair=True)

    @pytest.mark.parametrize(
        ("before", "after"),
        [(B, P), (B, T), (LifeCycle.WAITING_FOR_RETRY, P), (P, R), (P, T), (R, T)],
    )
    def test_legal_task_transitions(self, before: LifeCycle, after: LifeCycle) -> None:
        check_task_transition(TaskRun(task_key="a", run_id=1, parent_run_id=1, life_cycle=before), after)


def test_latest_attempts_picks_the_highest_attempt_number() -> None:
    first = TaskRun(task_key="a", run_id=1, parent_run_id=9, attempt_number=0, life_cycle=T, result=FAILED)
    second = TaskRun(task_key="a", run_id=2, parent_run_id=9, attempt_number=1)
    other = TaskRun(task_key="b", run_id=3, parent_run_id=9)
    assert latest_attempts({2: second, 1: first, 3: other}) == {"a": second, "b": other}
    assert latest_attempts([first, second]) == {"a": second}
