"""What `tick`, job saves, run ends and blob events do with a job's triggers: the decisions are the pure
functions of `core.schedule`; this module applies them to the stored state (`core.triggers.store`) and
starts the runs they ask for (see the package docstring for the rules)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from core.clock import Clock, to_millis
from core.engine.records import Run
from core.engine.states import RunType, TriggerType
from core.errors import FloeError, InvalidState, JobNotFound
from core.jobs import JobService
from core.model import validate_run_now
from core.repository import Repository, StoredJob
from core.schedule import continuous as continuous_rules
from core.schedule import file_arrival as file_rules
from core.schedule import job_completion as completion_rules
from core.schedule import listing
from core.schedule import periodic as periodic_rules
from core.schedule import table_update as table_rules
from core.schedule.quartz import QuartzCron, parse_timezone
from core.schedule.triggers import trigger_kind, trigger_settings
from core.schedule.urls import StorageLocation, parse_location
from core.store import Entity
from core.telemetry import trigger_fired
from core.triggers.describe import describe
from core.triggers.store import TriggerRecord, TriggerStore, config_hash, side_rows, sources

log = logging.getLogger("floe.triggers")

MIN_SCHEDULE_GAP_MS = 10_000  # scheduled runs of one job are at least 10 s apart
CONTINUOUS_CHECK_MS = 60_000  # how often an active continuous job is checked (a lost run end heals)
SWEEP_AFTER_MS = 60_000  # a save mark this old belongs to a host that crashed before planning
RECENT_RUNS = 5  # upstream runs a job-completion check looks at, per upstream job
DUE_PAGE = 1000  # index entries one tick handles at most; the rest wait for the next tick
_MAX_RACES = 20


@dataclass(frozen=True)
class Fire:
    """A run a trigger asks for."""

    trigger: TriggerType
    token: str  # the run-now idempotency token: the same decision on any host gives the same token
    info: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=4096)
def _cron(expression: str) -> QuartzCron:
    return QuartzCron.parse(expression)


def next_cron_fire(schedule: Mapping[str, Any], after_ms: int) -> int | None:
    """The first fire instant of a schedule strictly after `after_ms` (epoch ms), None if it ends."""
    zone = parse_timezone(schedule["timezone_id"])
    after = datetime.fromtimestamp(after_ms / 1000, UTC)
    fire = _cron(schedule["quartz_cron_expression"]).next_fire(after, zone)
    return None if fire is None else to_millis(fire)


class TriggerService:
    def __init__(
        self,
        repo: Repository,
        jobs: JobService,
        clock: Clock,
        *,
        poll_ms: int = file_rules.RECONCILE_INTERVAL_MS,
        list_location: Callable[[StorageLocation], list[tuple[str, int, int]]] | None = None,
        delta_version: Callable[[str], int | None] | None = None,
    ) -> None:
        """`poll_ms`: how often file-arrival locations are listed and Delta tables polled (Databricks:
        about a minute). `list_location` lists a location completely (default: local folders only);
        `delta_version` gives a Delta table's newest version (default: its `_delta_log`, local or listed)."""
        self.repo = repo
        self.jobs = jobs
        self.clock = clock
        self.poll_ms = poll_ms
        self.store = TriggerStore(repo.storage.tables.table("triggers"), repo.storage.blobs)
        self.list_location = list_location or listing.list_location
        self.delta_version = delta_version or self._latest_delta_version
        self._sweep_lock = threading.Lock()

    # ------------------------------------------------------------------------------------ planning

    def plan(self, job_id: int, settings: Mapping[str, Any]) -> None:
        """Bring the trigger state of a job in line with its (new) settings: called after every save.
        A source whose settings did not change keeps its state; a new or changed one starts afresh
        (keeping its fire count, so run tokens never repeat); a removed one is deleted."""
        wanted = sources(settings)
        for _ in range(_MAX_RACES):
            current = {rec.source: rec for rec in self.store.records(job_id)}
            done = True
            for source in {*current, *wanted}:
                old = current.get(source)
                if source not in wanted:
                    done &= self.store.remove(old) if old else True
                    continue
                kind, setting = wanted[source]
                config = config_hash(kind, setting)
                if old is not None and old.config == config:
                    continue
                new = self._fresh(job_id, source, kind, config, setting, old)
                done &= self.store.commit(old, new, sides=side_rows(job_id, kind, setting))
            if done:
                self.store.unmark(job_id)
                return
        raise InvalidState(f"the triggers of job {job_id} changed {_MAX_RACES} times while being planned")

    def forget(self, job_id: int) -> None:
        """A job was deleted: remove its trigger state, index entries and side rows."""
        for rec in self.store.records(job_id):
            self.store.remove(rec)
        self.store.unmark(job_id)

    def mark(self, job_id: int) -> None:
        """Say that job `job_id` is being saved: `plan` (after the save) removes the mark, `sweep` plans
        a job whose mark outlived its save."""
        self.store.mark(job_id, to_millis(self.clock.now()))

    def sweep(self, *, older_than_ms: int = SWEEP_AFTER_MS) -> int:
        """Plan every job whose save was marked more than `older_than_ms` ago and never planned (its host
        crashed in between); returns how many. One range query when there are none."""
        now_ms = to_millis(self.clock.now())
        planned = 0
        with self._sweep_lock:
            for job_id, marked_ms in self.store.marks():
                if now_ms - marked_ms < older_than_ms:
                    continue  # a save still in progress
                try:
                    self.plan(job_id, self.repo.load_spec(self.repo.get_job(job_id).spec_ref))
                except JobNotFound:
                    self.forget(job_id)
                except FloeError as bad:
                    log.warning("could not plan the triggers of job %s: %s", job_id, bad.message)
                    continue
                planned += 1  # plan and forget remove the mark
        return planned

    def _fresh(
        self,
        job_id: int,
        source: str,
        kind: str,
        config: str,
        setting: Mapping[str, Any],
        old: TriggerRecord | None,
    ) -> TriggerRecord:
        now_ms = to_millis(self.clock.now())
        paused = setting.get("pause_status") == "PAUSED"
        rec = TriggerRecord(
            job_id=job_id,
            source=source,
            kind=kind,
            config=config,
            paused=paused,
            created_ms=now_ms,
            last_fire_ms=old.last_fire_ms if old else None,
            fires=old.fires if old else 0,
            etag=old.etag if old else None,
        )
        initial = {
            "file_arrival": file_rules.FileArrivalState(),
            "table_update": table_rules.TableUpdateState(),
            "job_completion": completion_rules.JobCompletionState(),
            "continuous": continuous_rules.ContinuousState(),
        }.get(kind)
        if initial is not None:
            rec = replace(rec, state=initial.to_json())
        if paused:
            return rec
        if kind == "cron":
            return replace(rec, next_ms=next_cron_fire(setting, now_ms))
        if kind == "periodic":
            return replace(rec, next_ms=now_ms + periodic_rules.period_ms(trigger_settings(setting)))
        if kind == "job_completion":  # run ends drive it; the check only catches a lost run end
            return replace(rec, next_ms=now_ms + self.poll_ms)
        return replace(rec, next_ms=now_ms)  # list, poll or start at the next tick

    # ---------------------------------------------------------------------------------------- tick

    def due(self, now_ms: int) -> list[Entity]:
        """The index entries due at `now_ms` (at most DUE_PAGE), oldest first."""
        return self.store.due(now_ms, DUE_PAGE)

    def run_due(self, now_ms: int) -> int:
        """Check every due source; returns how many runs were started (or found started)."""
        started = 0
        for entry in self.due(now_ms):
            try:
                started += self._check(entry, now_ms)
            except Exception:
                log.exception("could not check trigger %s", entry.row_key)
        return started

    def _check(self, entry: Entity, now_ms: int) -> int:
        job_id, source = int(entry.row_key[14:30]), entry.row_key[30:]
        for _ in range(_MAX_RACES):
            rec = self.store.record(job_id, source)
            if rec is None or rec.index_row != entry.row_key:
                self.store.delete_stale(entry)
                return 0
            try:
                job = self.repo.get_job(job_id)
            except JobNotFound:
                self.store.remove(rec)
                return 0
            settings = self.repo.load_spec(job.spec_ref)
            wanted = sources(settings).get(source)
            if wanted is None or config_hash(*wanted) != rec.config:
                self.plan(job_id, settings)
                return 0
            new, fire = self._decide(rec, wanted[1], now_ms)
            started = self._start(job, fire) if fire else 0
            if fire is not None and started:
                due = fire.info.get("time_ms") or rec.next_ms or now_ms
                trigger_fired(fire.trigger.value, int(due), now_ms)
            if self.store.commit(rec, new, sides=rec.sides):
                return started
            if fire is None:
                continue  # an event or a run end changed the state meanwhile: decide again
            return started  # another host checked it; its run and ours are the same run
        return 0

    def _decide(
        self, rec: TriggerRecord, setting: Mapping[str, Any], now_ms: int
    ) -> tuple[TriggerRecord, Fire | None]:
        checked = replace(rec, last_check_ms=now_ms)
        if rec.kind == "cron":
            return self._decide_cron(checked, setting, now_ms)
        if rec.kind == "periodic":
            return self._decide_periodic(checked, trigger_settings(setting), now_ms)
        if rec.kind == "file_arrival":
            return self._decide_file(checked, trigger_settings(setting), now_ms)
        if rec.kind == "table_update":
            return self._decide_table(checked, trigger_settings(setting), now_ms)
        if rec.kind == "continuous":
            return self._decide_continuous(checked, setting, now_ms)
        return self._decide_completion(checked, trigger_settings(setting), now_ms)

    def _decide_cron(
        self, rec: TriggerRecord, schedule: Mapping[str, Any], now_ms: int
    ) -> tuple[TriggerRecord, Fire | None]:
        instant = rec.next_ms
        assert instant is not None
        after = max(now_ms, instant + MIN_SCHEDULE_GAP_MS - 1)
        new = replace(rec, next_ms=next_cron_fire(schedule, after), last_fire_ms=instant, fires=rec.fires + 1)
        return new, Fire(TriggerType.PERIODIC, f"schedule-{instant}", {"time_ms": instant})

    def _decide_periodic(
        self, rec: TriggerRecord, periodic: Mapping[str, Any], now_ms: int
    ) -> tuple[TriggerRecord, Fire | None]:
        decision = periodic_rules.periodic_decision(periodic, rec.last_fire_ms, rec.created_ms, now_ms)
        new = replace(rec, next_ms=decision.next_check_ms, last_fire_ms=decision.last_fire_ms)
        if not decision.fire:
            return new, None
        slot = decision.slot_ms
        return replace(new, fires=rec.fires + 1), Fire(
            TriggerType.PERIODIC, f"periodic-{slot}", {"time_ms": slot}
        )

    def _decide_file(
        self, rec: TriggerRecord, settings: Mapping[str, Any], now_ms: int
    ) -> tuple[TriggerRecord, Fire | None]:
        state = file_rules.FileArrivalState.from_json(self.store.state_text(rec))
        error = rec.error
        if file_rules.listing_due(state, now_ms, reconcile_interval_ms=self.poll_ms):
            location = parse_location(settings["url"])
            try:
                listing = self.list_location(location)
                state = file_rules.reconcile_listing(state, listing, now_ms)
                error = ""
            except FloeError as bad:
                error = bad.message
                state = replace(state, last_listing_ms=now_ms)  # try again at the next listing
            except OSError as bad:
                error = f"could not list {settings['url']}: {bad}"
                state = replace(state, last_listing_ms=now_ms)
        fire_now, after = file_rules.due(settings, state, now_ms)
        fire = None
        if fire_now:
            token = f"file-{rec.fires}-{state.last_change_ms}"
            info = {"time_ms": now_ms, "file_arrival_location": settings["url"]}
            fire = Fire(TriggerType.FILE_ARRIVAL, token, info)
        next_ms = file_rules.next_check_ms(settings, after, reconcile_interval_ms=self.poll_ms)
        return _checked(rec, after.to_json(), error, next_ms, fire, now_ms), fire

    def _decide_table(
        self, rec: TriggerRecord, settings: Mapping[str, Any], now_ms: int
    ) -> tuple[TriggerRecord, Fire | None]:
        state = table_rules.TableUpdateState.from_json(self.store.state_text(rec))
        error = rec.error
        try:
            latest = {name: self.delta_version(name) for name in settings["table_names"]}
            state = table_rules.observe_versions(state, latest, now_ms)
            error = ""
        except (FloeError, OSError) as bad:
            error = bad.message if isinstance(bad, FloeError) else f"could not read a Delta log: {bad}"
        updated = table_rules.updated_tables(settings, state)
        fire_now, after = table_rules.due(settings, state, now_ms)
        fire = None
        if fire_now:
            token = f"table-{rec.fires}-{state.last_change_ms}"
            info = {"time_ms": now_ms, "updated_tables": updated}
            fire = Fire(TriggerType.TABLE, token, info)
        ready = table_rules.next_check_ms(settings, after)
        next_ms = now_ms + self.poll_ms if ready is None else min(ready, now_ms + self.poll_ms)
        return _checked(rec, after.to_json(), error, next_ms, fire, now_ms), fire

    def _latest_delta_version(self, table: str) -> int | None:
        """The newest commit version of the Delta table at `table` (a local path or `file://` URL read
        directly; a blob URL through a listing of its `_delta_log/`), None when there is none yet."""
        if "://" not in table or table.startswith("file:"):
            return table_rules.latest_delta_version(table)
        location = parse_location(table.rstrip("/") + "/_delta_log/")
        versions = [table_rules.commit_version(path) for path, _, _ in self.list_location(location)]
        return max((v for v in versions if v is not None), default=None)

    def _decide_continuous(
        self, rec: TriggerRecord, settings: Mapping[str, Any], now_ms: int
    ) -> tuple[TriggerRecord, Fire | None]:
        state = continuous_rules.ContinuousState.from_json(self.store.state_text(rec))
        active = len(self.jobs.slots.active_runs(rec.job_id))
        decision = continuous_rules.continuous_decision(
            settings, active, state.last_run_end_ms, now_ms, consecutive_failures=state.consecutive_failures
        )
        if decision.start:
            token = f"continuous-{rec.fires}-{state.last_run_end_ms or 0}"
            new = replace(rec, next_ms=now_ms + CONTINUOUS_CHECK_MS, fires=rec.fires + 1, last_fire_ms=now_ms)
            return new, Fire(TriggerType.CONTINUOUS, token, {"time_ms": now_ms})
        if decision.next_check_ms is not None:
            return replace(rec, next_ms=decision.next_check_ms), None
        return replace(rec, next_ms=now_ms + CONTINUOUS_CHECK_MS), None

    def _decide_completion(
        self, rec: TriggerRecord, settings: Mapping[str, Any], now_ms: int
    ) -> tuple[TriggerRecord, Fire | None]:
        """Run ends fire job-completion triggers at once (`on_run_finished`); this periodic check reads the
        newest runs of each upstream job so that a run end whose host crashed before telling is not lost."""
        state = completion_rules.JobCompletionState.from_json(self.store.state_text(rec))
        ended = []
        for upstream in completion_rules.upstream_job_ids(settings):
            for run_id in self.repo.latest_run_ids(int(upstream), RECENT_RUNS):
                try:
                    run = self.repo.get_run_record(run_id)
                except FloeError:
                    continue
                if run.is_final and run.end_time and run.end_time > rec.created_ms:
                    ended.append(run)
        fire = None
        for run in sorted(ended, key=lambda r: (r.end_time or 0, r.run_id)):
            fire, state = self._completion_fire(settings, state, run, paused=rec.paused)
            if fire is not None:
                break  # one run per check; the next check folds in the rest
        new = replace(
            rec,
            state=state.to_json(),
            next_ms=now_ms + self.poll_ms,
            fires=rec.fires + (1 if fire else 0),
            last_fire_ms=now_ms if fire else rec.last_fire_ms,
        )
        return new, fire

    def _completion_fire(
        self,
        settings: Mapping[str, Any],
        state: completion_rules.JobCompletionState,
        finished: Run,
        *,
        paused: bool,
    ) -> tuple[Fire | None, completion_rules.JobCompletionState]:
        """Fold one finished upstream run into a job-completion state; the run to start, if it completes
        the set."""
        result = finished.result.value if finished.result else "INTERNAL_ERROR"
        end_ms = finished.end_time or to_millis(self.clock.now())
        fire_now, after = completion_rules.on_run_finished(
            settings, state, finished.job_id, finished.run_id, result, end_ms, paused=paused
        )
        if not fire_now:
            return None, after
        info = {
            "time_ms": end_ms,
            "job_completion": {"completed_jobs": completion_rules.completed_jobs(settings, after)},
        }
        return Fire(TriggerType.JOB_COMPLETION, f"completion-{finished.run_id}", info), after

    def _start(self, job: StoredJob, fire: Fire) -> int:
        """Start the run a trigger asked for (idempotent through `fire.token`); 1 if it exists now."""
        request = validate_run_now({"job_id": job.job_id, "idempotency_token": fire.token})
        try:
            run = self.jobs.run_now(
                request, creator=job.creator_user_name, trigger=fire.trigger, trigger_info=fire.info
            )
        except InvalidState:
            return 1  # another host holds the token and is creating the run
        log.info("job %s: %s run %s (%s)", job.job_id, fire.trigger.value, run.run_id, fire.token)
        return 1

    # ------------------------------------------------------------------------------------ run ends

    def on_run_finished(self, run: Run) -> None:
        """A job run ended: wake the job's continuous source, and fire the job-completion triggers of
        the jobs downstream of it."""
        if run.run_type is not RunType.JOB_RUN:
            return
        if self.repo.load_spec(run.spec_ref).get("continuous") is not None:
            self._continuous_ended(run)
        for downstream in self.store.downstream(run.job_id):
            try:
                self._completion(downstream, run)
            except FloeError as bad:
                log.warning("job-completion trigger of job %s: %s", downstream, bad.message)

    def _continuous_ended(self, run: Run) -> None:
        end_ms = run.end_time or to_millis(self.clock.now())
        succeeded = run.result is not None and run.result.is_success
        for _ in range(_MAX_RACES):
            rec = self.store.record(run.job_id, "c")
            if rec is None or rec.paused:
                return
            state = continuous_rules.ContinuousState.from_json(self.store.state_text(rec))
            if state.last_run_end_ms is not None and state.last_run_end_ms >= end_ms:
                return  # this end (or a later one) is recorded already
            state = state.on_run_finished(succeeded, end_ms)
            allowed = end_ms + continuous_rules.restart_backoff_ms(state.consecutive_failures)
            if self.store.commit(rec, replace(rec, state=state.to_json(), next_ms=allowed), sides=rec.sides):
                return

    def _completion(self, job_id: int, finished: Run) -> None:
        for _ in range(_MAX_RACES):
            rec = self.store.record(job_id, "t")
            if rec is None or rec.kind != "job_completion":
                return
            try:
                job = self.repo.get_job(job_id)
            except JobNotFound:
                self.store.remove(rec)
                return
            settings = self.repo.load_spec(job.spec_ref)
            trigger = settings.get("trigger") or {}
            if (
                trigger_kind(trigger) != "job_completion"
                or config_hash("job_completion", trigger) != rec.config
            ):
                self.plan(job_id, settings)
                continue
            state = completion_rules.JobCompletionState.from_json(self.store.state_text(rec))
            fire, after = self._completion_fire(trigger_settings(trigger), state, finished, paused=rec.paused)
            if after == state:
                return
            if fire is not None:
                self._start(job, fire)
            new = replace(
                rec,
                state=after.to_json(),
                fires=rec.fires + (1 if fire else 0),
                last_fire_ms=to_millis(self.clock.now()) if fire else rec.last_fire_ms,
            )
            if self.store.commit(rec, new, sides=rec.sides):
                return

    # ------------------------------------------------------------------------------------ file events

    def file_locations(self) -> list[tuple[int, StorageLocation, str]]:
        """(job id, location, url) of every file-arrival trigger."""
        out = []
        for job_id, url in self.store.locations():
            try:
                out.append((job_id, parse_location(url), url))
            except FloeError:
                continue
        return out

    def blob_created(self, url: str, size: int, modified_ms: int | None) -> int:
        """A file appeared (or changed) at `url`: record it for every file-arrival trigger watching a
        folder above it. Returns how many triggers recorded it as new."""
        now_ms = to_millis(self.clock.now())
        recorded = 0
        for job_id, location, _ in self.file_locations():
            path = location.relative(url)
            if path is None or listing.ignored(path):
                continue
            for _ in range(_MAX_RACES):
                rec = self.store.record(job_id, "t")
                if rec is None or rec.kind != "file_arrival" or rec.paused:
                    break
                state = file_rules.FileArrivalState.from_json(self.store.state_text(rec))
                after = file_rules.record_arrival(state, path, size, modified_ms, now_ms)
                if after == state:
                    break
                settings = self._trigger_settings_for(rec)
                if settings is None:
                    break
                next_ms = file_rules.next_check_ms(settings, after, reconcile_interval_ms=self.poll_ms)
                if self.store.commit(
                    rec, replace(rec, state=after.to_json(), next_ms=next_ms), sides=rec.sides
                ):
                    recorded += 1
                    break
        return recorded

    def _trigger_settings_for(self, rec: TriggerRecord) -> Mapping[str, Any] | None:
        try:
            settings = self.repo.load_spec(self.repo.get_job(rec.job_id).spec_ref)
        except JobNotFound:
            return None
        trigger = settings.get("trigger")
        return trigger_settings(trigger) if trigger else None

    # ------------------------------------------------------------------------------------- reading

    def describe(self, job_id: int) -> dict[str, Any]:
        """`trigger_state` for jobs/get?include_trigger_state=true (`core.triggers.describe`)."""
        return describe(self.store, job_id)


def _checked(
    rec: TriggerRecord, state: str, error: str, next_ms: int, fire: Fire | None, now_ms: int
) -> TriggerRecord:
    """A file-arrival or table-update trigger after a check at `now_ms` that fired (`fire`) or not."""
    return replace(
        rec,
        state=state,
        error=error,
        next_ms=max(next_ms, now_ms + 1),
        fires=rec.fires + (1 if fire else 0),
        last_fire_ms=now_ms if fire else rec.last_fire_ms,
    )
