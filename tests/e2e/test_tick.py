"""The tick re-drives what lost messages and hosts leave behind. Driven with a fake clock, no workers."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from core.clock import FakeClock
from core.engine import TaskStarted
from core.engine.states import LifeCycle, Result
from core.handlers import Floe
from core.messages import WORK_QUEUE, WorkMessage
from core.model import validate_job_settings, validate_run_now
from core.settings import Settings
from core.store import Storage
from core.upkeep import HOST_DEAD_MS, RECONCILE_MS


def _floe(tmp_path: Path, storage: Storage, clock: FakeClock, host_id: str) -> Floe:
    settings = Settings(home=tmp_path / "home", workspace=tmp_path)
    return Floe(settings, storage, clock=clock, host_id=host_id, run_tasks=False)


def _job(floe: Floe, **settings: object) -> int:
    body = {
        "name": "j",
        "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "x.py"}}],
        **settings,
    }
    return floe.create_job(validate_job_settings(body), creator="me")


def test_queued_runs_start_when_the_limit_is_raised(tmp_path: Path, sqlite_storage: Storage) -> None:
    clock = FakeClock()
    floe = _floe(tmp_path, sqlite_storage, clock, "host-a")
    job_id = _job(floe, max_concurrent_runs=1, queue={"enabled": True})
    first = floe.run_now(validate_run_now({"job_id": job_id}), creator="me")
    second = floe.run_now(validate_run_now({"job_id": job_id}), creator="me")
    assert floe.get_run(second.run_id).run.life_cycle is LifeCycle.QUEUED

    settings = validate_job_settings({**floe.get_job(job_id).settings, "max_concurrent_runs": 2})
    floe.reset_job(job_id, settings)
    floe.tick()  # the first tick reconciles
    assert floe.get_run(second.run_id).run.life_cycle is LifeCycle.RUNNING
    assert floe.get_run(first.run_id).run.life_cycle is LifeCycle.RUNNING


def test_attempts_of_a_silent_host_are_lost_and_lost_messages_resent(
    tmp_path: Path, sqlite_storage: Storage
) -> None:
    clock = FakeClock()
    crashed = _floe(tmp_path, sqlite_storage, clock, "host-a")
    crashed.tick()  # its heartbeat
    job_id = _job(crashed)
    run = crashed.run_now(validate_run_now({"job_id": job_id}), creator="me")
    task = crashed.get_run(run.run_id).tasks[0]
    # host-a claims the attempt and dies before the process ran
    crashed.runs.transact(
        run.run_id,
        lambda state: TaskStarted(task.run_id),
        stamp=lambda state, t: dataclasses.replace(t, lease_owner="host-a"),
    )
    survivor = _floe(tmp_path, sqlite_storage, clock, "host-b")
    clock.advance(seconds=(HOST_DEAD_MS + RECONCILE_MS) / 1000 + 1)
    report = survivor.tick()
    assert report.lost == 1
    ended = survivor.get_run(run.run_id)
    assert ended.run.result is Result.FAILED
    assert "stopped responding" in ended.tasks[0].state_message or "stopped responding" in (
        ended.tasks[0].error or ""
    )

    second = survivor.run_now(validate_run_now({"job_id": job_id}), creator="me")
    queue = sqlite_storage.queues.queue(WORK_QUEUE)
    while queue.receive(max_messages=32, visibility_timeout=timedelta(hours=1).total_seconds()):
        pass  # the task.start messages are lost
    clock.advance(seconds=(RECONCILE_MS + 61_000) / 1000)
    assert survivor.tick().redriven == 1
    resent = [WorkMessage.decode(m.body) for m in queue.receive(max_messages=32)]
    assert [(m.kind, m.run_id) for m in resent] == [("task.start", second.run_id)]
