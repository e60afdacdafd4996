"""A driver for engine tests: it keeps a run and its task runs as a handler would (writing back every
Step), with a fake clock that moves only when told to and ids that count up from 1000.

    sim = Sim.start({"tasks": [task("a"), task("b", deps=["a"])]})
    sim.started("a"); sim.ended("a")          # events for the latest attempt of a task
    assert sim.state("b") == (PENDING, None)

For-each iterations are addressed by the for-each's task key and the index: `sim.run_iteration("each", 0)`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.engine import (
    Advance,
    CancelRun,
    CancelTask,
    Command,
    Dag,
    Event,
    LifeCycle,
    ReferenceContext,
    Result,
    Run,
    RunStarted,
    StartTask,
    Step,
    TaskEnded,
    TaskRun,
    TaskStarted,
    TerminationCode,
    apply,
    iterations_of,
    latest_attempts,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RUN_ID = 1


def task(key: str, deps: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    """A task's JSON. `deps` entries are task keys, or "key:true" / "key:false" for a condition outcome."""
    spec: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": f"/nb/{key}"}}
    if deps:
        spec["depends_on"] = [
            {"task_key": d.split(":")[0], "outcome": d.split(":")[1]} if ":" in d else {"task_key": d}
            for d in deps
        ]
    spec.update(fields)
    return spec


def condition(key: str, op: str, left: str, right: str, deps: list[str] | None = None) -> dict[str, Any]:
    spec = task(key, deps)
    del spec["notebook_task"]
    spec["condition_task"] = {"op": op, "left": left, "right": right}
    return spec


def for_each(
    key: str,
    inputs: str,
    nested: dict[str, Any] | None = None,
    *,
    concurrency: int | None = None,
    deps: list[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A for_each_task; the nested task defaults to a notebook task called `<key>_iteration`."""
    spec = task(key, deps, **fields)
    del spec["notebook_task"]
    body: dict[str, Any] = {"inputs": inputs, "task": nested or task(f"{key}_iteration")}
    if concurrency is not None:
        body["concurrency"] = concurrency
    spec["for_each_task"] = body
    return spec


def run_job(
    key: str, job_id: int, params: dict[str, Any] | None = None, deps: list[str] | None = None, **fields: Any
) -> dict[str, Any]:
    spec = task(key, deps, **fields)
    del spec["notebook_task"]
    spec["run_job_task"] = {"job_id": job_id, **({"job_parameters": params} if params is not None else {})}
    return spec


@dataclass
class Sim:
    dag: Dag
    run: Run
    now: int = T0
    tasks: dict[int, TaskRun] = field(default_factory=dict)
    ctx: ReferenceContext | None = None
    commands: list[Command] = field(default_factory=list)  # every command so far
    last: Step | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    @classmethod
    def create(cls, settings: Mapping[str, Any], **run_fields: Any) -> Sim:
        run = Run(run_id=RUN_ID, job_id=7, created_time=T0, **run_fields)
        return cls(dag=Dag.from_settings(settings), run=run)

    @classmethod
    def start(cls, settings: Mapping[str, Any], **run_fields: Any) -> Sim:
        sim = cls.create(settings, **run_fields)
        sim.apply(RunStarted())
        return sim

    # -- driving ------------------------------------------------------------------------------------

    def start_run(self) -> Step:
        return self.apply(RunStarted())

    def apply(self, event: Event) -> Step:
        step = apply(self.run, self.tasks, self.dag, event, self.now, lambda: next(self._ids), self.ctx)
        self.run = step.run
        self.tasks.update(step.tasks)
        self.commands.extend(step.commands)
        self.last = step
        return step

    def tick(self, ms: int) -> Step:
        """Let `ms` pass, then Advance (as a WakeAt would)."""
        self.now += ms
        return self.apply(Advance())

    def started(self, key: str) -> Step:
        return self.apply(TaskStarted(self.latest(key).run_id))

    def ended(
        self,
        key: str,
        result: Result = Result.SUCCESS,
        message: str = "",
        code: TerminationCode | None = None,
    ) -> Step:
        return self.apply(TaskEnded(self.latest(key).run_id, result, message, code))

    def run_task(self, key: str, result: Result = Result.SUCCESS, message: str = "") -> Step:
        """Start and end the latest attempt of `key`."""
        self.started(key)
        return self.ended(key, result, message)

    def cancel(self, message: str = "") -> Step:
        return self.apply(CancelRun(message))

    def cancel_task(self, key: str) -> Step:
        return self.apply(CancelTask(self.latest(key).run_id))

    # -- looking ------------------------------------------------------------------------------------

    def latest(self, key: str) -> TaskRun:
        return latest_attempts(self.tasks)[key]

    def attempts(self, key: str) -> list[TaskRun]:
        return sorted((t for t in self.tasks.values() if t.task_key == key), key=lambda t: t.attempt_number)

    def state(self, key: str) -> tuple[LifeCycle, Result | None]:
        latest = self.latest(key)
        return latest.life_cycle, latest.result

    def results(self) -> dict[str, Result | None]:
        return {key: t.result for key, t in latest_attempts(self.tasks).items()}

    def code(self, key: str) -> TerminationCode | None:
        """The termination code of the latest attempt of `key`."""
        termination = self.latest(key).termination
        return termination.code if termination else None

    def started_keys(self, step: Step | None = None) -> list[str]:
        """Task keys the last step (or `step`) asked to start."""
        step = step or self.last
        return [c.task_key for c in step.commands if isinstance(c, StartTask)] if step else []

    def run_state(self) -> tuple[LifeCycle, Result | None]:
        return self.run.life_cycle, self.run.result

    def commands_of(self, kind: type, step: Step | None = None) -> list[Any]:
        """The commands of type `kind` in the last step (or `step`)."""
        step = step or self.last
        return [c for c in step.commands if isinstance(c, kind)] if step else []

    # -- for-each iterations ------------------------------------------------------------------------

    def iterations(self, key: str) -> list[TaskRun]:
        """The latest attempt of each iteration of the latest attempt of the for-each task `key`."""
        return iterations_of(self.tasks, self.latest(key).run_id)

    def iteration(self, key: str, index: int) -> TaskRun:
        return self.iterations(key)[index]

    def attempts_of_iteration(self, key: str, index: int) -> list[TaskRun]:
        every = iterations_of(self.tasks, self.latest(key).run_id, all_attempts=True)
        return [it for it in every if it.iteration == index]

    def iteration_states(self, key: str) -> list[tuple[LifeCycle, Result | None]]:
        return [(it.life_cycle, it.result) for it in self.iterations(key)]

    def active_iterations(self, key: str) -> list[int]:
        """Indexes of the iterations holding a slot (PENDING, RUNNING, WAITING_FOR_RETRY)."""
        busy = (LifeCycle.PENDING, LifeCycle.RUNNING, LifeCycle.WAITING_FOR_RETRY)
        return [it.iteration or 0 for it in self.iterations(key) if it.life_cycle in busy]

    def iteration_started(self, key: str, index: int) -> Step:
        return self.apply(TaskStarted(self.iteration(key, index).run_id))

    def iteration_ended(
        self, key: str, index: int, result: Result = Result.SUCCESS, message: str = ""
    ) -> Step:
        return self.apply(TaskEnded(self.iteration(key, index).run_id, result, message))

    def run_iteration(self, key: str, index: int, result: Result = Result.SUCCESS, message: str = "") -> Step:
        self.iteration_started(key, index)
        return self.iteration_ended(key, index, result, message)
