"""Tables on SQLite: one row per entity in `entities`, its properties as JSON (bytes tagged as base64)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from core.store import limits
from core.store.ports import (
    BatchFailed,
    BatchOp,
    Entity,
    EntityExists,
    EntityNotFound,
    EtagMismatch,
    Page,
    StoreError,
    Table,
    TableStore,
    Value,
)
from core.store.sqlite._db import Database, guarded


def _new_etag() -> str:
    return os.urandom(8).hex()


def _dump(properties: Mapping[str, Value]) -> str:
    return json.dumps(
        {
            name: {"b64": base64.b64encode(value).decode("ascii")} if isinstance(value, bytes) else value
            for name, value in properties.items()
        },
        separators=(",", ":"),
    )


def _load(text: str) -> dict[str, Value]:
    properties: dict[str, Any] = json.loads(text)
    for name, value in properties.items():
        if type(value) is dict:  # the only JSON object a property holds: tagged bytes
            properties[name] = base64.b64decode(value["b64"])
    return properties


def _encode_token(row_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": row_key}).encode()).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise StoreError(f"invalid continuation token {token[:40]!r}") from exc
    if not isinstance(after, str):
        raise StoreError(f"invalid continuation token {token[:40]!r}")
    return after


_INSERT = "INSERT INTO entities (tbl, pk, rk, props, etag) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
_UPSERT = (
    "INSERT INTO entities (tbl, pk, rk, props, etag) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (tbl, pk, rk) DO UPDATE SET props = excluded.props, etag = excluded.etag"
)
_REPLACE = "UPDATE entities SET props = ?, etag = ? WHERE tbl = ? AND pk = ? AND rk = ? AND etag = ?"
_DELETE = "DELETE FROM entities WHERE tbl = ? AND pk = ? AND rk = ?"
_DELETE_IF = "DELETE FROM entities WHERE tbl = ? AND pk = ? AND rk = ? AND etag = ?"
_EXISTS = "SELECT 1 FROM entities WHERE tbl = ? AND pk = ? AND rk = ?"
_GET = "SELECT props, etag FROM entities WHERE tbl = ? AND pk = ? AND rk = ?"


class SqliteTable(Table):
    def __init__(self, db: Database, name: str, stored_name: str) -> None:
        self.name = name
        self._db = db
        self._tbl = stored_name

    def __repr__(self) -> str:
        return f"SqliteTable({self.name!r}, root={str(self._db.root)!r})"

    def _ref(self, entity: Entity) -> str:
        return f"entity ({entity.partition_key!r}, {entity.row_key!r}) of table {self.name}"

    def get(self, partition_key: str, row_key: str) -> Entity | None:
        limits.check_keys(partition_key, row_key)
        with guarded(self._db) as conn:
            row = conn.execute(_GET, (self._tbl, partition_key, row_key)).fetchone()
        if row is None:
            return None
        return Entity(partition_key, row_key, _load(row[0]), row[1])

    def insert(self, entity: Entity) -> Entity:
        properties = limits.check_entity(entity)
        with self._db.write() as conn:
            return self._write(conn, "insert", entity, properties)

    def replace(self, entity: Entity) -> Entity:
        if entity.etag is None:
            raise ValueError(f"replace of {self._ref(entity)} needs the etag it was read with")
        properties = limits.check_entity(entity)
        with self._db.write() as conn:
            return self._write(conn, "replace", entity, properties)

    def upsert(self, entity: Entity) -> Entity:
        properties = limits.check_entity(entity)
        with self._db.write() as conn:
            return self._write(conn, "upsert", entity, properties)

    def delete(self, partition_key: str, row_key: str, etag: str | None = None) -> None:
        limits.check_keys(partition_key, row_key)
        with self._db.write() as conn:
            if etag is None:
                conn.execute(_DELETE, (self._tbl, partition_key, row_key))
            else:
                self._remove(conn, Entity(partition_key, row_key, etag=etag))

    def _write(
        self, conn: sqlite3.Connection, kind: str, entity: Entity, properties: dict[str, Value]
    ) -> Entity:
        """An insert, replace or upsert inside an open transaction."""
        key = (self._tbl, entity.partition_key, entity.row_key)
        etag = _new_etag()
        text = _dump(properties)
        if kind == "insert":
            if conn.execute(_INSERT, (*key, text, etag)).rowcount == 0:
                raise EntityExists(f"{self._ref(entity)} already exists")
        elif kind == "replace":
            if conn.execute(_REPLACE, (text, etag, *key, entity.etag)).rowcount == 0:
                raise self._conflict(conn, entity)
        else:
            conn.execute(_UPSERT, (*key, text, etag))
        return Entity(entity.partition_key, entity.row_key, properties, etag)

    def _remove(self, conn: sqlite3.Connection, entity: Entity) -> None:
        """A delete inside an open transaction that fails if the entity is absent (or changed)."""
        key = (self._tbl, entity.partition_key, entity.row_key)
        if entity.etag is None:
            if conn.execute(_DELETE, key).rowcount == 0:
                raise EntityNotFound(f"{self._ref(entity)} does not exist")
        elif conn.execute(_DELETE_IF, (*key, entity.etag)).rowcount == 0:
            raise self._conflict(conn, entity)

    def _conflict(self, conn: sqlite3.Connection, entity: Entity) -> StoreError:
        if conn.execute(_EXISTS, (self._tbl, entity.partition_key, entity.row_key)).fetchone() is None:
            return EntityNotFound(f"{self._ref(entity)} does not exist")
        return EtagMismatch(f"{self._ref(entity)} changed since it was read (etag {entity.etag!r} is stale)")

    def query(
        self,
        partition_key: str,
        *,
        row_key_from: str | None = None,
        row_key_to: str | None = None,
        limit: int | None = None,
        continuation: str | None = None,
    ) -> Page:
        size = limits.check_page_size(limit)
        limits.check_key("PartitionKey", partition_key)
        sql = "SELECT rk, props, etag FROM entities WHERE tbl = ? AND pk = ?"
        args: list[object] = [self._tbl, partition_key]
        if continuation is not None:
            sql += " AND rk > ?"
            args.append(_decode_token(continuation))
        if row_key_from is not None:
            sql += " AND rk >= ?"
            args.append(row_key_from)
        if row_key_to is not None:
            sql += " AND rk < ?"
            args.append(row_key_to)
        sql += " ORDER BY rk LIMIT ?"
        args.append(size + 1)
        with guarded(self._db) as conn:
            rows = conn.execute(sql, args).fetchall()
        token = _encode_token(rows[size - 1][0]) if len(rows) > size else None
        entities = [Entity(partition_key, rk, _load(props), etag) for rk, props, etag in rows[:size]]
        return Page(entities, token)

    def batch(self, ops: Sequence[BatchOp]) -> list[Entity | None]:
        checked = limits.check_batch(ops)
        if not ops:
            return []
        results: list[Entity | None] = []
        with self._db.write() as conn:
            for index, (op, properties) in enumerate(zip(ops, checked, strict=True)):
                try:
                    if op.kind == "delete":
                        self._remove(conn, op.entity)
                        results.append(None)
                    else:
                        results.append(self._write(conn, op.kind, op.entity, properties))
                except (EntityExists, EntityNotFound, EtagMismatch) as exc:
                    raise BatchFailed(index, exc) from exc
        return results


class SqliteTableStore(TableStore):
    def __init__(self, db: Database, prefix: str = "") -> None:
        self._db = db
        self._prefix = prefix
        self._tables: dict[str, SqliteTable] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqliteTableStore(root={str(self._db.root)!r})"

    def table(self, name: str) -> Table:
        found = self._tables.get(name)
        if found is not None:
            return found
        limits.check_table_name(name)
        limits.check_table_name(self._prefix + name)
        with self._lock:
            return self._tables.setdefault(name, SqliteTable(self._db, name, self._prefix + name))

    def close(self) -> None:
        self._db.close()
