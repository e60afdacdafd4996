"""`open_storage`: choosing an adapter, name prefixes, secrets kept out of reprs and errors, lazy imports."""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import SchemaVersionError
from core.store import Entity, LimitExceeded, Storage, StoreError, open_storage
from tests.fixtures.azurite import REPO

SECRET_KEY = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs="
UNREACHABLE = (
    f"DefaultEndpointsProtocol=http;AccountName=leaky;AccountKey={SECRET_KEY};"
    "BlobEndpoint=http://127.0.0.1:9/leaky;QueueEndpoint=http://127.0.0.1:9/leaky;"
    "TableEndpoint=http://127.0.0.1:9/leaky;"
)


def test_open_storage_needs_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="root"):
        open_storage("sqlite")
    with pytest.raises(ValueError, match="connection_string"):
        open_storage("azure")
    with pytest.raises(ValueError, match="'sqlite' or 'azure'"):
        open_storage("s3", root=tmp_path)


@pytest.mark.parametrize("prefix", ["Upper", "with-dash", "x" * 21])
def test_prefix_must_be_lowercase_letters_and_digits(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(LimitExceeded, match="prefix"):
        open_storage("sqlite", root=tmp_path, prefix=prefix)


def test_prefixes_isolate_storages(storage: Storage, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if storage.kind == "sqlite":
        other = open_storage("sqlite", root=tmp_path / "store", prefix="other")
    else:
        conn = request.getfixturevalue("azurite")
        other = open_storage("azure", connection_string=conn, prefix=f"o{secrets.token_hex(4)}")
    try:
        storage.tables.table("shared").insert(Entity("p", "r"))
        storage.queues.queue("shared").send("hello")
        storage.blobs.put("shared", b"x")
        assert other.tables.table("shared").get("p", "r") is None
        assert other.queues.queue("shared").receive() == []
        assert other.blobs.get("shared") is None
    finally:
        other.close()


def test_sqlite_repr_shows_the_root(tmp_path: Path) -> None:
    store = open_storage("sqlite", root=tmp_path / "store")
    try:
        text = repr(store)
        assert str(tmp_path / "store") in text
        assert "SqliteTableStore" in text and "SqliteQueueStore" in text and "SqliteBlobStore" in text
        assert str(tmp_path) in repr(store.tables.table("things"))
    finally:
        store.close()


def test_azure_repr_shows_only_the_account_name() -> None:
    store = open_storage("azure", connection_string=UNREACHABLE)
    try:
        text = repr(store)
        assert "leaky" in text
        assert SECRET_KEY not in text and "AccountKey" not in text
    finally:
        store.close()


def test_azure_errors_carry_no_secret() -> None:
    store = open_storage("azure", connection_string=UNREACHABLE, options={"retry_total": 0})
    try:
        with pytest.raises(StoreError) as failure:
            store.tables.table("things")
        assert "creating table things failed" in str(failure.value)
        with pytest.raises(StoreError) as failure:
            store.blobs.get("x")
        assert SECRET_KEY not in str(failure.value)
    finally:
        store.close()


def test_a_malformed_connection_string_is_not_echoed() -> None:
    with pytest.raises(StoreError, match="connection string is invalid") as failure:
        open_storage("azure", connection_string=f"AccountKey={SECRET_KEY};nonsense")
    assert SECRET_KEY not in str(failure.value)
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


def test_importing_core_store_does_not_import_the_azure_sdks() -> None:
    code = "import sys, core.store; print(sorted(m for m in sys.modules if m.startswith('azure')))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_newer_sqlite_schema_is_refused(tmp_path: Path) -> None:
    open_storage("sqlite", root=tmp_path).close()
    with sqlite3.connect(tmp_path / "floe.db") as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(SchemaVersionError, match="schema version 99"):
        open_storage("sqlite", root=tmp_path)
