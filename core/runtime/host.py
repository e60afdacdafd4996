"""The local runtime: one `floe serve` host running queue workers, a tick loop and the HTTP API.

Several hosts can share one Azure Storage account: queues hand each message to one of them, and every
handler claims its work with a conditional write, so no task runs twice. Each host also drains its own
queue (`floe-host-<id>`) for work only it can do, such as killing a process it started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from core.errors import FloeError
from core.handlers import Floe
from core.messages import MAX_DEQUEUE, WORK_QUEUE, InvalidMessage, host_queue
from core.poison import Poisoned, keep
from core.runtime.watcher import FolderWatcher
from core.settings import Settings
from core.store import Queue, ReceiptExpired, Storage, open_storage
from core.telemetry import tick

log = logging.getLogger("floe.runtime")

VISIBILITY_S = 60  # a message a worker holds this long without finishing is delivered again
WAIT_S = 1.0  # how long an idle worker waits for a message before checking whether to stop
WATCH_REFRESH_S = 5.0  # how often the folder watcher picks up new or removed file-arrival triggers


def storage_from(settings: Settings) -> Storage:
    if settings.storage == "azure":
        return open_storage(
            "azure",
            connection_string=settings.azure_connection_string,
            prefix=settings.storage_prefix,
            client_id=settings.azure_client_id,
        )
    return open_storage("sqlite", root=settings.home, prefix=settings.storage_prefix)


class LocalHost:
    """Workers and the tick loop of one host, around one `Floe`. `start()` returns at once."""

    def __init__(self, settings: Settings, floe: Floe | None = None) -> None:
        self.settings = settings
        self.floe = floe or Floe(settings, storage_from(settings))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        queues = self.floe.storage.queues
        work = queues.queue(WORK_QUEUE)
        for i in range(self.settings.workers):
            self._spawn(f"floe-worker-{i}", lambda: self._drain(work))
        mine = queues.queue(host_queue(self.floe.host_id))
        self._spawn("floe-host-queue", lambda: self._drain(mine))
        self._spawn("floe-tick", self._tick_loop)
        self._spawn("floe-watcher", self._watch_loop)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self.floe.forget_host(self.floe.host_id)  # nobody will drain its queue again
        self.floe.close()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _watch_loop(self) -> None:
        """Keep a folder watcher on every local file-arrival location: the fast path for file arrival
        (the tick's periodic listing finds whatever it misses)."""
        watcher = FolderWatcher(self._file_seen)
        try:
            while not self._stop.is_set():
                try:
                    locations = self.floe.triggers.file_locations()
                    watcher.watch(loc.path for _, loc, _ in locations if loc.kind == "local")
                except Exception:
                    log.exception("could not refresh the watched folders")
                self._stop.wait(WATCH_REFRESH_S)
        finally:
            watcher.close()

    def _file_seen(self, path: str, size: int, modified_ms: int) -> None:
        # The next tick (within FLOE_TICK_SECONDS) fires the trigger: by then the close that follows a
        # file's creation has usually been recorded too, so a small file written at once starts one run.
        self.floe.handle_blob_created(path, size, modified_ms)

    def _tick_loop(self) -> None:
        scheduled_ms: float | None = None  # the previous tick's start plus the interval
        while not self._stop.is_set():
            started = time.time()
            self._tick(scheduled_ms)
            scheduled_ms = (started + self.settings.tick_seconds) * 1000
            self._stop.wait(self.settings.tick_seconds)

    def _tick(self, scheduled_ms: float | None = None) -> None:
        with tick(self.floe.host_id, scheduled_ms=scheduled_ms) as work:
            try:
                report = self.floe.tick()
            except Exception:
                log.exception("tick failed")
                return
            work.worked = bool(report.triggered or report.redriven or report.lost)

    def _drain(self, queue: Queue) -> None:
        while not self._stop.is_set():
            self._drain_once(queue)

    def _drain_once(self, queue: Queue) -> None:
        """Receive one message (waiting up to WAIT_S) and handle it."""
        try:
            messages = queue.receive(max_messages=1, visibility_timeout=VISIBILITY_S, wait_seconds=WAIT_S)
        except Exception:
            log.exception("receiving from %s failed", queue.name)
            self._stop.wait(1.0)
            return
        for message in messages:
            deliver(self.floe, queue, message)


def deliver(floe: Floe, queue: Queue, message: object) -> None:
    """Handle one received message as the Azure Functions host would: delete it on success; on failure
    let it come back (after a short backoff), and after MAX_DEQUEUE deliveries keep it as a poison message
    (`core.poison`) and delete it. A message that can never succeed is kept at once."""
    try:
        floe.handle_message(
            message.body,  # type: ignore[attr-defined]
            queue=queue.name,
            enqueued_at=message.inserted_at,  # type: ignore[attr-defined]
            dequeue_count=message.dequeue_count,  # type: ignore[attr-defined]
        )
    except InvalidMessage as bad:
        log.error("message on %s cannot be handled: %s", queue.name, bad.message)
        _to_poison(floe, queue, message)
        return
    except Exception as failed:
        count = message.dequeue_count  # type: ignore[attr-defined]
        text = failed.message if isinstance(failed, FloeError) else repr(failed)
        if count >= MAX_DEQUEUE:
            log.error("message on %s failed %d times: %s", queue.name, count, text)
            _to_poison(floe, queue, message)
        else:
            log.warning(
                "message on %s failed (delivery %d), will retry: %s",
                queue.name,
                count,
                text,
                exc_info=not isinstance(failed, FloeError),
            )
            try:
                queue.extend(message, min(2.0**count, 30.0))  # type: ignore[arg-type]
            except ReceiptExpired:
                pass
        return
    try:
        queue.delete(message)  # type: ignore[arg-type]
    except ReceiptExpired:
        pass  # delivered again meanwhile; the handler is idempotent


def _to_poison(floe: Floe, queue: Queue, message: object) -> None:
    poisoned = Poisoned(
        queue.name,
        message.id,  # type: ignore[attr-defined]
        message.body,  # type: ignore[attr-defined]
        message.inserted_at,  # type: ignore[attr-defined]
        message.dequeue_count,  # type: ignore[attr-defined]
    )
    keep(floe.storage.blobs, poisoned, now=floe.clock.now())
    try:
        queue.delete(message)  # type: ignore[arg-type]
    except ReceiptExpired:
        pass
