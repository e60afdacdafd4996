"""A few daemon threads that run delivery jobs now or after a delay.

Sending an email or a webhook can take seconds (a slow server, retries with backoff), and nothing in a
run's path may wait for it: queue workers and the tick hand jobs to this pool and return. A retry is a job
submitted again with a delay, not a sleeping thread, so a destination that is down holds no thread.

Jobs live in this process only: a host that stops drops the jobs still waiting (logged). Threads start on
the first job, so a `Floe` that never notifies never starts one.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("floe.notify")

__all__ = ["DeliveryPool"]


class DeliveryPool:
    def __init__(self, *, threads: int = 4, max_pending: int = 10_000) -> None:
        self._threads_wanted = threads
        self._max_pending = max_pending
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._running = 0
        self._closed = False
        self._threads: list[threading.Thread] = []

    def submit(self, job: Callable[[], None], *, delay: float = 0.0) -> bool:
        """Run `job` on a pool thread once `delay` seconds have passed. False (and the job dropped, with a
        log line) when the pool is closed or holds `max_pending` jobs already."""
        with self._cond:
            if self._closed:
                log.info("notification pool closed: a delivery job was dropped")
                return False
            if len(self._heap) >= self._max_pending:
                log.error("%d notification jobs are pending: a delivery job was dropped", len(self._heap))
                return False
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), job))
            if len(self._threads) < self._threads_wanted:
                thread = threading.Thread(
                    target=self._work, name=f"floe-notify-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._cond.notify()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until no job is pending or running (delayed retries included); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking jobs, let running ones finish (up to `timeout`), drop the rest."""
        with self._cond:
            self._closed = True
            dropped = len(self._heap)
            self._heap.clear()
            self._cond.notify_all()
        if dropped:
            log.warning("dropped %d pending notification job(s) on shutdown", dropped)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            with self._cond:
                job = None
                while job is None:
                    if self._closed:
                        return
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        job = heapq.heappop(self._heap)[2]
                        self._running += 1
                    else:
                        wait = self._heap[0][0] - time.monotonic() if self._heap else None
                        self._cond.wait(wait)
            try:
                job()
            except Exception:
                log.exception("a notification job failed")
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
