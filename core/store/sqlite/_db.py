"""One SQLite file shared by the table, queue and blob stores: a connection per thread, short transactions.

WAL lets readers run beside one writer; `BEGIN IMMEDIATE` takes the write lock up front, so a transaction
that reads then writes never fails half-way with SQLITE_BUSY; the busy timeout queues writers across
threads and processes. A process forked with open connections must not use them (SQLite forbids it): the
child abandons them, unclosed, and opens its own.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from core.errors import SchemaVersionError
from core.store.ports import StoreError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    tbl TEXT NOT NULL,
    pk TEXT NOT NULL,
    rk TEXT NOT NULL,
    props TEXT NOT NULL,
    etag TEXT NOT NULL,
    PRIMARY KEY (tbl, pk, rk)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at REAL NOT NULL,
    dequeue_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    inserted_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at);

CREATE TABLE IF NOT EXISTS blobs (
    container TEXT NOT NULL,
    path TEXT NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified REAL NOT NULL,
    appendable INTEGER NOT NULL,
    PRIMARY KEY (container, path)
) WITHOUT ROWID;
"""

# Connections inherited through fork: never used nor closed in the child (closing could disturb the
# parent's WAL), only kept referenced so that garbage collection does not close them either.
_inherited: list[sqlite3.Connection] = []
_databases: weakref.WeakSet[Database] = weakref.WeakSet()


class _Slot:
    """Holds one thread's connection; weakly tracked, so a finished thread's connection is closed with it."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


class Database:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "floe.db"
        self.blob_dir = root / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        self._init_schema()
        _databases.add(self)

    def __repr__(self) -> str:
        return f"Database(root={str(self.root)!r})"

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store at {self.path}: {exc}") from exc
        return conn

    def _init_schema(self) -> None:
        conn = self._open()
        try:
            # Switching to WAL needs a moment of exclusive access, which the busy timeout does not cover.
            for _ in range(100):
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    time.sleep(0.05)
            with transaction(conn):
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        f"the SQLite store at {self.path} has schema version {version}, newer than this "
                        f"Floe's {SCHEMA_VERSION}; upgrade Floe"
                    )
                if version < SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot initialise the SQLite store at {self.path}: {exc}") from exc
        finally:
            conn.close()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:
            if self._closed:
                raise StoreError(f"the SQLite store at {self.root} is closed")
            slot = _Slot(self._open())
            self._local.slot = slot
            with self._lock:
                self._slots.add(slot)
        return slot.conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database's write lock from its first statement."""
        conn = self.connection()
        try:
            with transaction(conn):
                yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store at {self.root}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            slots = list(self._slots)
            self._slots.clear()
        for slot in slots:
            slot.conn.close()
        self._local = threading.local()

    def _forget_connections_after_fork(self) -> None:
        _inherited.extend(slot.conn for slot in self._slots)
        self._slots = weakref.WeakSet()
        self._local = threading.local()
        self._lock = threading.Lock()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def guarded(db: Database) -> Iterator[sqlite3.Connection]:
    """This thread's connection, for a single statement, with driver errors translated into StoreError."""
    try:
        yield db.connection()
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite store at {db.root}: {exc}") from exc


def _after_fork_in_child() -> None:
    for db in list(_databases):
        db._forget_connections_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
