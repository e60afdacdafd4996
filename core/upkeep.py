"""The timer side of `Floe`: `tick` (the dispatchers' timer), `runner_tick` (a runner's), the polls of runs
whose attempts run on runners, and what a host that is gone leaves behind.

`Upkeep` is a mixin of `core.handlers.Floe`, split off to keep that module readable: its methods use the
repository, services and step functions `Floe` builds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.clock import to_millis
from core.engine import Advance
from core.engine.states import LifeCycle, Result, TerminationCode
from core.errors import RunNotFound
from core.executor import Outcome
from core.messages import POISON_SUFFIX, host_queue
from core.telemetry import redrive_span, run_seen

if TYPE_CHECKING:
    from core.clock import Clock
    from core.clusters import ClusterService
    from core.notify import Notifier
    from core.repository import Repository
    from core.runs import RunService
    from core.store import Storage
    from core.triggers import TriggerService

log = logging.getLogger("floe")

HEARTBEAT_MS = 10_000  # how often a host proves it is alive
HOST_DEAD_MS = 60_000  # a host silent this long has lost its task processes
RECONCILE_MS = 30_000  # how often tick re-drives work that a lost message or host left behind
STUCK_PENDING_MS = 60_000  # a PENDING attempt this old has lost its task.start message


@dataclass
class TickReport:
    triggered: int = 0  # runs started (or found started) by schedules and triggers
    reconciled: bool = False
    redriven: int = 0
    lost: int = 0


class Upkeep:
    """Timers and polls of a `Floe` (see the module docstring)."""

    # What `Floe` provides.
    host_id: str
    clock: Clock
    storage: Storage
    repo: Repository
    runs: RunService
    clusters: ClusterService
    notifier: Notifier
    triggers: TriggerService
    _last_heartbeat: int
    _last_reconcile: int
    _previous_reconcile: int
    _tick_lock: Any

    if TYPE_CHECKING:

        def _task_ended(self, outcome: Outcome) -> None: ...

        def _promote_queued(self, job_id: int, finished_run_id: int) -> None: ...

    def tick(self, now: datetime | None = None) -> TickReport:
        """The timer: start the runs schedules and triggers owe (one range query of the index of due
        triggers), heartbeat, and every RECONCILE_MS re-drive what lost messages or hosts left behind.
        Cheap when nothing is due: one query, one write per HEARTBEAT_MS, and a scan of the active runs."""
        now_ms = to_millis(now or self.clock.now())
        report = TickReport()
        try:
            report.triggered = self.triggers.run_due(now_ms)
        except Exception:
            log.exception("could not check the due triggers")
        self.notifier.tick(now_ms)  # duration warnings whose deadline passed (an in-memory timer)
        with self._tick_lock:
            if now_ms - self._last_heartbeat >= HEARTBEAT_MS:
                self.repo.heartbeat(self.host_id, now_ms)
                self._last_heartbeat = now_ms
            if now_ms - self._last_reconcile < RECONCILE_MS:
                return report
            self._last_reconcile = now_ms
        report.reconciled = True
        since_ms = now_ms - self._previous_reconcile if self._previous_reconcile else RECONCILE_MS
        self._previous_reconcile = now_ms
        try:
            self.triggers.sweep()
        except Exception:
            log.exception("could not plan the triggers of interrupted job saves")
        hosts = self.repo.hosts()
        dead = {h for h, seen in hosts.items() if h != self.host_id and now_ms - seen > HOST_DEAD_MS}
        for run_id in self.repo.active_run_ids():
            try:
                self._reconcile(run_id, dead, now_ms, since_ms, report)
            except RunNotFound:
                continue
            except Exception:
                log.exception("could not reconcile run %s", run_id)
        try:
            live = {h for h in hosts if h not in dead} | {self.host_id}
            self.clusters.reap_orphans(self.repo.active_run_ids(), live)
        except Exception:
            log.exception("could not reap orphan clusters")
        for host in dead:
            self.forget_host(host)
        return report

    def forget_host(self, host_id: str) -> None:
        """Drop what a host that is gone, or stopping, leaves behind: its heartbeat and its queues."""
        queue = host_queue(host_id)
        for name in (queue, queue + POISON_SUFFIX):
            try:
                self.storage.queues.delete_queue(name)
            except Exception:
                log.exception("could not delete the queue %s of host %s", name, host_id)
        self.repo.forget_host(host_id)

    def runner_tick(self, now: datetime | None = None) -> None:
        """The timer of a runner host (`floe runner`), which leaves schedules and re-driving to the
        dispatchers' `tick`: its heartbeat, so the polls of its attempts find it alive; the duration
        warnings of the steps it committed; and every RECONCILE_MS the end of the clusters it started
        whose run is over, or that a dispatcher asked to terminate (left TERMINATING for their owner)."""
        now_ms = to_millis(now or self.clock.now())
        self.notifier.tick(now_ms)
        with self._tick_lock:
            if now_ms - self._last_heartbeat >= HEARTBEAT_MS:
                self.repo.heartbeat(self.host_id, now_ms)
                self._last_heartbeat = now_ms
            if now_ms - self._last_reconcile < RECONCILE_MS:
                return
            self._last_reconcile = now_ms
        try:
            live = {h for h, seen in self.repo.hosts().items() if now_ms - seen <= HOST_DEAD_MS}
            self.clusters.reap_orphans(self.repo.active_run_ids(), live | {self.host_id})
        except Exception:
            log.exception("could not reap the clusters of runner %s", self.host_id)

    def _reconcile(self, run_id: int, dead: set[str], now_ms: int, since_ms: int, report: TickReport) -> None:
        state = self.repo.load_run(run_id)
        if state.run.life_cycle is LifeCycle.QUEUED:
            # Its promotion may have been lost with a host, or the job's limit was raised since.
            self._promote_queued(state.run.job_id, 0)
            return
        self.notifier.check_durations(state, now_ms)  # runs this host's timer does not know of
        run_seen(state.run, now_ms)
        for task in state.tasks.values():
            if task.life_cycle is LifeCycle.RUNNING and task.lease_owner in dead:
                report.lost += 1
                self._task_ended(
                    Outcome(
                        run_id,
                        task.run_id,
                        Result.FAILED,
                        f"Floe host {task.lease_owner}, which ran this attempt, stopped responding",
                        TerminationCode.INTERNAL_ERROR,
                    )
                )
            elif task.life_cycle is LifeCycle.PENDING and _redrive_due(now_ms - task.queued_time, since_ms):
                report.redriven += 1
                with redrive_span(state.run, task, self.host_id):
                    self.runs.start_task(state.run, task.run_id)
        self.runs.transact(run_id, lambda s: None if s.run.is_final else Advance())

    def _poll_run(self, run_id: int) -> None:
        """Check a run whose attempts run on runners (`RunService.use_runners`), and poll again later while
        it is not over. A runner records an attempt's end itself as soon as its process exits; the poll is
        what notices a runner that died with its attempts (they end FAILED, so retries apply), without the
        tick having to look at every active run. Attempts waiting for a runner, or for their cluster, are
        left to their task.start messages."""
        state = self.repo.load_run(run_id)  # fresh: the runners changed it, not this process
        if state.run.is_final:
            return  # the chain ends with the run
        owned = [t for t in state.tasks.values() if t.life_cycle is LifeCycle.RUNNING]
        owners = {t.lease_owner for t in owned if t.lease_owner}
        if owners:
            now_ms = to_millis(self.clock.now())
            hosts = self.repo.hosts()
            dead = {h for h in owners if now_ms - hosts.get(h, 0) > HOST_DEAD_MS}
            for task in owned:
                if task.lease_owner in dead:
                    self._task_ended(
                        Outcome(
                            run_id,
                            task.run_id,
                            Result.FAILED,
                            f"Floe runner {task.lease_owner}, which ran this attempt, stopped responding",
                            TerminationCode.INTERNAL_ERROR,
                        )
                    )
        self.runs.poll_run(state.run)


def _redrive_due(waiting_ms: int, since_ms: int) -> bool:
    """Whether a pending attempt's task.start is sent again now: when its wait passed 1, 2, 4, 8...
    times STUCK_PENDING_MS since the previous reconcile (`since_ms` ago). The first message is usually
    not lost but waiting (for a runner, behind a backlog), so the copies thin out instead of piling up."""

    def passed(ms: int) -> int:  # how many of those marks lie before `ms`
        return 0 if ms <= STUCK_PENDING_MS else ((ms - 1) // STUCK_PENDING_MS).bit_length()

    return passed(waiting_ms) != passed(max(0, waiting_ms - since_ms))
