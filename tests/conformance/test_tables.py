"""The Table contract of `core.store.ports`, on every adapter."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from core.store import (
    BatchFailed,
    BatchOp,
    Entity,
    EntityExists,
    EntityNotFound,
    EtagMismatch,
    LimitExceeded,
    Storage,
    Table,
    open_storage,
)


@pytest.fixture
def table(storage: Storage) -> Table:
    return storage.tables.table("things")


def keys(entities: list[Entity]) -> list[str]:
    return [entity.row_key for entity in entities]


def test_table_returns_the_same_object(storage: Storage) -> None:
    assert storage.tables.table("things") is storage.tables.table("things")
    assert storage.tables.table("things").name == "things"


def test_get_missing_is_none(table: Table) -> None:
    assert table.get("p", "missing") is None


def test_insert_returns_stored_entity_with_etag(table: Table) -> None:
    stored = table.insert(Entity("p", "r", {"state": "PENDING", "n": 1}))
    assert stored.etag
    assert stored.properties == {"state": "PENDING", "n": 1}
    read = table.get("p", "r")
    assert read == Entity("p", "r", {"state": "PENDING", "n": 1}, stored.etag)
    assert read["state"] == "PENDING" and read.get("absent", 7) == 7


def test_insert_existing_raises_entity_exists(table: Table) -> None:
    table.insert(Entity("p", "r", {"v": 1}))
    with pytest.raises(EntityExists, match="already exists"):
        table.insert(Entity("p", "r", {"v": 2}))
    assert _value(table, "r") == 1


def _value(table: Table, row_key: str, name: str = "v") -> Any:
    entity = table.get("p", row_key)
    assert entity is not None
    return entity[name]


def test_none_values_are_not_stored(table: Table) -> None:
    properties: dict[str, Any] = {"a": 1, "b": None}
    stored = table.insert(Entity("p", "r", properties))
    assert stored.properties == {"a": 1}
    assert table.get("p", "r") == Entity("p", "r", {"a": 1}, stored.etag)


def test_replace_with_current_etag(table: Table) -> None:
    first = table.insert(Entity("p", "r", {"state": "PENDING", "extra": "x"}))
    second = table.replace(Entity("p", "r", {"state": "RUNNING"}, first.etag))
    assert second.etag and second.etag != first.etag
    assert table.get("p", "r") == Entity("p", "r", {"state": "RUNNING"}, second.etag)  # whole, no merge


def test_replace_with_stale_etag_raises_etag_mismatch(table: Table) -> None:
    first = table.insert(Entity("p", "r", {"v": 1}))
    table.replace(Entity("p", "r", {"v": 2}, first.etag))
    with pytest.raises(EtagMismatch):
        table.replace(Entity("p", "r", {"v": 3}, first.etag))
    assert _value(table, "r") == 2


def test_replace_missing_raises_entity_not_found(table: Table) -> None:
    stored = table.insert(Entity("p", "r", {"v": 1}))
    table.delete("p", "r")
    with pytest.raises(EntityNotFound):
        table.replace(Entity("p", "r", {"v": 2}, stored.etag))
    assert table.get("p", "r") is None


def test_replace_without_etag_is_refused(table: Table) -> None:
    table.insert(Entity("p", "r", {"v": 1}))
    with pytest.raises(ValueError, match="etag"):
        table.replace(Entity("p", "r", {"v": 2}))


def test_upsert_inserts_then_replaces_whole(table: Table) -> None:
    first = table.upsert(Entity("p", "r", {"a": 1, "b": 2}))
    assert table.get("p", "r") == first
    second = table.upsert(Entity("p", "r", {"a": 3}))
    assert second.etag != first.etag
    assert table.get("p", "r") == Entity("p", "r", {"a": 3}, second.etag)


def test_every_write_changes_the_etag(table: Table) -> None:
    etags = {table.insert(Entity("p", "r", {"v": 0})).etag}
    for v in range(1, 6):
        etags.add(table.upsert(Entity("p", "r", {"v": v})).etag)
    assert len(etags) == 6


def test_delete_without_etag_is_idempotent(table: Table) -> None:
    table.insert(Entity("p", "r"))
    table.delete("p", "r")
    assert table.get("p", "r") is None
    table.delete("p", "r")
    table.delete("p", "never-there")


def test_delete_with_current_etag(table: Table) -> None:
    stored = table.insert(Entity("p", "r", {"v": 1}))
    table.delete("p", "r", stored.etag)
    assert table.get("p", "r") is None


def test_delete_with_stale_etag_raises_etag_mismatch(table: Table) -> None:
    first = table.insert(Entity("p", "r", {"v": 1}))
    table.upsert(Entity("p", "r", {"v": 2}))
    with pytest.raises(EtagMismatch):
        table.delete("p", "r", first.etag)
    assert table.get("p", "r") is not None


def test_delete_missing_with_etag_raises_entity_not_found(table: Table) -> None:
    stored = table.insert(Entity("p", "r", {"v": 1}))
    table.delete("p", "r")
    with pytest.raises(EntityNotFound):
        table.delete("p", "r", stored.etag)


# ------------------------------------------------------------------------------------------------ queries


def test_query_range_from_inclusive_to_exclusive(table: Table) -> None:
    for rk in ["a", "b", "c", "d", "e"]:
        table.insert(Entity("p", rk, {"v": rk}))
    table.insert(Entity("other", "c"))
    assert keys(table.query("p", row_key_from="b", row_key_to="d").entities) == ["b", "c"]
    assert keys(table.query("p", row_key_from="c").entities) == ["c", "d", "e"]
    assert keys(table.query("p", row_key_to="c").entities) == ["a", "b"]
    assert keys(table.query("p").entities) == ["a", "b", "c", "d", "e"]
    assert table.query("p", row_key_from="x").entities == []
    assert table.query("nobody").entities == []
    page = table.query("p", row_key_from="c", row_key_to="d")
    assert page.entities[0].properties == {"v": "c"} and page.entities[0].etag


def test_query_is_in_ordinal_order(table: Table) -> None:
    row_keys = ["b", "B", "a0", "a", "ab", "Z", "10", "9", "é", "~", "A b"]
    for rk in row_keys:
        table.insert(Entity("p", rk))
    assert keys(table.query("p").entities) == sorted(row_keys)


def test_query_pages_with_limit_and_continuation(table: Table) -> None:
    expected = [f"k{i:03d}" for i in range(25)]
    table.batch([BatchOp.insert(Entity("p", rk)) for rk in expected])
    seen: list[str] = []
    continuation = None
    for _ in range(10):
        page = table.query("p", limit=10, continuation=continuation)
        assert len(page.entities) <= 10
        seen += keys(page.entities)
        continuation = page.continuation
        if continuation is None:
            break
    assert seen == expected
    assert continuation is None


def test_query_continuation_keeps_the_range(table: Table) -> None:
    table.batch([BatchOp.insert(Entity("p", f"k{i}")) for i in range(10)])
    first = table.query("p", row_key_from="k2", row_key_to="k8", limit=4)
    assert keys(first.entities) == ["k2", "k3", "k4", "k5"]
    assert first.continuation is not None
    rest = table.query("p", row_key_from="k2", row_key_to="k8", limit=4, continuation=first.continuation)
    assert keys(rest.entities) == ["k6", "k7"]


def test_scan_follows_continuations(table: Table) -> None:
    table.batch([BatchOp.insert(Entity("p", f"k{i:02d}")) for i in range(30)])
    expected = [f"k{i:02d}" for i in range(5, 25)]
    assert keys(list(table.scan("p", row_key_from="k05", row_key_to="k25"))) == expected


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_query_limit_outside_1_to_1000_is_refused(table: Table, limit: int) -> None:
    with pytest.raises(LimitExceeded, match=r"1\.\.1000"):
        table.query("p", limit=limit)


# ------------------------------------------------------------------------------------------------ batches


def test_batch_applies_every_kind_and_returns_new_etags(table: Table) -> None:
    old = table.insert(Entity("p", "replace-me", {"v": 1}))
    table.insert(Entity("p", "delete-me"))
    table.insert(Entity("p", "upsert-me", {"v": 1}))
    results = table.batch(
        [
            BatchOp.insert(Entity("p", "new", {"v": 1})),
            BatchOp.replace(Entity("p", "replace-me", {"v": 2}, old.etag)),
            BatchOp.upsert(Entity("p", "upsert-me", {"v": 3})),
            BatchOp.delete(Entity("p", "delete-me")),
        ]
    )
    assert results[3] is None
    for result, rk, v in zip(results[:3], ["new", "replace-me", "upsert-me"], [1, 2, 3], strict=True):
        assert result is not None and result.etag
        assert table.get("p", rk) == Entity("p", rk, {"v": v}, result.etag)
    assert table.get("p", "delete-me") is None
    assert results[1] is not None and results[1].etag != old.etag


def test_batch_delete_with_etag(table: Table) -> None:
    stored = table.insert(Entity("p", "r"))
    assert table.batch([BatchOp.delete(stored)]) == [None]
    assert table.get("p", "r") is None


def _failing_op(table: Table, case: str) -> tuple[BatchOp, type[Exception]]:
    stale = table.insert(Entity("p", "existing", {"v": 1})).etag
    table.upsert(Entity("p", "existing", {"v": 2}))
    if case == "insert-existing":
        return BatchOp.insert(Entity("p", "existing")), EntityExists
    if case == "replace-stale":
        return BatchOp.replace(Entity("p", "existing", {"v": 9}, stale)), EtagMismatch
    if case == "replace-missing":
        return BatchOp.replace(Entity("p", "missing", {"v": 9}, stale)), EntityNotFound
    if case == "delete-missing":
        return BatchOp.delete(Entity("p", "missing")), EntityNotFound
    return BatchOp.delete(Entity("p", "existing", etag=stale)), EtagMismatch


@pytest.mark.parametrize(
    "case", ["insert-existing", "replace-stale", "replace-missing", "delete-missing", "delete-stale"]
)
def test_batch_is_all_or_nothing(table: Table, case: str) -> None:
    table.insert(Entity("p", "to-delete"))
    bad, cause = _failing_op(table, case)
    before = table.query("p").entities
    ops = [
        BatchOp.insert(Entity("p", "a", {"v": 1})),
        BatchOp.upsert(Entity("p", "b", {"v": 1})),
        bad,
        BatchOp.delete(Entity("p", "to-delete")),
    ]
    with pytest.raises(BatchFailed) as failure:
        table.batch(ops)
    assert failure.value.index == 2
    assert isinstance(failure.value.cause, cause)
    assert "batch operation 2" in str(failure.value)
    assert table.query("p").entities == before


def test_batch_of_more_than_100_is_refused_before_anything_is_written(table: Table) -> None:
    with pytest.raises(LimitExceeded, match="at most 100"):
        table.batch([BatchOp.insert(Entity("p", f"k{i:03d}")) for i in range(101)])
    assert table.query("p").entities == []
    assert len(table.batch([BatchOp.insert(Entity("p", f"k{i:03d}")) for i in range(100)])) == 100


def test_batch_on_two_partitions_is_refused(table: Table) -> None:
    with pytest.raises(LimitExceeded, match="one partition"):
        table.batch([BatchOp.insert(Entity("p", "a")), BatchOp.insert(Entity("q", "b"))])
    assert table.get("p", "a") is None


def test_batch_touching_an_entity_twice_is_refused(table: Table) -> None:
    with pytest.raises(LimitExceeded, match="at most once"):
        table.batch([BatchOp.insert(Entity("p", "a")), BatchOp.upsert(Entity("p", "a"))])
    assert table.get("p", "a") is None


def test_empty_batch(table: Table) -> None:
    assert table.batch([]) == []


# ------------------------------------------------------------------------------------------------ types

VALUES: dict[str, Any] = {
    "text": "héllo wörld ✓ 🌍 日本",
    "empty": "",
    "max_id": 2**53 - 1,
    "neg_id": -(2**53 - 1),
    "small": -5,
    "zero": 0,
    "int32_edge": 2**31,
    "int32_low": -(2**31) - 1,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "one_float": 1.0,
    "float": -0.25,
    "huge_float": 1e300,
    "yes": True,
    "no": False,
    "blob": bytes(range(256)),
    "empty_blob": b"",
}


def test_values_round_trip_with_their_types(table: Table) -> None:
    table.insert(Entity("p", "r", VALUES))
    for read in (table.get("p", "r"), table.query("p").entities[0]):
        assert read is not None
        assert read.properties == VALUES
        for name, value in VALUES.items():
            assert type(read[name]) is type(value), name


@pytest.mark.parametrize(
    ("pk", "rk"), [("p", "with space"), ("ünï", "çødé 🌍"), ("p", "quote'd"), ("p", "a%2Fb&c=d"), ("", "")]
)
def test_keys_round_trip(table: Table, pk: str, rk: str) -> None:
    stored = table.insert(Entity(pk, rk, {"v": 1}))
    assert table.get(pk, rk) == stored
    assert keys(table.query(pk).entities) == [rk]
    table.delete(pk, rk, stored.etag)
    assert table.get(pk, rk) is None


def test_int_outside_int64_is_refused(table: Table) -> None:
    with pytest.raises(LimitExceeded, match="int64"):
        table.insert(Entity("p", "r", {"v": 2**63}))


# ------------------------------------------------------------------------------------------------ races


def _run_threads(count: int, target: Any) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as exc:  # surfaced by the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_racing_inserts_have_exactly_one_winner(table: Table) -> None:
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def contender() -> None:
        start.wait()
        try:
            table.insert(Entity("p", "same"))
            outcomes.append("won")
        except EntityExists:
            outcomes.append("lost")

    assert _run_threads(8, contender) == []
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


def test_racing_read_modify_replace_counts_exactly(table: Table) -> None:
    table.insert(Entity("p", "counter", {"n": 0}))
    start = threading.Barrier(8)

    def incrementer() -> None:
        start.wait()
        for _ in range(20):
            while True:
                current = table.get("p", "counter")
                assert current is not None
                try:
                    table.replace(Entity("p", "counter", {"n": current["n"] + 1}, current.etag))  # type: ignore[operator]
                    break
                except EtagMismatch:
                    continue

    assert _run_threads(8, incrementer) == []
    assert _value(table, "counter", "n") == 160


def _insert_keys(root: Path, start: Any, contested: list[str], results: Any) -> None:
    store = open_storage("sqlite", root=root)
    table = store.tables.table("things")
    table.get("p", "warm-up")  # opens this process's connection before the race starts
    start.wait()
    won = []
    for rk in contested:
        try:
            table.insert(Entity("p", rk))
            won.append(rk)
        except EntityExists:
            pass
    store.close()
    results.put(won)


def test_sqlite_processes_racing_inserts_have_exactly_one_winner(
    sqlite_storage: Storage, tmp_path: Path
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    contested = [f"k{i:04d}" for i in range(1000)]
    processes = [
        # One process goes up the keys, the other down: they meet and race in the middle.
        context.Process(target=_insert_keys, args=(tmp_path / "store", start, order, results))
        for order in (contested, contested[::-1])
    ]
    for process in processes:
        process.start()
    won = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert sorted(won[0] + won[1]) == contested
    assert set(won[0]).isdisjoint(won[1])
    assert len(list(sqlite_storage.tables.table("things").scan("p"))) == 1000
