"""Queueing under max_concurrent_runs: Enqueue, Dequeue, Skip, and cancelling a queued run. The service
decides (it sees every run of the job); the engine only moves the run."""

from __future__ import annotations

import pytest

from core.engine import (
    Advance,
    CancelRun,
    Dequeue,
    Enqueue,
    Event,
    LifeCycle,
    Result,
    RunFinished,
    RunStarted,
    Skip,
    StartTask,
    Step,
    TerminationCode,
    TerminationType,
)
from tests.unit.engine.harness import RUN_ID, T0, Sim, task

Q, P, R, T = LifeCycle.QUEUED, LifeCycle.PENDING, LifeCycle.RUNNING, LifeCycle.TERMINATED
JOB = {"timeout_seconds": 60, "tasks": [task("a"), task("b", ["a"])]}
WHY = "Queued: the job already has 1 active run (max_concurrent_runs 1)."


def queued() -> Sim:
    sim = Sim.create(JOB)
    sim.apply(Enqueue(WHY))
    return sim


class TestEnqueue:
    def test_a_new_run_waits_in_the_queue_with_no_task_runs(self) -> None:
        sim = Sim.create(JOB)
        step = sim.apply(Enqueue(WHY))
        assert sim.run.life_cycle is Q
        assert (sim.run.queue_reason, sim.run.state_message) == (WHY, WHY)
        assert (step.tasks, step.commands) == ({}, ())
        assert sim.run.start_time == 0 and sim.run.wake_at == 0  # no job timeout while queued

    def test_time_passing_changes_nothing(self) -> None:
        sim = queued()
        sim.now += 3_600_000
        assert sim.apply(Advance()) == Step(run=sim.run)
        assert sim.apply(RunStarted()) == Step(run=sim.run)  # a queued run starts only through Dequeue

    def test_again_with_a_new_reason_updates_it(self) -> None:
        sim = queued()
        assert sim.apply(Enqueue(WHY)) == Step(run=sim.run)  # a duplicate
        sim.apply(Enqueue("Queued: 3 runs ahead."))
        assert (sim.run.life_cycle, sim.run.queue_reason) == (Q, "Queued: 3 runs ahead.")

    def test_a_run_that_started_cannot_be_queued(self) -> None:
        sim = Sim.start(JOB)
        assert sim.apply(Enqueue(WHY)) == Step(run=sim.run)


class TestDequeue:
    def test_the_run_starts_as_run_started_would(self) -> None:
        sim = queued()
        sim.now = T0 + 90_000

        step = sim.apply(Dequeue())

        assert sim.run.life_cycle is R
        assert (sim.run.created_time, sim.run.start_time) == (T0, T0 + 90_000)  # queue_duration = 90 s
        assert (sim.run.queue_reason, sim.run.state_message) == (None, "")
        assert [t.task_key for t in step.tasks.values()] == ["a", "b"]
        assert step.commands[0] == StartTask(sim.latest("a").run_id, "a", 0)
        assert sim.run.wake_at == T0 + 90_000 + 60_000  # the job timeout counts from the start

    def test_twice_is_a_no_op(self) -> None:
        sim = queued()
        sim.apply(Dequeue())
        assert sim.apply(Dequeue()) == Step(run=sim.run)

    def test_only_a_queued_run_is_dequeued(self) -> None:
        sim = Sim.create(JOB)
        assert sim.apply(Dequeue()) == Step(run=sim.run)


class TestSkip:
    @pytest.mark.parametrize("before", [[], [Enqueue(WHY)]], ids=["new", "queued"])
    def test_a_skipped_run_never_runs(self, before: list[Event]) -> None:
        sim = Sim.create(JOB)
        for event in before:
            sim.apply(event)
        sim.now += 5

        step = sim.apply(Skip("Skipping this run: the job already has 1 active run (max_concurrent_runs 1)."))

        assert sim.run_state() == (LifeCycle.SKIPPED, Result.MAXIMUM_CONCURRENT_RUNS_REACHED)
        assert sim.run.termination is not None
        assert (sim.run.termination.code, sim.run.termination.type) == (
            TerminationCode.MAX_CONCURRENT_RUNS_EXCEEDED,
            TerminationType.CLIENT_ERROR,
        )
        assert sim.run.state_message.startswith("Skipping this run")
        assert (sim.run.end_time, sim.run.queue_reason) == (T0 + 5, None)
        assert step.tasks == {}
        assert step.commands == (RunFinished(RUN_ID, Result.MAXIMUM_CONCURRENT_RUNS_REACHED),)

    def test_a_started_run_is_not_skipped(self) -> None:
        sim = Sim.start(JOB)
        assert sim.apply(Skip("too late")) == Step(run=sim.run)


class TestCancelQueued:
    def test_a_queued_run_ends_canceled_at_once(self) -> None:
        sim = queued()
        step = sim.apply(CancelRun())
        assert sim.run_state() == (T, Result.CANCELED)
        assert sim.run.termination is not None and sim.run.termination.code is TerminationCode.USER_CANCELED
        assert (sim.run.queue_reason, sim.run.end_time) == (None, T0)
        assert step.commands == (RunFinished(RUN_ID, Result.CANCELED),)
        assert sim.apply(Dequeue()) == Step(run=sim.run)  # a late promotion finds it over
