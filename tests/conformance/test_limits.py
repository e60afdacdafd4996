"""Azure's limits, enforced before anything is written, on every adapter (Azurite enforces only some)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.store import BatchOp, Entity, LimitExceeded, Storage, Table


@pytest.fixture
def table(storage: Storage) -> Table:
    return storage.tables.table("limits")


def test_string_property_of_32768_characters_is_the_maximum(table: Table) -> None:
    table.insert(Entity("p", "ok", {"s": "x" * 32_768}))
    with pytest.raises(LimitExceeded, match=r"32,769 UTF-16 units.*at most 32,768"):
        table.insert(Entity("p", "big", {"s": "x" * 32_769}))
    assert table.get("p", "big") is None


def test_string_size_counts_utf16_units(table: Table) -> None:
    with pytest.raises(LimitExceeded, match="32,770 UTF-16 units"):
        table.insert(Entity("p", "r", {"s": "𝄞" * 16_385}))  # each needs a surrogate pair


def test_bytes_property_of_65536_bytes_is_the_maximum(table: Table) -> None:
    table.insert(Entity("p", "ok", {"b": b"\x00" * 65_536}))
    with pytest.raises(LimitExceeded, match="65,537 bytes"):
        table.upsert(Entity("p", "big", {"b": b"\x00" * 65_537}))


@pytest.mark.parametrize("bad", ["/", "\\", "#", "?", "\x00", "\t", "\x1f", "\x7f", "\x85", "\x9f", "\ud800"])
@pytest.mark.parametrize("where", ["PartitionKey", "RowKey"])
def test_forbidden_key_characters(table: Table, where: str, bad: str) -> None:
    pk, rk = ("a" + bad, "r") if where == "PartitionKey" else ("p", "a" + bad)
    with pytest.raises(LimitExceeded, match=f"{where}.*may not contain"):
        table.insert(Entity(pk, rk))
    with pytest.raises(LimitExceeded):
        table.get(pk, rk)
    with pytest.raises(LimitExceeded):
        table.delete(pk, rk)


def test_text_with_a_lone_surrogate_is_refused(storage: Storage) -> None:
    with pytest.raises(LimitExceeded, match="lone surrogate"):
        storage.tables.table("limits").insert(Entity("p", "r", {"s": "bad \udc80 text"}))
    with pytest.raises(LimitExceeded, match="lone surrogate"):
        storage.queues.queue("limits").send("bad \udc80 text")


def test_key_of_512_characters_is_the_maximum(table: Table) -> None:
    table.insert(Entity("p", "k" * 512))
    with pytest.raises(LimitExceeded, match="513 characters"):
        table.insert(Entity("p", "k" * 513))


def test_252_properties_is_the_maximum(table: Table) -> None:
    table.insert(Entity("p", "ok", {f"p{i}": i for i in range(252)}))
    assert len(table.get("p", "ok").properties) == 252  # type: ignore[union-attr]
    with pytest.raises(LimitExceeded, match="253 properties"):
        table.insert(Entity("p", "big", {f"p{i}": i for i in range(253)}))


def test_entity_over_1_mib_is_refused(table: Table) -> None:
    properties = {f"s{i}": "x" * 30_000 for i in range(18)}  # ~1.08 MB as UTF-16, ~540 KB as UTF-8
    with pytest.raises(LimitExceeded, match=r"1 MiB.*blob"):
        table.insert(Entity("p", "big", properties))
    with pytest.raises(LimitExceeded, match="1 MiB"):
        table.upsert(Entity("p", "big", properties))
    assert table.get("p", "big") is None
    table.insert(Entity("p", "ok", {f"s{i}": "x" * 30_000 for i in range(17)}))


@pytest.mark.parametrize(
    "name", ["PartitionKey", "RowKey", "Timestamp", "etag", "1st", "with space", "a-b", ""]
)
def test_invalid_property_names(table: Table, name: str) -> None:
    with pytest.raises(LimitExceeded, match="property name"):
        table.insert(Entity("p", "r", {name: 1}))


@pytest.mark.parametrize("value", [datetime(2026, 1, 1, tzinfo=UTC), [1, 2], {"a": 1}, 2**63, -(2**63) - 1])
def test_unsupported_values(table: Table, value: Any) -> None:
    with pytest.raises(LimitExceeded):
        table.insert(Entity("p", "r", {"v": value}))


def test_a_bad_entity_fails_its_whole_batch_before_anything_is_written(table: Table) -> None:
    with pytest.raises(LimitExceeded, match="32,768"):
        table.batch([BatchOp.insert(Entity("p", "a")), BatchOp.insert(Entity("p", "b", {"s": "x" * 40_000}))])
    assert table.get("p", "a") is None


def test_batch_over_4_mib_is_refused(table: Table) -> None:
    big = {f"s{i}": "x" * 30_000 for i in range(16)}  # ~0.96 MB each as Azure counts
    with pytest.raises(LimitExceeded, match="4 MiB"):
        table.batch([BatchOp.insert(Entity("p", f"r{i}", big)) for i in range(5)])


@pytest.mark.parametrize("name", ["ab", "1abc", "with-dash", "a" * 64, "tables"])
def test_invalid_table_names(storage: Storage, name: str) -> None:
    with pytest.raises(LimitExceeded, match="table name"):
        storage.tables.table(name)


@pytest.mark.parametrize("name", ["ab", "Upper", "double--hyphen", "-start", "end-", "a" * 64, "under_score"])
def test_invalid_queue_names(storage: Storage, name: str) -> None:
    with pytest.raises(LimitExceeded, match="queue name"):
        storage.queues.queue(name)


def test_message_of_49152_bytes_is_the_maximum(storage: Storage) -> None:
    queue = storage.queues.queue("limits")
    body = "é" * 24_576  # 49,152 UTF-8 bytes
    queue.send(body)
    assert queue.receive()[0].body == body
    with pytest.raises(LimitExceeded, match="49,153 UTF-8 bytes"):
        queue.send(body + "x")


@pytest.mark.parametrize("delay", [-1, 7 * 24 * 3600 + 1, float("nan")])
def test_delay_outside_0_to_7_days_is_refused(storage: Storage, delay: float) -> None:
    with pytest.raises(LimitExceeded, match="delay_seconds"):
        storage.queues.queue("limits").send("x", delay_seconds=delay)


@pytest.mark.parametrize("timeout", [0, -1, 7 * 24 * 3600 + 1])
def test_receive_visibility_outside_limits_is_refused(storage: Storage, timeout: float) -> None:
    with pytest.raises(LimitExceeded, match="visibility_timeout"):
        storage.queues.queue("limits").receive(visibility_timeout=timeout)


@pytest.mark.parametrize("path", ["", "/abs", "a//b", "a/", "a/../b", "./a", "a\\b", "a\nb", "p" * 1025])
def test_invalid_blob_paths(storage: Storage, path: str) -> None:
    with pytest.raises(LimitExceeded, match="blob path"):
        storage.blobs.put(path, b"x")
    with pytest.raises(LimitExceeded, match="blob path"):
        storage.blobs.get(path)


def test_append_over_4_mib_is_refused(storage: Storage) -> None:
    with pytest.raises(LimitExceeded, match="4,194,304"):
        storage.blobs.append("big.log", b"x" * (4 * 1024 * 1024 + 1))
    assert storage.blobs.stat("big.log") is None


def test_negative_range_is_refused(storage: Storage) -> None:
    storage.blobs.put("r", b"abc")
    with pytest.raises(LimitExceeded, match="offset"):
        storage.blobs.get("r", offset=-1)
