"""Blobs on the local disk, their metadata in SQLite.

Every put writes a new file under a fresh unique name (`<root>/blobs/ab/abcdef...`), then swaps the
metadata row to it inside one write transaction, where the conditions (if_absent, etag) are checked; the
old file is removed after the commit. So conditional puts are race-free across threads and processes, a
reader never sees a half-written blob, and `a` and `a/b` can both exist as in Azure's flat namespace.
Appends write in place under the database's write lock, and a read returns only the bytes its metadata
row counts, so a reader sees each append whole or not at all. As on Azure, only a blob made by `append`
takes appends (`appendable`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from core.store import limits
from core.store.ports import (
    Blob,
    BlobExists,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    EtagMismatch,
    LimitExceeded,
    StoreError,
)
from core.store.sqlite._db import Database, guarded

_LIST_PAGE = 500
_NOT_APPENDABLE = (
    "cannot append to blob {path!r}: it was written whole by put, "
    "and Azure appends only to blobs made by append"
)

_SELECT = "SELECT file, size, etag, appendable FROM blobs WHERE container = ? AND path = ?"
_STAT = "SELECT size, etag, modified FROM blobs WHERE container = ? AND path = ?"
_SAVE = (
    "INSERT INTO blobs (container, path, file, size, etag, modified, appendable) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (container, path) DO UPDATE SET file = excluded.file, size = excluded.size, "
    "etag = excluded.etag, modified = excluded.modified, appendable = excluded.appendable"
)
_GROW = "UPDATE blobs SET size = ?, etag = ?, modified = ? WHERE container = ? AND path = ?"
_DELETE = "DELETE FROM blobs WHERE container = ? AND path = ? RETURNING file"
_LIST = (
    "SELECT path, size, etag, modified FROM blobs WHERE container = ? AND path >= ? AND path > ? "
    "ORDER BY path LIMIT ?"
)


def _new_etag() -> str:
    return os.urandom(8).hex()


class SqliteBlobStore(BlobStore):
    def __init__(self, db: Database, container: str = "floe") -> None:
        self._db = db
        self._container = container
        self._made_dirs: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqliteBlobStore(root={str(self._db.root)!r})"

    def _file(self, name: str) -> Path:
        return self._db.blob_dir / name[:2] / name

    def _write_new(self, data: bytes) -> str:
        name = uuid.uuid4().hex
        if name[:2] not in self._made_dirs:
            (self._db.blob_dir / name[:2]).mkdir(exist_ok=True)
            with self._lock:
                self._made_dirs.add(name[:2])
        try:
            with open(self._file(name), "xb") as out:
                out.write(data)
        except OSError as exc:
            self._unlink(name)
            raise StoreError(f"cannot write a blob file under {self._db.blob_dir}: {exc}") from exc
        return name

    def _unlink(self, name: str) -> None:
        with contextlib.suppress(OSError):  # an orphan file costs space, never correctness
            os.unlink(self._file(name))

    def put(self, path: str, data: bytes, *, if_absent: bool = False, etag: str | None = None) -> str:
        limits.check_blob_path(path)
        if if_absent and etag is not None:
            raise ValueError(f"put of blob {path!r}: if_absent and etag exclude each other")
        name = self._write_new(bytes(data))
        new_etag = _new_etag()
        try:
            with self._db.write() as conn:
                row = conn.execute(_SELECT, (self._container, path)).fetchone()
                if if_absent and row is not None:
                    raise BlobExists(f"blob {path!r} already exists")
                if etag is not None:
                    if row is None:
                        raise BlobNotFound(f"blob {path!r} does not exist")
                    if row[2] != etag:
                        raise EtagMismatch(
                            f"blob {path!r} changed since it was read (etag {etag!r} is stale)"
                        )
                conn.execute(_SAVE, (self._container, path, name, len(data), new_etag, time.time(), 0))
        except BaseException:
            self._unlink(name)
            raise
        if row is not None:
            self._unlink(row[0])
        return new_etag

    def get(self, path: str, *, offset: int = 0, length: int | None = None) -> Blob | None:
        limits.check_blob_path(path)
        limits.check_range(offset, length)
        for _ in range(10):
            with guarded(self._db) as conn:
                row = conn.execute(_SELECT, (self._container, path)).fetchone()
            if row is None:
                return None
            name, size, etag, _ = row
            start = min(offset, size)
            count = size - start if length is None else min(length, size - start)
            try:
                with open(self._file(name), "rb") as source:
                    source.seek(start)
                    data = source.read(count)
            except FileNotFoundError:
                continue  # a concurrent put replaced the file after we read the row: read the row again
            if len(data) != count:
                break
            return Blob(data, etag)
        raise StoreError(f"blob {path!r}: its file under {self._db.blob_dir} is missing or truncated")

    def append(self, path: str, data: bytes) -> None:
        limits.check_blob_path(path)
        limits.check_append(data)
        created = None
        try:
            with self._db.write() as conn:
                row = conn.execute(_SELECT, (self._container, path)).fetchone()
                now = time.time()
                if row is None:
                    created = self._write_new(bytes(data))
                    conn.execute(_SAVE, (self._container, path, created, len(data), _new_etag(), now, 1))
                    return
                name, size, _, appendable = row
                if not appendable:
                    raise LimitExceeded(_NOT_APPENDABLE.format(path=path))
                with open(self._file(name), "r+b") as out:
                    out.seek(size)  # past bytes a failed append may have left behind
                    out.write(data)
                    out.truncate()
                conn.execute(_GROW, (size + len(data), _new_etag(), now, self._container, path))
        except OSError as exc:
            raise StoreError(f"cannot append to blob {path!r}: {exc}") from exc
        except BaseException:
            if created is not None:
                self._unlink(created)
            raise

    def stat(self, path: str) -> BlobInfo | None:
        limits.check_blob_path(path)
        with guarded(self._db) as conn:
            row = conn.execute(_STAT, (self._container, path)).fetchone()
        if row is None:
            return None
        size, etag, modified = row
        return BlobInfo(path, size, etag, datetime.fromtimestamp(modified, UTC))

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        after = ""
        while True:
            with guarded(self._db) as conn:
                rows = conn.execute(_LIST, (self._container, prefix, after, _LIST_PAGE)).fetchall()
            for path, size, etag, modified in rows:
                if not path.startswith(prefix):
                    return
                yield BlobInfo(path, size, etag, datetime.fromtimestamp(modified, UTC))
            if len(rows) < _LIST_PAGE:
                return
            after = rows[-1][0]

    def delete(self, path: str) -> None:
        limits.check_blob_path(path)
        with guarded(self._db) as conn:
            rows = conn.execute(_DELETE, (self._container, path)).fetchall()  # fetch all: ends the statement
        for (name,) in rows:
            self._unlink(name)

    def close(self) -> None:
        self._db.close()
