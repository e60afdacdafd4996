"""Queues on SQLite: one row per message in `messages`; a receive claims rows with one UPDATE ... RETURNING.

A waiting receiver sleeps on a condition shared by every adapter instance on the same database file in this
process, so a send here wakes it at once; a short poll notices sends from other processes and delayed
messages becoming visible (it wakes at the earliest `visible_at` when that comes sooner).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from datetime import UTC, datetime

from core.store import limits
from core.store.ports import Message, Queue, QueueStore, ReceiptExpired
from core.store.sqlite._db import Database, guarded

_POLL_SECONDS = 0.1

_SEND = (
    "INSERT INTO messages (id, queue, body, visible_at, dequeue_count, receipt, inserted_at) "
    "VALUES (?, ?, ?, ?, 0, NULL, ?)"
)
_CLAIM = """
UPDATE messages SET dequeue_count = dequeue_count + 1, visible_at = ?, receipt = lower(hex(randomblob(8)))
WHERE rowid IN (
    SELECT rowid FROM messages WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, rowid LIMIT ?
)
RETURNING id, body, dequeue_count, receipt, inserted_at
"""
_NEXT_VISIBLE = "SELECT min(visible_at) FROM messages WHERE queue = ?"
_DELETE = "DELETE FROM messages WHERE id = ? AND queue = ? AND receipt = ?"
_EXTEND = "UPDATE messages SET visible_at = ?, receipt = ? WHERE id = ? AND queue = ? AND receipt = ?"
_COUNT = "SELECT count(*) FROM messages WHERE queue = ?"


class _Signal:
    """Wakes this process's receivers of one queue; `generation` closes the gap between a receiver's empty
    claim and its wait, so a send in that gap is not missed."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self.cond:
            self.generation += 1
            self.cond.notify_all()


_signals: dict[tuple[str, str], _Signal] = {}
_signals_lock = threading.Lock()


def _signal_for(db: Database, queue: str) -> _Signal:
    key = (os.path.realpath(db.path), queue)
    with _signals_lock:
        return _signals.setdefault(key, _Signal())


def _after_fork_in_child() -> None:
    global _signals_lock
    _signals_lock = threading.Lock()
    for signal in _signals.values():
        signal.cond = threading.Condition()


os.register_at_fork(after_in_child=_after_fork_in_child)


class SqliteQueue(Queue):
    def __init__(self, db: Database, name: str, stored_name: str) -> None:
        self.name = name
        self._db = db
        self._queue = stored_name
        self._signal = _signal_for(db, stored_name)

    def __repr__(self) -> str:
        return f"SqliteQueue({self.name!r}, root={str(self._db.root)!r})"

    def send(self, body: str, *, delay_seconds: float = 0) -> None:
        limits.check_message(body)
        limits.check_delay(delay_seconds)
        now = time.time()
        with guarded(self._db) as conn:
            conn.execute(_SEND, (uuid.uuid4().hex, self._queue, body, now + delay_seconds, now))
        self._signal.notify()

    def receive(
        self, *, max_messages: int = 1, visibility_timeout: float = 30, wait_seconds: float = 0
    ) -> list[Message]:
        limits.check_receive(max_messages, visibility_timeout, wait_seconds)
        deadline = time.monotonic() + wait_seconds
        signal = self._signal
        while True:
            generation = signal.generation
            messages = self._claim(max_messages, visibility_timeout)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            timeout = min(remaining, _POLL_SECONDS)
            with guarded(self._db) as conn:
                next_visible = conn.execute(_NEXT_VISIBLE, (self._queue,)).fetchone()[0]
            if next_visible is not None:
                timeout = min(timeout, max(next_visible - time.time(), 0.0))
            with signal.cond:
                if signal.generation == generation:
                    signal.cond.wait(timeout)

    def _claim(self, max_messages: int, visibility_timeout: float) -> list[Message]:
        now = time.time()
        with guarded(self._db) as conn:
            rows = conn.execute(_CLAIM, (now + visibility_timeout, self._queue, now, max_messages)).fetchall()
        return [
            Message(id_, body, count, receipt, datetime.fromtimestamp(inserted, UTC))
            for id_, body, count, receipt, inserted in rows
        ]

    def delete(self, message: Message) -> None:
        with guarded(self._db) as conn:
            deleted = conn.execute(_DELETE, (message.id, self._queue, message.receipt)).rowcount
        if not deleted:
            raise ReceiptExpired(self._expired(message, "delete"))

    def extend(self, message: Message, visibility_timeout: float) -> Message:
        limits.check_visibility(visibility_timeout, allow_zero=True)
        receipt = os.urandom(8).hex()
        args = (time.time() + visibility_timeout, receipt, message.id, self._queue, message.receipt)
        with guarded(self._db) as conn:
            updated = conn.execute(_EXTEND, args).rowcount
        if not updated:
            raise ReceiptExpired(self._expired(message, "extend"))
        if visibility_timeout == 0:
            self._signal.notify()
        return dataclasses.replace(message, receipt=receipt)

    def _expired(self, message: Message, action: str) -> str:
        return (
            f"cannot {action} message {message.id} of queue {self.name}: its receipt is no longer valid "
            "(the visibility timeout ran out, or it was deleted)"
        )

    def approximate_count(self) -> int:
        with guarded(self._db) as conn:
            count: int = conn.execute(_COUNT, (self._queue,)).fetchone()[0]
        return count


class SqliteQueueStore(QueueStore):
    def __init__(self, db: Database, prefix: str = "") -> None:
        self._db = db
        self._prefix = prefix
        self._queues: dict[str, SqliteQueue] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqliteQueueStore(root={str(self._db.root)!r})"

    def queue(self, name: str) -> Queue:
        found = self._queues.get(name)
        if found is not None:
            return found
        limits.check_queue_name(name)
        limits.check_queue_name(self._prefix + name)
        with self._lock:
            return self._queues.setdefault(name, SqliteQueue(self._db, name, self._prefix + name))

    def delete_queue(self, name: str) -> None:
        limits.check_queue_name(name)
        with self._lock:
            self._queues.pop(name, None)
        with self._db.write() as connection:
            connection.execute("DELETE FROM messages WHERE queue = ?", (self._prefix + name,))

    def close(self) -> None:
        self._db.close()
