"""Schedules and triggers through `Floe.tick`, job saves, run ends and blob events, with a fake clock and no
task processes: which runs start, when, with which trigger, and never twice."""

from __future__ import annotations

import itertools
import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock, to_millis
from core.engine import TaskStarted
from core.engine.states import Result, TriggerType
from core.executor import Outcome
from core.handlers import Floe
from core.model import validate_job_settings, validate_run_now
from core.settings import Settings
from core.store import Storage
from core.views import RunView

START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)
TASKS = [{"task_key": "t", "spark_python_task": {"python_file": "x.py"}}]


def _floe(tmp_path: Path, storage: Storage, clock: FakeClock, host_id: str = "host-a") -> Floe:
    settings = Settings(
        home=tmp_path / host_id, workspace=tmp_path, trigger_min_seconds=0, trigger_poll_seconds=30
    )
    return Floe(settings, storage, clock=clock, host_id=host_id, run_tasks=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def floe(tmp_path: Path, sqlite_storage: Storage, clock: FakeClock) -> Floe:
    return _floe(tmp_path, sqlite_storage, clock)


def _job(floe: Floe, name: str = "j", **settings: Any) -> int:
    body = {"name": name, "tasks": TASKS, "max_concurrent_runs": 5, **settings}
    return floe.create_job(validate_job_settings(body, trigger_min_seconds=0), creator="me")


def _runs(floe: Floe, job_id: int) -> list[RunView]:
    """The job's runs, oldest first."""
    page = floe.list_runs(
        job_id=job_id,
        active_only=False,
        completed_only=False,
        offset=0,
        limit=25,
        run_type=None,
        start_time_from=None,
        start_time_to=None,
        page_token=None,
    )
    return list(reversed(page.runs))


def _at(floe: Floe, clock: FakeClock, instant: datetime) -> int:
    clock.set(instant)
    return floe.tick().triggered


def _finish(floe: Floe, run_id: int, result: Result = Result.SUCCESS) -> None:
    """End the run's only task with `result` (no process runs here)."""
    task = floe.get_run(run_id).tasks[0]
    floe.runs.transact(run_id, lambda s: TaskStarted(task.run_id))
    floe._task_ended(Outcome(run_id, task.run_id, result))


def _every_minute(**extra: Any) -> dict[str, Any]:
    return {"schedule": {"quartz_cron_expression": "0 * * * * ?", "timezone_id": "UTC", **extra}}


# ---------------------------------------------------------------------------------------------- schedules


def test_a_schedule_fires_at_its_instant_once(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, **_every_minute())
    assert _at(floe, clock, START.replace(second=59, microsecond=999_000)) == 0
    assert _at(floe, clock, START.replace(minute=1, second=0)) == 1
    assert _at(floe, clock, START.replace(minute=1, second=0)) == 0  # the same tick again
    assert _at(floe, clock, START.replace(minute=1, second=30)) == 0
    runs = _runs(floe, job_id)
    assert len(runs) == 1
    assert runs[0].run.trigger is TriggerType.PERIODIC
    assert runs[0].run.trigger_info["time_ms"] == to_millis(START.replace(minute=1, second=0))
    assert _at(floe, clock, START.replace(minute=2, second=0)) == 1
    assert len(_runs(floe, job_id)) == 2


def test_a_schedule_in_a_time_zone_fires_at_the_zones_wall_time(floe: Floe, clock: FakeClock) -> None:
    schedule = {"quartz_cron_expression": "0 0 12 * * ?", "timezone_id": "America/New_York"}
    job_id = _job(floe, schedule=schedule)
    state = floe.trigger_state(job_id)["schedule"]
    assert state["next_fire_time"] == to_millis(datetime(2026, 3, 2, 17, 0, tzinfo=UTC))  # EST, UTC-5
    _at(floe, clock, datetime(2026, 3, 2, 17, 0, tzinfo=UTC))
    state = floe.trigger_state(job_id)["schedule"]
    assert state["next_fire_time"] == to_millis(datetime(2026, 3, 3, 17, 0, tzinfo=UTC))
    assert len(_runs(floe, job_id)) == 1


def test_after_downtime_a_schedule_fires_once_for_the_missed_period(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, **_every_minute())
    back = START + timedelta(hours=3, seconds=10)
    assert _at(floe, clock, back) == 1
    assert _at(floe, clock, back + timedelta(seconds=1)) == 0
    runs = _runs(floe, job_id)
    assert len(runs) == 1
    assert runs[0].run.trigger_info["time_ms"] == to_millis(
        START.replace(minute=1, second=0)
    )  # the first missed
    state = floe.trigger_state(job_id)["schedule"]
    assert state["next_fire_time"] == to_millis(back.replace(second=0) + timedelta(minutes=1))


def test_scheduled_runs_of_a_job_are_at_least_ten_seconds_apart(floe: Floe, clock: FakeClock) -> None:
    # Saved without validation (which refuses it): a schedule firing every 2 s.
    every_2s = {"quartz_cron_expression": "0/2 * * * * ?", "timezone_id": "UTC"}
    floe.reset_job(_job(floe), {"name": "j", "tasks": TASKS, "schedule": every_2s})
    fired = []
    for second in range(0, 60):
        instant = START + timedelta(seconds=second)
        if _at(floe, clock, instant):
            fired.append(instant)
    assert len(fired) >= 4
    assert all((b - a) >= timedelta(seconds=10) for a, b in itertools.pairwise(fired))


def test_a_paused_schedule_does_not_fire_and_unpausing_starts_from_now(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, **_every_minute(pause_status="PAUSED"))
    assert _at(floe, clock, START + timedelta(hours=1)) == 0
    assert floe.trigger_state(job_id)["schedule"]["pause_status"] == "PAUSED"
    floe.update_job(job_id, _every_minute(pause_status="UNPAUSED"), [])
    assert _at(floe, clock, START + timedelta(hours=1, seconds=1)) == 0  # no catch-up for the paused hour
    assert _at(floe, clock, START + timedelta(hours=1, seconds=30)) == 1
    assert len(_runs(floe, job_id)) == 1


def test_editing_or_removing_a_schedule_moves_its_index_entry(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, **_every_minute())
    floe.update_job(job_id, {"schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"}}, [])
    assert _at(floe, clock, START.replace(minute=1, second=0)) == 0  # the old instant is gone
    assert _at(floe, clock, START.replace(hour=10, minute=0, second=0)) == 1
    floe.update_job(job_id, {}, ["schedule"])
    assert floe.trigger_state(job_id) == {}
    assert _at(floe, clock, START.replace(hour=11, minute=0, second=0)) == 0
    assert not list(floe.triggers.store.table.scan("t"))  # no state, no index entry left


def test_editing_tasks_keeps_the_schedule_state(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, **_every_minute())
    _at(floe, clock, START.replace(minute=1, second=0))
    before = floe.trigger_state(job_id)
    floe.update_job(job_id, {"tasks": [{**TASKS[0], "timeout_seconds": 5}]}, [])
    assert floe.trigger_state(job_id) == before


def test_a_deleted_job_leaves_no_trigger_behind(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, **_every_minute())
    floe.delete_job(job_id)
    assert not list(floe.triggers.store.table.scan("t"))
    assert _at(floe, clock, START.replace(minute=1, second=0)) == 0


def test_a_job_deleted_behind_the_index_is_cleaned_up_by_the_tick(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, **_every_minute())
    floe.jobs.delete(job_id)  # as if the host crashed before forgetting the triggers
    assert _at(floe, clock, START.replace(minute=1, second=0)) == 0
    assert not list(floe.triggers.store.table.scan("t"))


def test_a_crash_after_starting_the_run_does_not_start_it_twice(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, **_every_minute())
    commit = floe.triggers.store.commit
    calls = []

    def crash_once(*args: Any, **kwargs: Any) -> bool:
        if not calls:
            calls.append(1)
            raise RuntimeError("host died after starting the run")
        return commit(*args, **kwargs)

    floe.triggers.store.commit = crash_once  # type: ignore[method-assign]
    clock.set(START.replace(minute=1, second=0))
    floe.tick()  # the run starts, the state is not saved
    clock.set(START.replace(minute=1, second=2))
    floe.tick()  # the same instant is due again: its run exists already
    assert len(_runs(floe, job_id)) == 1
    assert floe.trigger_state(job_id)["schedule"]["next_fire_time"] == to_millis(
        START.replace(minute=2, second=0)
    )


@pytest.mark.parametrize("hosts", [2, 4])
def test_hosts_ticking_at_once_start_one_run_per_fire_time(
    tmp_path: Path, storage: Storage, clock: FakeClock, hosts: int
) -> None:
    floes = [_floe(tmp_path, storage, clock, f"host-{i}") for i in range(hosts)]
    jobs = [_job(floes[0], f"j{i}", **_every_minute()) for i in range(5)]
    for minute in (1, 2):
        clock.set(START.replace(minute=minute, second=0))
        barrier = threading.Barrier(hosts)
        threads = [threading.Thread(target=_tick_after, args=(f, barrier)) for f in floes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for job_id in jobs:
        runs = _runs(floes[0], job_id)
        assert [r.run.trigger_info["time_ms"] for r in runs] == [
            to_millis(START.replace(minute=1, second=0)),
            to_millis(START.replace(minute=2, second=0)),
        ]


def _tick_after(floe: Floe, barrier: threading.Barrier) -> None:
    barrier.wait()
    floe.tick()


def test_the_sweep_plans_jobs_saved_without_their_triggers(floe: Floe, clock: FakeClock) -> None:
    settings = validate_job_settings({"name": "j", "tasks": TASKS, **_every_minute()})
    job_id = floe.jobs.create(settings, creator="me", before_insert=floe.triggers.mark)
    assert floe.trigger_state(job_id) == {}  # the host crashed before planning
    assert floe.triggers.sweep() == 0  # a save may still be in progress
    clock.advance(61)
    assert floe.triggers.sweep() == 1
    assert floe.triggers.sweep() == 0
    assert floe.trigger_state(job_id)["schedule"]["next_fire_time"] == to_millis(
        START.replace(minute=2, second=0)
    )


def test_saves_leave_no_mark_behind(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, **_every_minute())
    floe.update_job(job_id, {"max_concurrent_runs": 2}, [])
    plain = _job(floe, "plain")
    floe.reset_job(plain, {"name": "plain", "tasks": TASKS})
    assert [e.row_key[0] for e in floe.triggers.store.table.scan("t")] == ["d", "s"]


# ----------------------------------------------------------------------------------------------- periodic


def test_a_periodic_trigger_fires_every_period_from_its_creation(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, trigger={"periodic": {"interval": 1, "unit": "HOURS"}})
    assert _at(floe, clock, START + timedelta(minutes=59)) == 0
    assert _at(floe, clock, START + timedelta(hours=1)) == 1
    assert _at(floe, clock, START + timedelta(hours=6, minutes=5)) == 1  # five missed slots: one run
    assert _at(floe, clock, START + timedelta(hours=6, minutes=6)) == 0
    assert _at(floe, clock, START + timedelta(hours=7)) == 1
    runs = _runs(floe, job_id)
    assert [r.run.trigger for r in runs] == [TriggerType.PERIODIC] * 3
    assert runs[1].run.trigger_info["time_ms"] == to_millis(START + timedelta(hours=6))


def test_a_paused_periodic_trigger_does_not_fire(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, trigger={"pause_status": "PAUSED", "periodic": {"interval": 1, "unit": "MINUTES"}})
    assert _at(floe, clock, START + timedelta(hours=1)) == 0
    assert _runs(floe, job_id) == []


# ------------------------------------------------------------------------------------------- file arrival


def _file_job(floe: Floe, folder: Path, **timers: int) -> int:
    return _job(floe, trigger={"file_arrival": {"url": folder.as_uri() + "/", **timers}})


def test_file_arrival_fires_for_new_files_after_the_debounce(
    floe: Floe, clock: FakeClock, tmp_path: Path
) -> None:
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "old.csv").write_text("there before the trigger")
    job_id = _file_job(floe, folder, wait_after_last_change_seconds=5)
    assert _at(floe, clock, START) == 0  # the first listing is the baseline
    new = folder / "new.csv"
    new.write_text("a,b\n")
    assert floe.handle_blob_created(str(new), new.stat().st_size, int(new.stat().st_mtime * 1000)) == 1
    assert floe.handle_blob_created(str(new), new.stat().st_size, int(new.stat().st_mtime * 1000)) == 0
    assert _at(floe, clock, START + timedelta(seconds=4)) == 0  # still inside the wait
    assert _at(floe, clock, START + timedelta(seconds=5)) == 1
    run = _runs(floe, job_id)[0].run
    assert run.trigger is TriggerType.FILE_ARRIVAL
    assert run.trigger_info["file_arrival_location"] == folder.as_uri() + "/"
    assert _at(floe, clock, START + timedelta(seconds=20)) == 0
    assert floe.trigger_state(job_id)["file_arrival"]["pending_files"] == 0


def test_file_arrival_finds_files_no_event_announced(floe: Floe, clock: FakeClock, tmp_path: Path) -> None:
    folder = tmp_path / "landing"
    job_id = _file_job(floe, folder)  # the folder does not exist yet
    assert _at(floe, clock, START) == 0
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.json").write_text("{}")
    assert _at(floe, clock, START + timedelta(seconds=29)) == 0  # the next listing is 30 s after the last
    assert _at(floe, clock, START + timedelta(seconds=30)) == 1
    assert len(_runs(floe, job_id)) == 1


def test_file_arrival_respects_the_minimum_time_between_triggers(
    floe: Floe, clock: FakeClock, tmp_path: Path
) -> None:
    folder = tmp_path / "landing"
    folder.mkdir()
    job_id = _file_job(floe, folder, min_time_between_triggers_seconds=60)
    _at(floe, clock, START)
    for i, offset in enumerate((1, 10, 20)):
        clock.set(START + timedelta(seconds=offset))
        floe.handle_blob_created(str(folder / f"{i}.csv"), 10, None)
        floe.tick()
    assert len(_runs(floe, job_id)) == 1  # the first file fired; the others wait for the minimum
    assert _at(floe, clock, START + timedelta(seconds=61)) == 1
    assert len(_runs(floe, job_id)) == 2


def test_events_outside_the_location_are_ignored(floe: Floe, clock: FakeClock, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    _file_job(floe, tmp_path / "in")
    _at(floe, clock, START)
    assert floe.handle_blob_created(str(tmp_path / "inbox" / "x.csv"), 1, None) == 0
    assert floe.handle_blob_created("https://acct.blob.core.windows.net/c/x.csv", 1, None) == 0


# ------------------------------------------------------------------------------------------- table update


def _commit(table: Path, version: int) -> None:
    log = table / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    (log / f"{version:020d}.json").write_text("{}")


def test_a_new_delta_version_fires_a_table_update_trigger(
    floe: Floe, clock: FakeClock, tmp_path: Path
) -> None:
    table = tmp_path / "sales"
    _commit(table, 0)
    job_id = _job(floe, trigger={"table_update": {"table_names": [str(table)]}})
    assert _at(floe, clock, START) == 0  # version 0 is the baseline
    _commit(table, 1)
    assert _at(floe, clock, START + timedelta(seconds=29)) == 0  # polled every 30 s here
    assert _at(floe, clock, START + timedelta(seconds=30)) == 1
    run = _runs(floe, job_id)[0].run
    assert run.trigger is TriggerType.TABLE
    assert run.trigger_info["updated_tables"] == [str(table)]
    assert _at(floe, clock, START + timedelta(seconds=60)) == 0
    state = floe.trigger_state(job_id)["table"]["last_seen_table_states"]
    assert state == [{"table_name": str(table), "has_seen_updates": False, "version": 1}]


def test_all_updated_waits_for_every_table(floe: Floe, clock: FakeClock, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _commit(a, 0)
    _commit(b, 0)
    job_id = _job(
        floe, trigger={"table_update": {"table_names": [str(a), str(b)], "condition": "ALL_UPDATED"}}
    )
    _at(floe, clock, START)
    _commit(a, 1)
    assert _at(floe, clock, START + timedelta(seconds=30)) == 0
    _commit(b, 1)
    assert _at(floe, clock, START + timedelta(seconds=60)) == 1
    assert len(_runs(floe, job_id)) == 1


# --------------------------------------------------------------------------------------------- continuous


def test_a_continuous_job_keeps_one_run_active(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, continuous={"pause_status": "UNPAUSED"})
    assert _at(floe, clock, START) == 1
    assert _at(floe, clock, START + timedelta(minutes=5)) == 0  # one run is active
    first = _runs(floe, job_id)[0]
    assert first.run.trigger is TriggerType.CONTINUOUS
    _finish(floe, first.run.run_id)
    assert _at(floe, clock, START + timedelta(minutes=5, seconds=1)) == 1  # restarted at once after a success
    assert len(_runs(floe, job_id)) == 2


def test_a_failing_continuous_job_restarts_with_a_backoff(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, continuous={})
    _at(floe, clock, START)
    _finish(floe, _runs(floe, job_id)[-1].run.run_id, Result.FAILED)
    end = floe.get_run(_runs(floe, job_id)[-1].run.run_id).run.end_time
    clock.set(datetime.fromtimestamp(end / 1000, UTC))
    assert _at(floe, clock, clock.now() + timedelta(seconds=9)) == 0
    assert _at(floe, clock, clock.now() + timedelta(seconds=1)) == 1
    assert floe.trigger_state(job_id)["continuous"]["consecutive_failures"] == 1


def test_a_paused_continuous_job_starts_nothing(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, continuous={"pause_status": "PAUSED"})
    assert _at(floe, clock, START + timedelta(minutes=1)) == 0
    floe.update_job(job_id, {"continuous": {"pause_status": "UNPAUSED"}}, [])
    assert _at(floe, clock, START + timedelta(minutes=1, seconds=1)) == 1


# ------------------------------------------------------------------------------------------ job completion


def _completion(floe: Floe, upstream: list[int], if_status: str = "SUCCESS") -> int:
    jobs = [{"job_id": str(j)} for j in upstream]
    return _job(floe, "down", trigger={"job_completion": {"jobs": jobs, "if_status": if_status}})


def _run(floe: Floe, job_id: int) -> int:
    return floe.run_now(validate_run_now({"job_id": job_id}), creator="me").run_id


def test_a_matching_upstream_completion_starts_the_downstream_job(floe: Floe, clock: FakeClock) -> None:
    upstream = _job(floe, "up")
    downstream = _completion(floe, [upstream])
    _finish(floe, _run(floe, upstream), Result.FAILED)
    assert _runs(floe, downstream) == []  # FAILED does not match SUCCESS
    first = _run(floe, upstream)
    _finish(floe, first)
    runs = _runs(floe, downstream)
    assert len(runs) == 1
    assert runs[0].run.trigger is TriggerType.JOB_COMPLETION
    completed = runs[0].run.trigger_info["job_completion"]["completed_jobs"]
    assert completed[0]["run_id"] == str(first)
    floe.triggers.on_run_finished(floe.get_run(first).run)  # a replayed run end
    assert len(_runs(floe, downstream)) == 1


def test_job_completion_waits_for_every_upstream_job(floe: Floe, clock: FakeClock) -> None:
    a, b = _job(floe, "a"), _job(floe, "b")
    downstream = _completion(floe, [a, b], if_status="DONE")
    _finish(floe, _run(floe, a), Result.FAILED)
    assert _runs(floe, downstream) == []
    _finish(floe, _run(floe, b))
    assert len(_runs(floe, downstream)) == 1
    state = floe.trigger_state(downstream)["job_completion"]["monitored_job_states"]
    assert [s["has_seen_completion"] for s in state] == [False, False]


def test_removing_a_job_completion_trigger_removes_its_reverse_index(floe: Floe, clock: FakeClock) -> None:
    upstream = _job(floe, "up")
    downstream = _completion(floe, [upstream])
    floe.update_job(downstream, {}, ["trigger"])
    _finish(floe, _run(floe, upstream))
    assert _runs(floe, downstream) == []
    assert not list(floe.triggers.store.table.scan("t"))


# ----------------------------------------------------------------------------------------------- the cost


def test_the_tick_reads_only_the_due_index_entries(floe: Floe, clock: FakeClock) -> None:
    for i in range(30):
        _job(floe, f"hourly{i}", schedule={"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"})
    _job(floe, "soon", **_every_minute())
    clock.set(START.replace(minute=1, second=0))
    assert [e.row_key[14:30] for e in floe.triggers.due(to_millis(clock.now()))] == [
        f"{_job_id(floe, 'soon'):016d}"
    ]


def _job_id(floe: Floe, name: str) -> int:
    return floe.list_jobs(name=name, limit=1, offset=0, page_token=None).jobs[0].job_id


@pytest.mark.azurite
def test_file_arrival_and_table_update_on_azure_blob_storage(
    tmp_path: Path, azurite: str, clock: FakeClock
) -> None:
    """Triggers on blob folders of Floe's own account (Azurite): a blob-created event and, for a blob no
    event announced, the periodic listing both start file-arrival runs; a new Delta commit in a blob
    folder starts a table-update run."""
    from azure.storage.blob import ContainerClient

    from core.store import open_storage
    from core.store.azure._common import API_VERSION

    prefix = f"t{secrets.token_hex(4)}"
    storage = open_storage("azure", connection_string=azurite, prefix=prefix)
    settings = Settings(
        home=tmp_path / "home",
        workspace=tmp_path,
        storage="azure",
        azure_connection_string=azurite,
        trigger_min_seconds=0,
        trigger_poll_seconds=30,
    )
    floe = Floe(settings, storage, clock=clock, host_id="host-a", run_tasks=False)
    container = f"{prefix}landing"
    blob_base = dict(p.split("=", 1) for p in azurite.split(";") if "=" in p)["BlobEndpoint"]
    with ContainerClient.from_connection_string(azurite, container, api_version=API_VERSION) as client:
        client.create_container()
        try:
            client.upload_blob("in/old.csv", b"before")
            url = f"{blob_base}/{container}/in/"
            job_id = _job(floe, trigger={"file_arrival": {"url": url}})
            assert _at(floe, clock, START) == 0  # baseline: old.csv
            client.upload_blob("in/new.csv", b"a,b\n")
            assert floe.handle_blob_created(f"{blob_base}/{container}/in/new.csv", 4, None) == 1
            assert _at(floe, clock, START + timedelta(seconds=1)) == 1
            client.upload_blob("in/sub/quiet.csv", b"no event")
            assert _at(floe, clock, START + timedelta(seconds=29)) == 0
            assert _at(floe, clock, START + timedelta(seconds=31)) == 1  # the listing found it
            runs = _runs(floe, job_id)
            assert [r.run.trigger_info["file_arrival_location"] for r in runs] == [url, url]

            table = f"{blob_base}/{container}/tables/sales"
            client.upload_blob(f"tables/sales/_delta_log/{0:020d}.json", b"{}")
            table_job = _job(floe, "table", trigger={"table_update": {"table_names": [table]}})
            assert _at(floe, clock, START + timedelta(seconds=40)) == 0  # version 0: the baseline
            client.upload_blob(f"tables/sales/_delta_log/{1:020d}.json", b"{}")
            client.upload_blob(f"tables/sales/_delta_log/{1:020d}.crc", b"{}")
            assert _at(floe, clock, START + timedelta(seconds=71)) == 1
            [run] = _runs(floe, table_job)
            assert run.run.trigger_info["updated_tables"] == [table]
        finally:
            client.delete_container()
            floe.close()


def test_run_now_restarts_a_continuous_job(floe: Floe, clock: FakeClock) -> None:
    job_id = _job(floe, continuous={}, max_concurrent_runs=1)
    _at(floe, clock, START)
    [first] = _runs(floe, job_id)
    restart = floe.run_now(validate_run_now({"job_id": job_id}), creator="me")
    assert restart.trigger is TriggerType.CONTINUOUS_RESTART
    assert floe.get_run(first.run.run_id).run.result is Result.CANCELED
    assert floe.get_run(restart.run_id).run.life_cycle.value in ("PENDING", "RUNNING")
    assert _at(floe, clock, START + timedelta(minutes=5)) == 0  # the restarted run is the active one
    assert len(_runs(floe, job_id)) == 2


def test_a_lost_run_end_still_fires_job_completion(floe: Floe, clock: FakeClock) -> None:
    upstream = _job(floe, "up")
    downstream = _completion(floe, [upstream])
    floe.runs.on_finished.remove(floe.triggers.on_run_finished)  # the host dies before telling
    clock.advance(1)
    run_id = _run(floe, upstream)
    _finish(floe, run_id)
    assert _runs(floe, downstream) == []
    floe.runs.on_finished.append(floe.triggers.on_run_finished)
    assert _at(floe, clock, START + timedelta(seconds=29)) == 0
    assert _at(floe, clock, START + timedelta(seconds=31)) == 1  # the periodic check found the run end
    assert _at(floe, clock, START + timedelta(seconds=62)) == 0
    [run] = _runs(floe, downstream)
    assert run.run.trigger_info["job_completion"]["completed_jobs"][0]["run_id"] == str(run_id)
