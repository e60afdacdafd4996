"""Task attempts on runners (FLOE_TASKS=runners): a dispatcher that runs no task process submits each
attempt to the floe-tasks queue and follows the run with delayed run.poll messages; a runner runs the
attempts and records their ends. Two `Floe`s on one SQLite storage, their queues pumped by hand; real
task processes."""

from __future__ import annotations

import dataclasses
import itertools
import textwrap
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from core.engine.states import LifeCycle, Result
from core.handlers import Floe
from core.messages import TASK_QUEUE, WORK_QUEUE, WorkMessage
from core.model import validate_job_settings, validate_run_now
from core.settings import Settings
from core.store import Storage
from core.upkeep import HOST_DEAD_MS, RECONCILE_MS, STUCK_PENDING_MS, _redrive_due

pytestmark = pytest.mark.timeout(60)


@dataclasses.dataclass
class Pair:
    dispatcher: Floe
    runner: Floe
    storage: Storage
    clock: FakeClock
    workspace: Path
    handled: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (host, kind)

    def job(self, *tasks: dict[str, Any]) -> int:
        return self.dispatcher.create_job(
            validate_job_settings({"name": "j", "tasks": list(tasks)}), creator="me"
        )

    def script(self, name: str, code: str) -> str:
        (self.workspace / name).write_text(textwrap.dedent(code))
        return name

    def pump(self, *, tasks: bool = True) -> int:
        """Deliver what is visible: floe-tasks to the runner, floe-work to the dispatcher."""
        count = 0
        routes = [(WORK_QUEUE, self.dispatcher)] + ([(TASK_QUEUE, self.runner)] if tasks else [])
        for name, floe in routes:
            queue = self.storage.queues.queue(name)
            for message in queue.receive(max_messages=32, visibility_timeout=60):
                self.handled.append((floe.host_id, WorkMessage.decode(message.body).kind))
                floe.handle_message(message.body, queue=name)
                queue.delete(message)
                count += 1
        return count

    def until(self, done: Callable[[], Any], *, what: str, timeout: float = 30, tasks: bool = True) -> Any:
        deadline = time.monotonic() + timeout
        while not (result := done()):
            self.pump(tasks=tasks)
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen within {timeout:.0f} s", pytrace=False)
            time.sleep(0.02)
        return result


@pytest.fixture
def pair(tmp_path: Path, sqlite_storage: Storage) -> Any:
    clock = FakeClock()
    settings = Settings(home=tmp_path / "d", workspace=tmp_path, tasks="runners", task_poll_seconds=0.2)
    dispatcher = Floe(settings, sqlite_storage, clock=clock, host_id="dispatcher", run_tasks=False)
    runner_settings = dataclasses.replace(settings, home=tmp_path / "r")
    runner = Floe(runner_settings, sqlite_storage, clock=clock, host_id="runner", run_tasks=True)
    runner.runner_tick()  # its heartbeat
    yield Pair(dispatcher, runner, sqlite_storage, clock, tmp_path)
    runner.executor.close()  # type: ignore[union-attr]  # its processes; the storage is the fixture's


def _python(key: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"task_key": key, "spark_python_task": {"python_file": script}, **extra}


def _state(pair: Pair, run_id: int) -> Any:
    return pair.dispatcher.get_run(run_id)


def test_the_dispatcher_submits_and_polls_and_the_runner_runs_every_attempt(pair: Pair) -> None:
    ok = pair.script("ok.py", "print('ran on a runner')\n")
    job_id = pair.job(_python("a", ok), _python("b", ok, depends_on=[{"task_key": "a"}]))
    run = pair.dispatcher.run_now(validate_run_now({"job_id": job_id}), creator="me")

    tasks = pair.storage.queues.queue(TASK_QUEUE).receive(max_messages=32, visibility_timeout=0.001)
    assert [WorkMessage.decode(m.body).kind for m in tasks] == ["task.start"]
    ended = pair.until(lambda: (s := _state(pair, run.run_id)).run.is_final and s, what="the run to end")
    assert ended.run.result is Result.SUCCESS
    assert {t.lease_owner for t in ended.tasks} == {"runner"}
    starts = [host for host, kind in pair.handled if kind == "task.start"]
    assert starts == ["runner", "runner"]  # the dispatcher never started a task

    # The run is followed by one chain of polls; they reach the dispatcher, and the one that finds the
    # run over is not sent again.
    def polls() -> list[str]:
        return [host for host, kind in pair.handled if kind == "run.poll"]

    pair.until(lambda: len(polls()) >= 1, what="a poll of the run")
    time.sleep(0.5)  # more than the poll interval: a poll sent again would be visible now
    assert pair.pump() == 0
    assert set(polls()) == {"dispatcher"}


def test_a_poll_of_a_running_attempt_comes_again_later(pair: Pair) -> None:
    nap = pair.script("nap.py", "import time\ntime.sleep(30)\n")
    run = pair.dispatcher.run_now(validate_run_now({"job_id": pair.job(_python("nap", nap))}), creator="me")

    def running() -> bool:
        return _state(pair, run.run_id).tasks[0].life_cycle is LifeCycle.RUNNING

    pair.until(running, what="the attempt to run")
    before = sum(kind == "run.poll" for _, kind in pair.handled)
    pair.until(lambda: sum(kind == "run.poll" for _, kind in pair.handled) >= before + 2, what="two polls")
    assert running()  # polled twice, still running, nothing decided


def test_a_runner_that_stops_responding_fails_its_attempts_at_the_next_poll(pair: Pair) -> None:
    nap = pair.script("nap.py", "import time\ntime.sleep(30)\n")
    run = pair.dispatcher.run_now(validate_run_now({"job_id": pair.job(_python("nap", nap))}), creator="me")
    pair.until(
        lambda: _state(pair, run.run_id).tasks[0].life_cycle is LifeCycle.RUNNING, what="the attempt to run"
    )
    pair.clock.advance(seconds=HOST_DEAD_MS / 1000 + 1)  # the runner's heartbeat is now too old
    ended = pair.until(
        lambda: (s := _state(pair, run.run_id)).run.is_final and s,
        what="the poll to end the attempt",
        tasks=False,
    )
    [task] = ended.tasks
    assert task.result is Result.FAILED
    assert "Floe runner runner, which ran this attempt, stopped responding" in (task.error or "")


def test_the_embedded_default_sends_no_polls(tmp_path: Path, sqlite_storage: Storage) -> None:
    floe = Floe(Settings(home=tmp_path / "h", workspace=tmp_path), sqlite_storage, run_tasks=False)
    job = validate_job_settings({"name": "j", "tasks": [_python("t", "x.py")]})
    floe.run_now(validate_run_now({"job_id": floe.create_job(job, creator="me")}), creator="me")
    work = sqlite_storage.queues.queue(WORK_QUEUE).receive(max_messages=32, visibility_timeout=0.001)
    assert [WorkMessage.decode(m.body).kind for m in work] == ["task.start"]
    assert sqlite_storage.queues.queue(TASK_QUEUE).receive(max_messages=32) == []


def test_a_pending_attempt_is_resent_at_doubling_waits() -> None:
    assert (STUCK_PENDING_MS, RECONCILE_MS) == (60_000, 30_000)
    ages = range(0, 20 * 60_000 + 1, RECONCILE_MS)  # a reconcile every 30 s for 20 minutes
    resent = [age // 1000 for age in ages if _redrive_due(age, RECONCILE_MS)]
    assert resent == [90, 150, 270, 510, 990]  # the first reconcile past 1, 2, 4, 8 and 16 minutes


def test_a_redrive_after_a_long_gap_between_reconciles_sends_once() -> None:
    assert _redrive_due(int(timedelta(minutes=10).total_seconds() * 1000), since_ms=9 * 60_000)
    assert not _redrive_due(int(timedelta(minutes=10).total_seconds() * 1000), since_ms=60_000)


def test_a_task_on_a_cluster_of_another_machine_is_sent_to_that_machines_runner(pair: Pair) -> None:
    """A local cluster listens on its machine's loopback: a task start for it that reaches another runner
    goes on to the queue of the runner that owns the cluster."""
    from core.clusters import TABLE, ClusterRecord, _encode, job_cluster_id
    from core.compute.clusters import ClusterHandle, ClusterSource, ClusterState
    from core.compute.process import ProcessHandle
    from core.messages import host_queue

    cluster = {"spark_version": "15.4.x-scala2.12", "num_workers": 0}
    job_id = pair.dispatcher.create_job(
        validate_job_settings(
            {
                "name": "j",
                "job_clusters": [{"job_cluster_key": "c", "new_cluster": cluster}],
                "tasks": [{**_python("t", "x.py"), "job_cluster_key": "c"}],
            }
        ),
        creator="me",
    )
    run = pair.dispatcher.run_now(validate_run_now({"job_id": job_id}), creator="me")
    elsewhere = ProcessHandle("driver", 4242, 4242, 0, 1, boot_id="another-machine")
    record = ClusterRecord(
        job_cluster_id(run.run_id, "c"),
        cluster,
        ClusterState.RUNNING,
        ClusterSource.JOB,
        owner_host="runner-on-another-machine",
        run_id=run.run_id,
        job_cluster_key="c",
        handle=ClusterHandle(job_cluster_id(run.run_id, "c"), "sc://127.0.0.1:15002", processes=(elsewhere,)),
    )
    pair.storage.tables.table(TABLE).insert(_encode(record))

    [start] = pair.storage.queues.queue(TASK_QUEUE).receive(max_messages=32, visibility_timeout=60)
    pair.runner.handle_message(start.body, queue=TASK_QUEUE)
    [task] = _state(pair, run.run_id).tasks
    assert task.life_cycle is LifeCycle.PENDING and task.lease_owner is None  # not run here
    owners = pair.storage.queues.queue(host_queue("runner-on-another-machine"))
    [forwarded] = owners.receive(max_messages=32, visibility_timeout=60)
    assert (WorkMessage.decode(forwarded.body).kind, WorkMessage.decode(forwarded.body).task_run_id) == (
        "task.start",
        task.run_id,
    )


def test_a_dispatcher_hands_an_all_purpose_clusters_start_to_the_runners(pair: Pair) -> None:
    from core.compute.clusters import ClusterState

    cluster_id = pair.dispatcher.clusters.create({"cluster_name": "shared", "num_workers": 0}, creator="me")
    waiting = pair.dispatcher.clusters.get(cluster_id)
    assert (waiting.state, waiting.owner_host) == (ClusterState.PENDING, "")
    assert waiting.state_message == "Waiting for a runner to start Spark"
    [start] = pair.storage.queues.queue(TASK_QUEUE).receive(max_messages=32, visibility_timeout=60)
    assert WorkMessage.decode(start.body) == WorkMessage("cluster.start", 0, cluster_id=cluster_id)
    # Terminated before any runner took it: the runner's late start finds nothing to do.
    pair.dispatcher.clusters.terminate(cluster_id)
    pair.runner.handle_message(start.body, queue=TASK_QUEUE)
    ended = pair.dispatcher.clusters.get(cluster_id)
    assert (ended.state, ended.owner_host) == (ClusterState.TERMINATED, "")
    # A remote cluster is only registered: nothing to hand off.
    remote = pair.dispatcher.clusters.create({"spark_connect_url": "sc://spark.example:15002"}, creator="me")
    assert pair.dispatcher.clusters.get(remote).state is ClusterState.RUNNING
    assert pair.storage.queues.queue(TASK_QUEUE).receive(max_messages=32) == []


def test_cluster_messages_name_a_cluster_and_no_run() -> None:
    from core.messages import InvalidMessage

    message = WorkMessage("cluster.terminate", 0, cluster_id="abc-123")
    assert message.encode() == '{"v":1,"kind":"cluster.terminate","cluster_id":"abc-123"}'
    assert WorkMessage.decode(message.encode()) == message
    with pytest.raises(InvalidMessage, match="has no valid cluster_id"):
        WorkMessage.decode('{"v":1,"kind":"cluster.start","cluster_id":"../x"}')
    with pytest.raises(InvalidMessage, match="lacks run_id"):
        WorkMessage.decode('{"v":1,"kind":"run.poll"}')


@pytest.mark.spark
@pytest.mark.timeout(180)
def test_a_runner_starts_an_all_purpose_cluster_and_ends_it_when_the_dispatcher_says(pair: Pair) -> None:
    import shutil

    from core.compute.clusters import ClusterState
    from core.compute.process import process_alive
    from core.messages import host_queue
    from tests.fixtures.services import service_missing

    if shutil.which("java") is None:
        service_missing("Java")
    cluster_id = pair.dispatcher.clusters.create({"cluster_name": "shared", "num_workers": 0}, creator="me")
    pair.pump()  # the runner takes the start and brings Spark up in the background
    running = pair.until(
        lambda: (r := pair.dispatcher.clusters.get(cluster_id)).state is not ClusterState.PENDING and r,
        what="the cluster to start",
        timeout=150,
    )
    assert (running.state, running.owner_host) == (ClusterState.RUNNING, "runner"), running.state_message
    processes = running.handle.processes  # type: ignore[union-attr]
    assert processes and all(process_alive(p) for p in processes)

    pair.dispatcher.clusters.terminate(cluster_id)  # on the same machine it can kill them itself
    assert pair.dispatcher.clusters.get(cluster_id).state is ClusterState.TERMINATED
    assert not any(process_alive(p) for p in processes)
    assert pair.storage.queues.queue(host_queue("runner")).receive(max_messages=32) == []


def test_a_cluster_on_another_machine_is_terminated_by_its_runner(pair: Pair) -> None:
    from core.clusters import TABLE, ClusterRecord, _encode
    from core.compute.clusters import ClusterHandle, ClusterSource, ClusterState
    from core.compute.process import ProcessHandle
    from core.messages import host_queue

    elsewhere = ProcessHandle("driver", 4242, 4242, 0, 1, boot_id="another-machine")
    record = ClusterRecord(
        "0101-000000-abcdefgh",
        {"num_workers": 0},
        ClusterState.RUNNING,
        ClusterSource.API,
        owner_host="runner",
        handle=ClusterHandle("0101-000000-abcdefgh", "sc://127.0.0.1:15002", processes=(elsewhere,)),
    )
    pair.storage.tables.table(TABLE).insert(_encode(record))
    pair.dispatcher.clusters.terminate(record.cluster_id)
    assert pair.dispatcher.clusters.get(record.cluster_id).state is ClusterState.TERMINATING
    [kill] = pair.storage.queues.queue(host_queue("runner")).receive(max_messages=32, visibility_timeout=60)
    assert WorkMessage.decode(kill.body) == WorkMessage("cluster.terminate", 0, cluster_id=record.cluster_id)
    pair.runner.handle_message(kill.body)  # its owner: what runs of it is its to kill
    assert pair.dispatcher.clusters.get(record.cluster_id).state is ClusterState.TERMINATED


def test_a_runner_runs_no_more_task_processes_at_once_than_its_slots(tmp_path: Path) -> None:
    from core.runtime.host import LocalHost, storage_from
    from core.runtime.runner import RunnerHost

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "span.py").write_text(
        "import sys, time\nstart = time.time()\ntime.sleep(0.8)\n"
        "open(sys.argv[1], 'w').write(f'{start} {time.time()}')\n"
    )
    settings = Settings(
        home=tmp_path / "home", workspace=workspace, tasks="runners", runner_slots=1, workers=3
    )
    dispatcher = LocalHost(settings, Floe(settings, storage_from(settings), run_tasks=False))
    runner = RunnerHost(settings)
    dispatcher.start()
    runner.start()
    try:
        tasks = [
            {
                "task_key": f"t{i}",
                "spark_python_task": {"python_file": "span.py", "parameters": [f"t{i}.txt"]},
            }
            for i in range(3)
        ]
        floe = dispatcher.floe
        job_id = floe.create_job(validate_job_settings({"name": "j", "tasks": tasks}), creator="me")
        run = floe.run_now(validate_run_now({"job_id": job_id}), creator="me")
        deadline = time.monotonic() + 40
        while not floe.get_run(run.run_id).run.is_final:
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.1)
        assert floe.get_run(run.run_id).run.result is Result.SUCCESS
    finally:
        runner.stop()
        dispatcher.stop()
    spans = sorted(tuple(map(float, (workspace / f"t{i}.txt").read_text().split())) for i in range(3))
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert second_start >= first_end - 0.05, spans  # one at a time: the slot is taken until the end
