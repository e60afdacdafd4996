"""runs/repair: new attempts of chosen tasks (and their dependents) inside a finished run, the run
reopened, `repair_history`, and everything a repair refuses."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine import (
    Dag,
    LifeCycle,
    RepairEntry,
    RepairRun,
    Result,
    RunFinished,
    Skip,
    StartTask,
    Step,
    WakeAt,
    iterations_of,
)
from core.errors import InvalidParameterValue, InvalidState
from tests.unit.engine.harness import RUN_ID, T0, Sim, condition, for_each, task

B, P, R, T = LifeCycle.BLOCKED, LifeCycle.PENDING, LifeCycle.RUNNING, LifeCycle.TERMINATED
OK, FAILED = Result.SUCCESS, Result.FAILED
UPSTREAM_FAILED = Result.UPSTREAM_FAILED

CHAIN = {"tasks": [task("a", max_retries=1), task("b", ["a"]), task("c", ["b"])]}


def failed_chain() -> Sim:
    """a fails on both attempts, b and c never run: the run ends FAILED at T0 + 10 s."""
    sim = Sim.start(CHAIN)
    sim.run_task("a", FAILED, "boom")
    sim.now += 10_000
    sim.run_task("a", FAILED, "boom again")
    assert sim.run_state() == (T, FAILED)
    return sim


def ids(sim: Sim) -> list[int]:
    return sorted(sim.tasks)


class TestRepair:
    def test_a_failed_run_repaired_to_success_with_its_dependents(self) -> None:
        sim = failed_chain()
        original = ids(sim)
        sim.now = T0 + 3_600_000

        step = sim.apply(RepairRun(77, rerun_tasks=("a",), rerun_dependent_tasks=True))

        a, b, c = sim.latest("a"), sim.latest("b"), sim.latest("c")
        assert [(t.attempt_number, t.original_attempt_run_id) for t in (a, b, c)] == [
            (2, a.run_id),  # numbering continues; a new chain of retries
            (1, b.run_id),
            (1, c.run_id),
        ]
        assert (a.life_cycle, b.life_cycle, c.life_cycle) == (P, B, B)
        assert step.commands == (StartTask(a.run_id, "a", 2),)
        assert sim.run.life_cycle is R
        assert (sim.run.result, sim.run.termination, sim.run.end_time, sim.run.state_message) == (
            None,
            None,
            0,
            "",
        )
        assert sim.run.repair_history == (
            RepairEntry("ORIGINAL", None, T0, T0 + 10_000, tuple(original), T, FAILED),
            RepairEntry("REPAIR", 77, T0 + 3_600_000, task_run_ids=(a.run_id, b.run_id, c.run_id)),
        )

        sim.run_task("a", FAILED, "flaky")  # max_retries apply afresh in the repair
        retry = sim.latest("a")
        assert (retry.life_cycle, retry.attempt_number, retry.original_attempt_run_id) == (P, 3, a.run_id)
        assert retry.state_message == "Starting retry 1 of 1."
        sim.run_task("a")
        sim.run_task("b")
        sim.now += 1_000
        step = sim.run_task("c")

        assert sim.run_state() == (T, OK)
        assert step.commands == (RunFinished(RUN_ID, OK),)
        *_, repair = sim.run.repair_history
        assert repair == RepairEntry(
            "REPAIR",
            77,
            T0 + 3_600_000,
            sim.now,
            (a.run_id, b.run_id, c.run_id, retry.run_id),
            T,
            OK,
        )

    def test_without_dependents_only_the_chosen_tasks_run_again(self) -> None:
        sim = failed_chain()
        sim.apply(RepairRun(1, rerun_tasks=("a",)))
        sim.run_task("a")
        assert sim.results() == {"a": OK, "b": UPSTREAM_FAILED, "c": UPSTREAM_FAILED}
        assert sim.run_state() == (T, FAILED)

    def test_rerun_all_failed_tasks_picks_every_task_that_did_not_succeed(self) -> None:
        sim = Sim.start(
            {
                "tasks": [
                    task("ok"),
                    task("bad"),
                    task("skipped", ["bad"]),
                    task("off", disabled=True),
                    condition("cond", "EQUAL_TO", "1", "2"),
                    task("branch", ["cond:true"]),
                ]
            }
        )
        sim.run_task("ok")
        sim.run_task("bad", FAILED)
        assert sim.results() == {
            "ok": OK,
            "bad": FAILED,
            "skipped": UPSTREAM_FAILED,
            "off": Result.DISABLED,
            "cond": OK,
            "branch": Result.EXCLUDED,
        }
        before = {key: sim.latest(key).run_id for key in sim.results()}

        step = sim.apply(RepairRun(5, rerun_all_failed_tasks=True))

        rerun = {key for key in before if sim.latest(key).run_id != before[key]}
        assert rerun == {"bad", "skipped"}
        assert sim.started_keys(step) == ["bad"]
        sim.run_task("bad")
        sim.run_task("skipped")
        assert sim.run_state() == (T, OK)

    def test_a_second_repair_adds_a_second_entry(self) -> None:
        sim = failed_chain()
        sim.apply(RepairRun(1, rerun_tasks=("a",)))
        sim.run_task("a")  # b, c stay upstream-failed: FAILED again
        first_end = sim.now
        sim.now += 60_000

        sim.apply(RepairRun(2, rerun_tasks=("b",), rerun_dependent_tasks=True))
        sim.run_task("b")
        sim.run_task("c")

        original, first, second = sim.run.repair_history
        assert (original.type, first.id, second.id) == ("ORIGINAL", 1, 2)
        assert (first.end_time, first.result) == (first_end, FAILED)
        assert (second.start_time, second.end_time, second.result) == (first_end + 60_000, sim.now, OK)
        assert set(second.task_run_ids) == {sim.latest("b").run_id, sim.latest("c").run_id}
        assert sim.run_state() == (T, OK)

    def test_job_parameters_are_replaced(self) -> None:
        settings = {
            "tasks": [
                condition("check", "EQUAL_TO", "{{job.parameters.env}}", "prod"),
                task("go", ["check:true"]),
            ]
        }
        sim = Sim.start(settings, job_parameters={"env": "dev"})
        assert sim.run_state() == (T, OK)
        assert sim.state("go") == (T, Result.EXCLUDED)

        step = sim.apply(
            RepairRun(3, rerun_tasks=("check",), rerun_dependent_tasks=True, job_parameters={"env": "prod"})
        )

        assert sim.run.job_parameters == {"env": "prod"}
        assert sim.latest("check").outcome == "true"
        assert sim.started_keys(step) == ["go"]

    def test_the_current_settings_may_differ(self) -> None:
        sim = Sim.start({"tasks": [task("a"), task("old")]})
        sim.run_task("a", FAILED)
        sim.run_task("old")
        old = sim.latest("old")
        sim.dag = Dag.from_settings({"tasks": [task("a"), task("new", ["a"])]})

        step = sim.apply(RepairRun(9, rerun_tasks=("a",), spec_ref="specs/v2.json"))

        assert sim.run.spec_ref == "specs/v2.json"
        assert sim.latest("old") == old  # gone from the settings: left as it was
        assert sim.state("new") == (B, None)  # new in the settings: created
        assert sim.run.repair_history[-1].task_run_ids == (sim.latest("a").run_id, sim.latest("new").run_id)
        assert sim.started_keys(step) == ["a"]
        sim.run_task("a")
        sim.run_task("new")
        assert sim.run_state() == (T, OK)

    def test_the_job_timeout_counts_from_the_repair(self) -> None:
        sim = Sim.start({"timeout_seconds": 60, "tasks": [task("a")]})
        sim.run_task("a", FAILED)
        sim.now = T0 + 3_600_000
        step = sim.apply(RepairRun(1, rerun_tasks=("a",)))
        assert sim.run.life_cycle is R
        assert WakeAt(sim.now + 60_000) in step.commands
        step = sim.tick(60_000)
        assert sim.run.life_cycle is LifeCycle.TERMINATING

    def test_a_cancelled_run_can_be_repaired(self) -> None:
        sim = Sim.start(CHAIN)
        sim.cancel()
        sim.ended("a", Result.CANCELED)
        assert sim.run_state() == (T, Result.CANCELED)
        sim.apply(RepairRun(1, rerun_all_failed_tasks=True))
        assert (sim.run.cancel_requested, sim.run.cancel_reason, sim.run.user_cancelled_or_timedout) == (
            False,
            None,
            False,
        )
        for key in "abc":
            sim.run_task(key)
        assert sim.run_state() == (T, OK)

    def test_a_for_each_task_gets_new_iterations(self) -> None:
        sim = Sim.start({"tasks": [for_each("each", "[1,2]", concurrency=2)]})
        sim.run_iteration("each", 0)
        sim.run_iteration("each", 1, FAILED)
        first = sim.latest("each")
        assert sim.run_state() == (T, FAILED)

        sim.apply(RepairRun(1, rerun_all_failed_tasks=True))

        again = sim.latest("each")
        assert again.run_id != first.run_id and again.life_cycle is R
        assert len(sim.iterations("each")) == 2 and sim.active_iterations("each") == [0, 1]
        assert len(iterations_of(sim.tasks, first.run_id)) == 2  # the old ones stay, under the old attempt
        sim.run_iteration("each", 0)
        sim.run_iteration("each", 1)
        assert sim.run_state() == (T, OK)


class TestRefused:
    def test_an_active_run(self) -> None:
        sim = Sim.start(CHAIN)
        with pytest.raises(
            InvalidState, match=r"^Run 1 is RUNNING: only a finished run can be repaired; wait"
        ):
            sim.apply(RepairRun(1, rerun_tasks=("a",)))

    def test_a_skipped_run(self) -> None:
        sim = Sim.create(CHAIN)
        sim.apply(Skip("max"))
        with pytest.raises(
            InvalidState, match=r"^Run 1 ended SKIPPED without running: it cannot be repaired\.$"
        ):
            sim.apply(RepairRun(1, rerun_all_failed_tasks=True))

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            (
                dict(rerun_tasks=("a", "zz", "yy")),
                r"^rerun_tasks: 'yy', 'zz' are not tasks of job 7 \(its tasks: 'a', 'b', 'c'\)\.$",
            ),
            (dict(rerun_tasks=("zz",)), r"^rerun_tasks: 'zz' is not a task of job 7 "),
            (
                dict(rerun_tasks=("a",), rerun_all_failed_tasks=True),
                r"^Give either rerun_tasks or rerun_all_failed_tasks, not both\.$",
            ),
            (dict(), r"^Give rerun_tasks \(the task keys to re-run\), or set rerun_all_failed_tasks\.$"),
        ],
    )
    def test_a_bad_choice_of_tasks(self, fields: dict[str, Any], message: str) -> None:
        sim = failed_chain()
        run, tasks = sim.run, dict(sim.tasks)
        with pytest.raises(InvalidParameterValue, match=message):
            sim.apply(RepairRun(1, **fields))
        assert (sim.run, sim.tasks) == (run, tasks)

    def test_nothing_to_repair(self) -> None:
        sim = Sim.start({"tasks": [task("a")]})
        sim.run_task("a")
        with pytest.raises(
            InvalidParameterValue, match=r"^Run 1 has no failed tasks: there is nothing to repair"
        ):
            sim.apply(RepairRun(1, rerun_all_failed_tasks=True))

    def test_a_duplicate_repair_is_a_no_op_even_while_it_runs(self) -> None:
        sim = failed_chain()
        event = RepairRun(4, rerun_tasks=("a",))
        sim.apply(event)
        assert sim.apply(event) == Step(run=sim.run)
        sim.run_task("a")
        assert sim.apply(event) == Step(run=sim.run)
