"""What the tests of task processes share: a collector of `on_exit` calls to wait on."""

from __future__ import annotations

import threading

import pytest

from core.compute.process import ProcessExit

WAIT = 10.0  # seconds; an upper bound for things that should take milliseconds


class Exits:
    """Collects on_exit calls; tests wait on it with a condition, never with a fixed sleep."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.calls: list[ProcessExit] = []
        self.threads: list[str] = []

    def __call__(self, ended: ProcessExit) -> None:
        with self.cond:
            self.calls.append(ended)
            self.threads.append(threading.current_thread().name)
            self.cond.notify_all()

    def wait(self, key: str, timeout: float = WAIT) -> ProcessExit:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(c.key == key for c in self.calls), timeout)
            assert ok, f"no exit reported for {key!r} within {timeout}s"
            return next(c for c in self.calls if c.key == key)

    def wait_count(self, n: int, timeout: float = WAIT) -> list[ProcessExit]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= n, timeout), f"{len(self.calls)}/{n} exits"
            return list(self.calls)


@pytest.fixture
def exits() -> Exits:
    return Exits()
