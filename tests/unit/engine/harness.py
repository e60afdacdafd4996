"""A driver for engine tests: it keeps a run and its task runs as a handler would (writing back every
Step), with a fake clock that moves only when told to and ids that count up from 1000.

    sim = Sim.start({"tasks": [task("a"), task("b", deps=["a"])]})
    sim.started("a"); sim.ended("a")          # events for the latest attempt of a task
    assert sim.state("b") == (PENDING, None)
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
