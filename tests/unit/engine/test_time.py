"""Everything that happens because time passes: retries (due from the START of the failed attempt),
task timeouts, the job timeout, and the WakeAt commands that bring the handler back."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine import KillTask, LifeCycle, Result, RunFinished, RunStarted, StartTask, WakeAt
from tests.unit.engine.harness import T0, Sim, task

P, R, T, W = LifeCycle.PENDING, LifeCycle.RUNNING, LifeCycle.TERMINATED, LifeCycle.WAITING_FOR_RETRY
OK, FAILED, TIMEDOUT = Result.SUCCESS, Result.FAILED, Result.TIMEDOUT


def retrying(**fields: Any) -> dict[str, Any]:
    return {"tasks": [task("a", **fields), task("b", ["a"])]}


class TestRetries:
    def test_a_failed_attempt_is_retried_after_the_interval_from_its_start(self) -> None:
        sim = Sim.start(retrying(max_retries=2, min_retry_interval_millis=60_000))
        sim.started("a")
        sim.now += 20_000  # the attempt ran 20 s
        step = sim.ended("a", FAILED, "boom")

        first, retry = sim.attempts("a")
        assert (first.life_cycle, first.result, first.state_message) == (T, FAILED, "boom")
        assert (retry.life_cycle, retry.attempt_number, retry.retry_at) == (W, 1, T0 + 60_000)
        assert retry.run_id != first.run_id
        assert retry.original_attempt_run_id == first.run_id
        assert retry.state_message == "Attempt 0 failed; retry 1 of 2 is due at 2026-01-01T00:01:00Z."
        assert step.commands == (WakeAt(T0 + 60_000),)
        assert sim.run.wake_at == T0 + 60_000
        assert sim.state("b") == (LifeCycle.BLOCKED, None)  # b sees only the latest attempt

        assert sim.tick(39_999).commands == (WakeAt(T0 + 60_000),)  # early: nothing due, wake again
        step = sim.tick(1)
        assert step.commands == (StartTask(retry.run_id, "a", 1),)
        assert sim.state("a") == (P, None)
        assert sim.latest("a").queued_time == T0 + 60_000
        assert sim.run.wake_at == 0

        sim.run_task("a")
        sim.run_task("b")
        assert sim.run_state() == (T, OK)

    def test_a_retry_already_due_starts_in_the_same_step(self) -> None:
        sim = Sim.start(retrying(max_retries=1, min_retry_interval_millis=1_000))
        sim.started("a")
        sim.now += 5_000
        step = sim.ended("a", FAILED)
        assert sim.state("a") == (P, None)
        assert step.commands == (StartTask(sim.latest("a").run_id, "a", 1),)

    def test_no_interval_means_at_once(self) -> None:
        sim = Sim.start(retrying(max_retries=1))
        sim.run_task("a", FAILED)
        assert sim.started_keys() == ["a"]

    def test_retries_run_out(self) -> None:
        sim = Sim.start(retrying(max_retries=2))
        for _ in range(3):
            sim.run_task("a", FAILED)
        assert [t.result for t in sim.attempts("a")] == [FAILED, FAILED, FAILED]
        assert sim.state("b") == (T, Result.UPSTREAM_FAILED)
        assert sim.run_state() == (T, FAILED)

    def test_minus_one_retries_forever(self) -> None:
        sim = Sim.start(retrying(max_retries=-1))
        for _ in range(50):
            sim.run_task("a", FAILED)
        assert sim.latest("a").attempt_number == 50
        assert sim.latest("a").state_message == "Starting retry 50."
        sim.run_task("a")
        sim.run_task("b")
        assert sim.run_state() == (T, OK)

    def test_a_success_after_retries_counts_as_success(self) -> None:
        sim = Sim.start({"tasks": [task("a", max_retries=1)]})
        sim.run_task("a", FAILED)
        sim.run_task("a")
        assert sim.run_state() == (T, OK)  # the failed first attempt is history, not a failure

    @pytest.mark.parametrize(("retry_on_timeout", "attempts"), [(False, 1), (True, 2)])
    def test_a_timeout_is_retried_only_with_retry_on_timeout(
        self, retry_on_timeout: bool, attempts: int
    ) -> None:
        sim = Sim.start(retrying(max_retries=3, timeout_seconds=10, retry_on_timeout=retry_on_timeout))
        sim.started("a")
        sim.tick(10_000)
        sim.ended("a", Result.CANCELED)
        assert sim.attempts("a")[0].result is TIMEDOUT
        assert len(sim.attempts("a")) == attempts

    def test_canceled_attempts_are_not_retried(self) -> None:
        sim = Sim.start(retrying(max_retries=3))
        sim.run_task("a", Result.CANCELED)  # e.g. its cluster was terminated by someone
        assert len(sim.attempts("a")) == 1
        assert sim.state("b") == (T, Result.UPSTREAM_CANCELED)


class TestTaskTimeout:
    def test_an_attempt_running_too_long_is_killed_and_ends_timed_out(self) -> None:
        sim = Sim.start({"tasks": [task("a", timeout_seconds=30), task("b", ["a"])]})
        sim.now += 2_000
        step = sim.started("a")
        a = sim.latest("a").run_id
        assert step.commands == (WakeAt(T0 + 32_000),)

        assert sim.tick(29_999).commands == (WakeAt(T0 + 32_000),)
        step = sim.tick(1)
        assert step.commands == (KillTask(a, "a", TIMEDOUT),)
        assert sim.latest("a").cancel_requested
        assert sim.tick(60_000).commands == ()  # killed once, not again

        sim.ended("a", FAILED, "Killed")  # however the process died, it timed out
        latest = sim.latest("a")
        assert (latest.result, latest.state_message) == (TIMEDOUT, "Killed")
        assert sim.state("b") == (T, Result.UPSTREAM_FAILED)

    def test_the_default_message_says_which_timeout(self) -> None:
        sim = Sim.start({"tasks": [task("a", timeout_seconds=30)]})
        sim.started("a")
        sim.tick(30_000)
        sim.ended("a", Result.CANCELED)
        assert sim.latest("a").state_message == "Timed out after 30 s (timeout_seconds)."

    def test_a_success_that_beats_the_kill_stays_a_success(self) -> None:
        sim = Sim.start({"tasks": [task("a", timeout_seconds=30)]})
        sim.started("a")
        sim.tick(30_000)
        sim.ended("a", OK)
        assert sim.run_state() == (T, OK)


class TestJobTimeout:
    SETTINGS = {"timeout_seconds": 60, "tasks": [task("a"), task("b"), task("c", ["a", "b"])]}

    def test_the_run_is_stopped_when_it_runs_too_long(self) -> None:
        sim = Sim.create(self.SETTINGS)
        assert sim.apply(RunStarted()).commands[-1] == WakeAt(T0 + 60_000)
        sim.started("a")
        sim.run_task("b")
        a = sim.latest("a").run_id

        step = sim.tick(60_000)

        assert step.commands == (KillTask(a, "a", TIMEDOUT),)
        assert sim.run.life_cycle is LifeCycle.TERMINATING
        assert sim.run.user_cancelled_or_timedout
        assert sim.state("c") == (T, Result.CANCELED)  # never started: canceled, not timed out
        assert sim.latest("c").state_message == "Canceled: the run timed out."

        step = sim.ended("a", Result.CANCELED)
        assert sim.results() == {"a": TIMEDOUT, "b": OK, "c": Result.CANCELED}
        assert sim.run_state() == (T, TIMEDOUT)
        assert sim.run.state_message == "Run timed out: it ran longer than 60 s (timeout_seconds)."
        assert sim.run.termination is not None
        assert sim.run.termination.code.value == "CANCELED"
        assert step.commands == (RunFinished(sim.run.run_id, TIMEDOUT),)

    def test_no_retry_after_the_run_timed_out(self) -> None:
        sim = Sim.start({"timeout_seconds": 60, "tasks": [task("a", max_retries=5, retry_on_timeout=True)]})
        sim.started("a")
        sim.tick(60_000)
        sim.ended("a", Result.CANCELED)
        assert len(sim.attempts("a")) == 1
        assert sim.run_state() == (T, TIMEDOUT)

    def test_a_waiting_retry_is_canceled(self) -> None:
        sim = Sim.start(
            {"timeout_seconds": 60, "tasks": [task("a", max_retries=1, min_retry_interval_millis=600_000)]}
        )
        sim.run_task("a", FAILED)
        assert sim.state("a") == (W, None)
        assert sim.run.wake_at == T0 + 60_000  # the job timeout comes before the retry
        step = sim.tick(60_000)
        assert sim.state("a") == (T, Result.CANCELED)
        assert sim.run_state() == (T, TIMEDOUT)
        assert step.commands == (RunFinished(sim.run.run_id, TIMEDOUT),)


def test_one_chain_of_wake_ups_follows_the_earliest_deadline() -> None:
    sim = Sim.start(
        {"timeout_seconds": 3600, "tasks": [task("a", timeout_seconds=600), task("b", timeout_seconds=60)]}
    )
    assert sim.run.wake_at == T0 + 3_600_000
    assert sim.started("a").commands == (WakeAt(T0 + 600_000),)  # earlier than the wake on its way
    assert sim.started("b").commands == (WakeAt(T0 + 60_000),)
    assert sim.ended("b").commands == ()  # the wake at +60 s is on its way and will ask for the next
    assert sim.run.wake_at == T0 + 600_000
    assert sim.tick(60_000).commands == (WakeAt(T0 + 600_000),)
    sim.ended("a")
    assert (sim.run.life_cycle, sim.run.wake_at) == (LifeCycle.TERMINATED, 0)


class TestContinuousTaskRetryMode:
    """task_retry_mode ON_FAILURE: a failed task is retried while another task is in its first attempt."""

    @staticmethod
    def two_streams(mode: str) -> dict[str, Any]:
        return {"continuous": {"task_retry_mode": mode}, "tasks": [task("a"), task("b")]}

    def test_a_failed_task_is_retried_with_a_backoff_while_another_runs(self) -> None:
        sim = Sim.start(self.two_streams("ON_FAILURE"))
        sim.started("a")
        sim.started("b")
        sim.ended("a", FAILED, "stream broke")
        retry = sim.latest("a")
        assert (retry.life_cycle, retry.attempt_number, retry.retry_at) == (W, 1, T0 + 10_000)
        assert retry.state_message.endswith(
            "retry 1 (task_retry_mode ON_FAILURE) is due at 2026-01-01T00:00:10Z."
        )
        sim.tick(10_000)
        sim.started("a")
        sim.ended("a", FAILED)
        assert sim.latest("a").retry_at == T0 + 10_000 + 20_000  # doubled

    def test_without_another_first_attempt_the_run_ends(self) -> None:
        sim = Sim.start(self.two_streams("ON_FAILURE"))
        sim.run_task("b")
        sim.started("a")
        sim.ended("a", FAILED)
        assert [t.attempt_number for t in sim.attempts("a")] == [0]
        assert sim.run_state()[0] is T

    def test_never_retries_nothing(self) -> None:
        sim = Sim.start(self.two_streams("NEVER"))
        sim.started("a")
        sim.started("b")
        sim.ended("a", FAILED)
        assert [t.attempt_number for t in sim.attempts("a")] == [0]
