"""Cancelling a whole run and cancelling one task run."""

from __future__ import annotations

from core.engine import (
    CancelRun,
    CancelTask,
    KillTask,
    LifeCycle,
    Result,
    RunFinished,
    RunStarted,
    Step,
    TaskStarted,
)
from core.engine.states import TerminationCode, TerminationType
from tests.unit.engine.harness import RUN_ID, Sim, task

B, P, R, T = LifeCycle.BLOCKED, LifeCycle.PENDING, LifeCycle.RUNNING, LifeCycle.TERMINATED
OK, FAILED, CANCELED = Result.SUCCESS, Result.FAILED, Result.CANCELED

JOB = {"tasks": [task("a"), task("b"), task("c", ["a", "b"]), task("d", ["c"])]}


class TestCancelRun:
    def test_running_attempts_are_killed_and_the_run_waits_for_them(self) -> None:
        sim = Sim.start(JOB)
        sim.started("a")  # b stays PENDING: launched, not yet reported running
        a, b = sim.latest("a").run_id, sim.latest("b").run_id

        step = sim.cancel("Stopped from the UI")

        assert step.commands == (KillTask(a, "a", CANCELED), KillTask(b, "b", CANCELED))
        assert sim.run.life_cycle is LifeCycle.TERMINATING
        assert (sim.run.cancel_requested, sim.run.user_cancelled_or_timedout) == (True, True)
        assert sim.results() == {"a": None, "b": None, "c": CANCELED, "d": CANCELED}
        assert sim.code("c") is TerminationCode.USER_CANCELED

        sim.ended("a", FAILED, "SIGTERM")  # a killed attempt ends CANCELED whatever it reports
        assert sim.run.life_cycle is LifeCycle.TERMINATING
        assert len(sim.attempts("a")) == 1  # no retry for a cancelled run
        step = sim.ended("b", CANCELED)

        assert sim.results() == {"a": CANCELED, "b": CANCELED, "c": CANCELED, "d": CANCELED}
        assert sim.latest("a").state_message == "SIGTERM"
        assert sim.run_state() == (T, CANCELED)
        assert sim.run.state_message == "Stopped from the UI"
        assert sim.run.termination is not None
        assert (sim.run.termination.code, sim.run.termination.type) == (
            TerminationCode.USER_CANCELED,
            TerminationType.SUCCESS,
        )
        assert step.commands == (RunFinished(RUN_ID, CANCELED),)

    def test_nothing_starts_while_the_run_is_terminating(self) -> None:
        sim = Sim.start({"tasks": [task("a"), task("b", ["a"], run_if="ALL_DONE")]})
        sim.started("a")
        sim.cancel()
        assert sim.state("b") == (T, CANCELED)
        sim.ended("a", OK)  # finished before the kill landed
        assert sim.started_keys() == []
        assert sim.run_state() == (T, CANCELED)
        assert sim.run.state_message == "Run canceled by user."

    def test_a_run_with_nothing_running_ends_at_once(self) -> None:
        sim = Sim.start({"tasks": [task("a", max_retries=1, min_retry_interval_millis=60_000)]})
        sim.run_task("a", FAILED)
        assert sim.state("a") == (LifeCycle.WAITING_FOR_RETRY, None)

        step = sim.cancel()

        assert sim.state("a") == (T, CANCELED)
        assert sim.run_state() == (T, CANCELED)
        assert sim.run.wake_at == 0
        assert step.commands == (RunFinished(RUN_ID, CANCELED),)

    def test_a_run_cancelled_before_it_started_never_starts(self) -> None:
        sim = Sim.create(JOB)
        step = sim.cancel()
        assert sim.run_state() == (T, CANCELED)
        assert step.tasks == {}
        assert step.commands == (RunFinished(RUN_ID, CANCELED),)
        assert sim.apply(RunStarted()) == Step(run=sim.run)

    def test_a_queued_run_can_be_cancelled(self) -> None:
        sim = Sim.create(JOB, life_cycle=LifeCycle.QUEUED)
        sim.cancel()
        assert sim.run_state() == (T, CANCELED)

    def test_cancelling_twice_is_a_no_op(self) -> None:
        sim = Sim.start(JOB)
        sim.cancel()
        run = sim.run
        assert sim.apply(CancelRun("again")) == Step(run=run)

    def test_a_late_task_started_after_cancel_is_harmless(self) -> None:
        sim = Sim.start(JOB)
        sim.cancel()
        step = sim.apply(TaskStarted(sim.latest("a").run_id))
        assert step.commands == ()
        assert sim.latest("a").cancel_requested  # the kill already sent still applies
        sim.ended("a", CANCELED)
        sim.ended("b", CANCELED)
        assert sim.run_state() == (T, CANCELED)


class TestCancelTask:
    def test_a_running_task_is_killed_and_its_dependents_are_upstream_canceled(self) -> None:
        sim = Sim.start(JOB)
        sim.started("a")
        a = sim.latest("a").run_id

        assert sim.cancel_task("a").commands == (KillTask(a, "a", CANCELED),)
        assert sim.run.life_cycle is R  # only the task is cancelled
        sim.ended("a", CANCELED)
        sim.run_task("b")

        assert sim.results() == {
            "a": CANCELED,
            "b": OK,
            "c": Result.UPSTREAM_CANCELED,
            "d": Result.UPSTREAM_CANCELED,
        }
        assert sim.code("a") is TerminationCode.USER_CANCELED
        assert sim.latest("c").state_message == "Not run: upstream 'a' canceled (run_if ALL_SUCCESS)."
        assert sim.run_state() == (T, CANCELED)

    def test_a_blocked_task_ends_canceled_at_once(self) -> None:
        sim = Sim.start(JOB)
        step = sim.cancel_task("c")
        assert sim.state("c") == (T, CANCELED)
        assert step.commands == ()
        sim.run_task("a")
        sim.run_task("b")
        assert sim.state("d") == (T, Result.UPSTREAM_CANCELED)

    def test_a_cancelled_task_is_not_retried(self) -> None:
        sim = Sim.start({"tasks": [task("a", max_retries=3)]})
        sim.started("a")
        sim.cancel_task("a")
        sim.ended("a", FAILED)  # the kill made it fail
        assert [t.result for t in sim.attempts("a")] == [CANCELED]

    def test_a_waiting_retry_is_cancelled_through_any_attempt_id(self) -> None:
        sim = Sim.start({"tasks": [task("a", max_retries=3, min_retry_interval_millis=60_000)]})
        sim.run_task("a", FAILED)
        first = sim.attempts("a")[0]
        step = sim.apply(CancelTask(first.run_id))
        assert sim.state("a") == (T, CANCELED)
        assert step.commands == (RunFinished(RUN_ID, CANCELED),)

    def test_cancelling_a_finished_task_is_a_no_op(self) -> None:
        sim = Sim.start(JOB)
        sim.run_task("a")
        run = sim.run
        assert sim.cancel_task("a") == Step(run=run)

    def test_cancelling_twice_is_a_no_op(self) -> None:
        sim = Sim.start(JOB)
        sim.started("a")
        sim.cancel_task("a")
        run = sim.run
        assert sim.cancel_task("a") == Step(run=run)
