"""The embedded default: tables and queues in one SQLite file (`<root>/floe.db`), blobs under `<root>/blobs/`.

Safe for many threads and several processes on one host (WAL, a connection per thread, short
`BEGIN IMMEDIATE` transactions, a busy timeout). The contracts are in `core.store.ports`.
"""

from __future__ import annotations

from pathlib import Path

from core.store.ports import Storage
from core.store.sqlite._db import Database
from core.store.sqlite.blobs import SqliteBlobStore
from core.store.sqlite.queues import SqliteQueueStore
from core.store.sqlite.tables import SqliteTableStore

__all__ = ["SqliteBlobStore", "SqliteQueueStore", "SqliteTableStore", "open_sqlite"]


def open_sqlite(root: Path, prefix: str = "") -> Storage:
    """The stores of the SQLite file under `root` (created if missing); `prefix` isolates names."""
    root.mkdir(parents=True, exist_ok=True)
    db = Database(root)
    return Storage(
        tables=SqliteTableStore(db, prefix),
        queues=SqliteQueueStore(db, prefix),
        blobs=SqliteBlobStore(db, f"{prefix}floe"),
        kind="sqlite",
    )
