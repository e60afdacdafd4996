"""The Queue contract of `core.store.ports`, on every adapter.

Visibility and delays are whole seconds on Azure, so these tests wait on real time, with short timeouts and
generous margins: they check behaviour, they are not benchmarks.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from core.store import LimitExceeded, Message, Queue, ReceiptExpired, Storage, open_storage


@pytest.fixture
def queue(storage: Storage) -> Queue:
    return storage.queues.queue("work")


def receive_one(queue: Queue, **options: Any) -> Message:
    messages = queue.receive(**options)
    assert len(messages) == 1, messages
    return messages[0]


def test_queue_returns_the_same_object(storage: Storage) -> None:
    assert storage.queues.queue("work") is storage.queues.queue("work")
    assert storage.queues.queue("work").name == "work"


def test_delete_queue_drops_its_messages_and_absent_queues_are_fine(storage: Storage) -> None:
    gone = storage.queues.queue("host-gone")
    gone.send("a kill nobody will receive")
    storage.queues.queue("kept").send("stays")
    storage.queues.delete_queue("host-gone")
    storage.queues.delete_queue("host-gone")
    storage.queues.delete_queue("never-made")
    assert [m.body for m in storage.queues.queue("kept").receive()] == ["stays"]


def test_send_receive_delete(queue: Queue) -> None:
    body = '{"v":1,"kind":"run.advance","run_id":9007199254740991,"note":"héllo 🌍"}'
    queue.send(body)
    message = receive_one(queue)
    assert message.body == body
    assert message.dequeue_count == 1
    assert message.id and message.receipt
    assert isinstance(message.inserted_at, datetime) and message.inserted_at.tzinfo is not None
    queue.delete(message)
    assert queue.receive() == []
    assert queue.approximate_count() == 0


def test_receive_on_an_empty_queue_returns_at_once(queue: Queue) -> None:
    started = time.monotonic()
    assert queue.receive() == []
    assert time.monotonic() - started < 1


def test_a_received_message_is_invisible_then_comes_back(queue: Queue) -> None:
    queue.send("again")
    first = receive_one(queue, visibility_timeout=1)
    assert queue.receive() == []
    second = receive_one(queue, wait_seconds=5)
    assert (second.id, second.body, second.dequeue_count) == (first.id, "again", 2)
    assert second.receipt != first.receipt
    with pytest.raises(ReceiptExpired):
        queue.delete(first)
    queue.delete(second)
    assert queue.receive() == []


def test_delay_seconds_hides_a_new_message(queue: Queue) -> None:
    started = time.monotonic()
    queue.send("later", delay_seconds=1)
    assert queue.receive() == []
    message = receive_one(queue, wait_seconds=5)
    assert message.body == "later" and message.dequeue_count == 1
    assert 0.5 < time.monotonic() - started < 4.5


def test_extend_returns_a_new_receipt_and_invalidates_the_old(queue: Queue) -> None:
    queue.send("long work")
    message = receive_one(queue, visibility_timeout=1)
    extended = queue.extend(message, 30)
    assert extended.receipt != message.receipt
    assert (extended.id, extended.body, extended.dequeue_count) == (message.id, message.body, 1)
    assert queue.receive(wait_seconds=1.5) == []  # the original timeout has run out, the extension holds
    with pytest.raises(ReceiptExpired):
        queue.extend(message, 30)
    with pytest.raises(ReceiptExpired, match="receipt is no longer valid"):
        queue.delete(message)
    queue.delete(extended)
    assert queue.approximate_count() == 0


def test_extend_with_zero_releases_the_message(queue: Queue) -> None:
    queue.send("give back")
    message = receive_one(queue, visibility_timeout=30)
    queue.extend(message, 0)
    again = receive_one(queue, wait_seconds=3)
    assert (again.id, again.dequeue_count) == (message.id, 2)


def test_delete_twice_raises_receipt_expired(queue: Queue) -> None:
    queue.send("once")
    message = receive_one(queue)
    queue.delete(message)
    with pytest.raises(ReceiptExpired):
        queue.delete(message)
    with pytest.raises(ReceiptExpired):
        queue.extend(message, 10)


def test_max_messages(queue: Queue) -> None:
    for i in range(5):
        queue.send(f"m{i}")
    first = queue.receive(max_messages=3)
    assert len(first) == 3
    rest = queue.receive(max_messages=32)
    assert len(rest) == 2
    assert sorted(m.body for m in first + rest) == [f"m{i}" for i in range(5)]
    assert len({m.id for m in first + rest}) == 5


@pytest.mark.parametrize("max_messages", [0, 33])
def test_max_messages_outside_1_to_32_is_refused(queue: Queue, max_messages: int) -> None:
    with pytest.raises(LimitExceeded, match=r"1\.\.32"):
        queue.receive(max_messages=max_messages)


def test_approximate_count_includes_invisible_messages(queue: Queue) -> None:
    for i in range(3):
        queue.send(f"m{i}")
    assert queue.approximate_count() == 3
    message = receive_one(queue)
    assert queue.approximate_count() == 3
    queue.delete(message)
    assert queue.approximate_count() == 2


def test_queues_are_separate(storage: Storage) -> None:
    storage.queues.queue("one").send("for one")
    assert storage.queues.queue("two").receive() == []
    assert receive_one(storage.queues.queue("one")).body == "for one"


def test_a_waiting_receive_returns_as_soon_as_a_message_is_sent(queue: Queue) -> None:
    got: list[Message] = []
    elapsed: list[float] = []

    def waiter() -> None:
        started = time.monotonic()
        got.extend(queue.receive(wait_seconds=5))
        elapsed.append(time.monotonic() - started)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)
    queue.send("wake up")
    thread.join(timeout=10)
    assert [m.body for m in got] == ["wake up"]
    assert elapsed[0] < 2


def test_competing_threads_get_each_message_once(queue: Queue) -> None:
    bodies = [f"m{i}" for i in range(40)]
    for body in bodies:
        queue.send(body)
    seen: list[str] = []
    lock = threading.Lock()

    def consumer() -> None:
        while batch := queue.receive(max_messages=4, visibility_timeout=60):
            with lock:
                seen.extend(m.body for m in batch)

    threads = [threading.Thread(target=consumer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == sorted(bodies)


def _consume(root: Path, start: Any, results: Any) -> None:
    store = open_storage("sqlite", root=root)
    queue = store.queues.queue("work")
    queue.approximate_count()  # opens this process's connection before the race starts
    start.wait()
    got = []
    while batch := queue.receive(visibility_timeout=60, wait_seconds=0.3):
        got += [m.body for m in batch]
    store.close()
    results.put(got)


def test_sqlite_competing_processes_get_each_message_once(sqlite_storage: Storage, tmp_path: Path) -> None:
    bodies = [f"m{i:03d}" for i in range(300)]
    queue = sqlite_storage.queues.queue("work")
    for body in bodies:
        queue.send(body)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(target=_consume, args=(tmp_path / "store", start, results)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    got = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert sorted(got[0] + got[1]) == bodies
    assert queue.receive() == []
