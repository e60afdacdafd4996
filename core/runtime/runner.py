"""A runner: a host that runs task attempts for dispatchers that do not run them themselves.

With `FLOE_TASKS=runners` the hosts that take API calls, ticks and run.advance messages (the Azure
Functions app, or `floe serve --tasks runners`) never start a task process or a Spark cluster: a pending
attempt's task.start goes to the `floe-tasks` queue, and only runners receive from it. A runner is a
long-lived machine with Java and Spark (a VM, a container), started with `floe runner` against the same
storage. It claims the attempt, brings up the attempt's job cluster (blocking a runner thread, never a
function), starts the task process and records its end as soon as it exits, then advances the run.

The dispatchers follow each run with delayed run.poll messages (see `Floe._poll_run`): a runner that dies
with its attempts stops its heartbeat, and the next poll ends them FAILED, so their retries run on another
runner.

A runner also drains its own queue (`floe-host-<id>`: kills of its attempts), heartbeats, ends the
clusters it started once their run is over (`Floe.runner_tick`), and every few seconds copies what its
running attempts printed to their log blobs, where the dispatchers' get-output reads it. Any number of
runners share the queue; each message goes to one of them and every claim is a conditional write, so no
attempt runs twice.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from core.handlers import Floe
from core.messages import TASK_QUEUE, host_queue
from core.runtime.host import LocalHost, storage_from
from core.settings import Settings
from core.store import Queue

log = logging.getLogger("floe.runtime")

LOG_SHIP_SECONDS = 5.0  # how often the output of running attempts reaches their log blobs
SLOT_WAIT_SECONDS = 0.2  # how often a worker of a full runner looks for a free slot


class Slots:
    """At most `limit` task processes on this runner (0: no limit). A worker takes a slot before it receives
    a task start and gives it back once the start is handled; by then a started process counts itself."""

    def __init__(self, limit: int, running: Callable[[], int]) -> None:
        self.limit = limit
        self._running = running
        self._taking = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.limit and self._running() + self._taking >= self.limit:
                return False
            self._taking += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._taking -= 1


class RunnerHost(LocalHost):
    """Task workers, the host queue and the runner timer of one runner. `start()` returns at once."""

    def __init__(self, settings: Settings, floe: Floe | None = None) -> None:
        settings = dataclasses.replace(settings, tasks="runners")
        super().__init__(settings, floe or Floe(settings, storage_from(settings), run_tasks=True))
        executor = self.floe.executor
        self.slots = Slots(settings.runner_slots, executor.running_count if executor else lambda: 0)

    def start(self) -> None:
        queues = self.floe.storage.queues
        tasks = queues.queue(TASK_QUEUE)
        for i in range(self.settings.workers):
            self._spawn(f"floe-runner-{i}", lambda: self._drain_tasks(tasks))
        mine = queues.queue(host_queue(self.floe.host_id))
        self._spawn("floe-host-queue", lambda: self._drain(mine))
        self._spawn("floe-runner-timer", self._timer_loop)
        log.info("Floe runner %s receiving from %s", self.floe.host_id, tasks.name)

    def _drain_tasks(self, queue: Queue) -> None:
        while not self._stop.is_set():
            if not self.slots.take():
                self._stop.wait(SLOT_WAIT_SECONDS)  # full: the start waits in the queue for another runner
                continue
            try:
                self._drain_once(queue)
            finally:
                self.slots.release()

    def _timer_loop(self) -> None:
        shipped = time.monotonic()
        while not self._stop.is_set():
            try:
                self.floe.runner_tick()
                if self.floe.executor is not None and time.monotonic() - shipped >= LOG_SHIP_SECONDS:
                    shipped = time.monotonic()
                    self.floe.executor.ship_running_logs()
            except Exception:
                log.exception("the runner timer failed")
            self._stop.wait(self.settings.tick_seconds)
