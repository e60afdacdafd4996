"""The notifier: from what happens to runs, the notifications to send, each sent once, never in the run's way.

Where events come from (wired in `core.handlers.Floe`):

- `on_step(before, after)`, a `RunService.on_step` hook: the run started (job-level `on_start`), a task
  attempt started or ended (task-level `on_start`, `on_success`, `on_failure`).
- `on_run_finished(run)`, a `RunService.on_finished` hook: job-level `on_success` / `on_failure`.
- Duration warnings (`health.rules` RUN_DURATION_SECONDS GREATER_THAN): when a step starts a run or an
  attempt that has a rule, its deadline goes into an in-memory timer; `tick(now_ms)` (every tick of the
  host, cheap when nothing is due) checks the runs whose deadline passed. `check_durations(state, now_ms)`,
  called from the tick's reconcile pass for every active run, catches what the timer cannot know: runs
  started by another host or before a restart.

What fires is decided by the pure rules of `core.notify.rules`. Hooks only decide and hand the work to the
notifier's `DeliveryPool`; they never wait for a server and never raise into the run's path.

Once, under at-least-once hooks and several hosts: every notice is claimed by inserting
`notifications` / PartitionKey run id / RowKey `c.<notice key>` (insert-if-absent) before anything is sent;
whoever loses the insert sends nothing. So a notification is sent at most once; one whose claimant died
before sending is lost (accepted: notifications are advice, the run's state is the truth).

Delivery: one job per recipient (an email address, or a destination id), retried after 1, 2 and 4 s when
the failure may pass (`core.notify.delivery`). Each outcome is recorded on the run as
`notifications` / run id / `d.<notice key>.<n>`: the event, the task, the target, `sent` / `failed` /
`skipped`, the error, the attempts and the time (`history(run_id)`, served at
`GET /api/floe/runs/notifications?run_id=`). A failure never changes the run. Without FLOE_SMTP_HOST
emails are skipped: one log line per notification, and a `skipped` record per address.

Unknown destination ids are not refused when a job is saved (destinations may be created after the
job, or deleted later); a send to one is recorded as failed.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from core.clock import Clock, to_millis
from core.engine.records import Run
from core.errors import RunNotFound
from core.notify.delivery import (
    BACKOFF_SECONDS,
    DeliveryError,
    EmailSender,
    SmtpConfig,
    WebhookSender,
    check_address,
)
from core.notify.destinations import DestinationService, DestinationType
from core.notify.messages import (
    Message,
    describe,
    email_message,
    generic_payload,
    slack_payload,
    teams_payload,
)
from core.notify.pool import DeliveryPool
from core.notify.rules import (
    Notice,
    duration_deadlines,
    durations_exceeded,
    has_notifications,
    run_finished,
    run_started,
    task_changes,
    threshold_seconds,
)
from core.repository import Repository, RunState
from core.settings import Settings
from core.store import Entity, EntityExists
from core.telemetry import notification_span

log = logging.getLogger("floe.notify")

__all__ = ["Notifier"]

TABLE = "notifications"
_REMEMBERED = 10_000  # notice keys this process knows are claimed (spares the insert that would fail)
_PLANS = 512
_MAX_ERROR = 1000
_NO_SMTP = "no SMTP server is configured (FLOE_SMTP_HOST)"


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a run's settings can notify about at all (cached per settings snapshot)."""

    notifies: bool
    timed: bool  # some RUN_DURATION_SECONDS rule (with recipients, checked later)


class _Skipped(Exception):
    """Nothing was sent, and that is not an error (e.g. no SMTP server is configured)."""


class Notifier:
    def __init__(
        self,
        repo: Repository,
        destinations: DestinationService,
        clock: Clock,
        *,
        email: EmailSender,
        webhooks: WebhookSender,
        public_url: str = "",
        pool: DeliveryPool | None = None,
        backoff: Sequence[float] = BACKOFF_SECONDS,
        host_id: str = "",
    ) -> None:
        self.repo = repo
        self.table = repo.storage.tables.table(TABLE)
        self.destinations = destinations
        self.clock = clock
        self.email = email
        self.webhooks = webhooks
        self.public_url = public_url
        self.pool = pool or DeliveryPool()
        self.backoff = tuple(backoff)
        self.host_id = host_id
        self._lock = threading.Lock()
        self._plans: OrderedDict[str, _Plan] = OrderedDict()
        self._claimed: OrderedDict[str, None] = OrderedDict()  # `_memo` keys known to be claimed
        self._timers: list[tuple[int, int, str]] = []  # (due ms, run id, notice key), a heap
        self._armed: OrderedDict[str, None] = OrderedDict()  # `_memo` keys with a timer (once each)

    @classmethod
    def from_settings(
        cls, settings: Settings, repo: Repository, clock: Clock, *, host_id: str = ""
    ) -> Notifier:
        smtp = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password,
            sender=settings.smtp_from,
        )
        return cls(
            repo,
            DestinationService(repo.storage.tables, clock),
            clock,
            email=EmailSender(smtp),
            webhooks=WebhookSender(),
            public_url=settings.public_url,
            host_id=host_id,
        )

    def __repr__(self) -> str:
        return f"Notifier(smtp={self.email.config.host or None!r})"

    # --------------------------------------------------------------------------------------------- hooks

    def on_step(self, before: RunState, after: RunState) -> None:
        """A step was committed: send what it started or ended; arm the duration timer."""
        found = self._plan(after.run.spec_ref)
        if found is None:
            return
        spec, plan = found
        self._send(
            run_started(before.run, after.run, spec)
            + task_changes(before.tasks, after.run, after.tasks, spec)
        )
        if plan.timed:
            self._arm(after.run.run_id, duration_deadlines(after.run, after.tasks, spec))

    def on_run_finished(self, run: Run) -> None:
        found = self._plan(run.spec_ref)
        if found is not None:
            self._send(run_finished(run, found[0]))

    def check_durations(self, state: RunState, now_ms: int) -> None:
        """Send the duration warnings of one active run that are due at `now_ms`, and arm the timer for the
        next one (the tick's reconcile pass calls this for every active run). Never raises."""
        try:
            found = self._plan(state.run.spec_ref)
            if found is None or not found[1].timed:
                return
            spec = found[0]
            self._send(durations_exceeded(state.run, state.tasks, spec, now_ms))
            self._arm(state.run.run_id, duration_deadlines(state.run, state.tasks, spec))
        except Exception:
            log.exception("could not check the duration of run %s", state.run.run_id)

    def tick(self, now_ms: int) -> None:
        """Check the runs whose duration deadline has passed (on the pool's threads). Never raises: it only
        touches memory."""
        due: dict[int, None] = {}
        with self._lock:
            while self._timers and self._timers[0][0] <= now_ms:
                _, run_id, memo = heapq.heappop(self._timers)
                self._armed.pop(memo, None)  # the check re-arms it if it is not due after all
                if memo not in self._claimed:
                    due[run_id] = None
        for run_id in due:
            self.pool.submit(partial(self._check_run, run_id))

    # ------------------------------------------------------------------------------------------ reads

    def history(self, run_id: int) -> list[dict[str, Any]]:
        """What was sent (or not) for a run, oldest first: `{"event", "task_key", "task_run_id",
        "destination", "status", "error", "attempts", "time"}` (`task_*` only for task-level events)."""
        rows = self.table.scan(_partition(run_id), row_key_from="d.", row_key_to="d/")
        out = []
        for entity in rows:
            record: dict[str, Any] = {
                "event": entity.get("event"),
                "destination": entity.get("target"),
                "status": entity.get("status"),
                "attempts": int(entity.get("attempts", 0)),
                "time": int(entity.get("time", 0)),
            }
            if entity.get("task_run_id"):
                record["task_key"] = entity.get("task_key")
                record["task_run_id"] = int(entity.get("task_run_id"))
            if entity.get("error"):
                record["error"] = entity.get("error")
            out.append(record)
        return sorted(out, key=lambda r: r["time"])

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every delivery handed over so far is done (retries included)."""
        return self.pool.flush(timeout)

    def close(self) -> None:
        self.pool.close()
        self.webhooks.close()

    # -------------------------------------------------------------------------------------- internals

    def _plan(self, spec_ref: str) -> tuple[dict[str, Any], _Plan] | None:
        """The settings and their plan, or None when they notify nobody (the common case, decided once per
        settings snapshot)."""
        with self._lock:
            plan = self._plans.get(spec_ref)
        if plan is not None and not plan.notifies:
            return None
        spec = self.repo.load_spec(spec_ref)
        if plan is None:
            tasks = [t for t in spec.get("tasks") or () if isinstance(t, dict)]
            notifies = has_notifications(spec)
            timed = notifies and any(threshold_seconds(s) is not None for s in (spec, *tasks))
            plan = _Plan(notifies, timed)
            with self._lock:
                self._plans[spec_ref] = plan
                while len(self._plans) > _PLANS:
                    self._plans.popitem(last=False)
        return (spec, plan) if plan.notifies else None

    def _arm(self, run_id: int, deadlines: list[tuple[str, int]]) -> None:
        """Set a timer for each duration warning not armed (or sent) yet."""
        with self._lock:
            for key, due_ms in deadlines:
                memo = _memo(run_id, key)
                if memo in self._armed or memo in self._claimed:
                    continue
                self._armed[memo] = None
                heapq.heappush(self._timers, (due_ms, run_id, memo))
            while len(self._armed) > _REMEMBERED:
                self._armed.popitem(last=False)

    def _check_run(self, run_id: int) -> None:
        try:
            state = self.repo.load_run(run_id)
        except RunNotFound:
            return
        if not state.run.is_final:
            self.check_durations(state, to_millis(self.clock.now()))

    def _send(self, notices: list[Notice]) -> None:
        for notice in notices:
            with self._lock:
                known = _memo(notice.run.run_id, notice.key) in self._claimed
            if not known:
                self.pool.submit(partial(self._claim, notice))

    def _remember(self, notice: Notice) -> None:
        with self._lock:
            self._claimed[_memo(notice.run.run_id, notice.key)] = None
            while len(self._claimed) > _REMEMBERED:
                self._claimed.popitem(last=False)

    def _claim(self, notice: Notice) -> None:
        """Claim the notice (once, across hosts), then hand one delivery job per recipient to the pool."""
        key = _claim_key(notice)
        now = to_millis(self.clock.now())
        props: dict[str, Any] = {"event": notice.event.value, "host": self.host_id, "time": now}
        if notice.task is not None:
            props["task_run_id"] = notice.task.run_id
        try:
            self.table.insert(Entity(_partition(notice.run.run_id), key, props))
        except EntityExists:
            self._remember(notice)
            return
        self._remember(notice)
        message = describe(notice, public_url=self.public_url)
        targets = [("email", a) for a in notice.recipients.emails]
        targets += [("destination", d) for d in notice.recipients.destinations]
        if notice.recipients.emails and not self.email.configured:
            log.info(
                "not emailing %s about %s of run %s: %s",
                ", ".join(notice.recipients.emails),
                notice.event.value,
                notice.run.run_id,
                _NO_SMTP,
            )
        for index, target in enumerate(targets):
            self.pool.submit(partial(self._deliver, notice, message, target, index, 1))

    def _deliver(
        self, notice: Notice, message: Message, target: tuple[str, str], index: int, attempt: int
    ) -> None:
        kind, ident = target
        name = f"email:{ident}" if kind == "email" else ident
        try:
            with notification_span(notice.run, notice.task, notice.event.value, kind, self.host_id):
                if kind == "email":
                    self._email(message, [ident])
                else:
                    self._to_destination(message, ident)
        except _Skipped as skipped:
            self._record(notice, index, name, "skipped", str(skipped), attempt)
            return
        except DeliveryError as failed:
            if failed.retryable and attempt <= len(self.backoff):
                delay = self.backoff[attempt - 1]
                self.pool.submit(
                    partial(self._deliver, notice, message, target, index, attempt + 1), delay=delay
                )
                return
            log.warning(
                "could not send %s of run %s to %s (attempt %d): %s",
                notice.event.value,
                notice.run.run_id,
                name,
                attempt,
                failed.message,
            )
            self._record(notice, index, name, "failed", failed.message, attempt)
            return
        except Exception as bug:
            log.exception("sending %s of run %s to %s failed", notice.event.value, notice.run.run_id, name)
            self._record(notice, index, name, "failed", f"Floe failed while sending: {bug!r}", attempt)
            return
        self._record(notice, index, name, "sent", "", attempt)

    def _email(self, message: Message, to: list[str]) -> None:
        if not self.email.configured:
            raise _Skipped(_NO_SMTP)
        addresses = [check_address(a) for a in to]
        self.email.send(email_message(message, sender=self.email.config.sender, to=addresses))

    def _to_destination(self, message: Message, destination_id: str) -> None:
        destination = self.destinations.find(destination_id)
        if destination is None:
            raise DeliveryError(f"notification destination {destination_id} does not exist", retryable=False)
        config = destination.config
        if destination.type is DestinationType.EMAIL:
            self._email(message, list(config.get("addresses") or ()))
        elif destination.type is DestinationType.WEBHOOK:
            self.webhooks.post(
                config["url"],
                generic_payload(message),
                secret=str(config.get("password") or ""),
                username=str(config.get("username") or ""),
            )
        elif destination.type is DestinationType.SLACK:
            self.webhooks.post(config["url"], slack_payload(message))
        else:
            self.webhooks.post(config["url"], teams_payload(message))

    def _record(
        self, notice: Notice, index: int, target: str, status: str, error: str, attempts: int
    ) -> None:
        props: dict[str, Any] = {
            "event": notice.event.value,
            "target": target,
            "status": status,
            "error": error[:_MAX_ERROR],
            "attempts": attempts,
            "time": to_millis(self.clock.now()),
        }
        if notice.task is not None:
            props.update(task_run_id=notice.task.run_id, task_key=notice.task.task_key)
        row = f"d.{notice.key}.{index:03d}"
        try:
            self.table.upsert(Entity(_partition(notice.run.run_id), row, props))
        except Exception:
            log.exception("could not record the %s notification of run %s", status, notice.run.run_id)


def _partition(run_id: int) -> str:
    return f"{run_id:016d}"


def _claim_key(notice: Notice) -> str:
    """The RowKey that claims a notice (in its run's partition)."""
    return f"c.{notice.key}"


def _memo(run_id: int, key: str) -> str:
    """A notice key made unique across runs, for this process's memory of claims and timers."""
    return f"{run_id}.{key}"
