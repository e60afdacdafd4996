"""The BlobStore contract of `core.store.ports`, on every adapter."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from core.store import BlobExists, BlobNotFound, BlobStore, EtagMismatch, LimitExceeded, Storage


@pytest.fixture
def blobs(storage: Storage) -> BlobStore:
    return storage.blobs


def test_put_then_get(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 10
    etag = blobs.put("runs/1/output.json", data)
    blob = blobs.get("runs/1/output.json")
    assert blob is not None
    assert (blob.data, blob.etag) == (data, etag)


def test_get_and_stat_of_a_missing_blob_are_none(blobs: BlobStore) -> None:
    assert blobs.get("nothing/here") is None
    assert blobs.get("nothing/here", offset=3, length=2) is None
    assert blobs.stat("nothing/here") is None


def test_empty_blob(blobs: BlobStore) -> None:
    etag = blobs.put("empty", b"")
    assert blobs.get("empty") == blobs.get("empty", offset=0, length=10)
    blob = blobs.get("empty")
    assert blob is not None and (blob.data, blob.etag) == (b"", etag)


def test_ranged_get(blobs: BlobStore) -> None:
    etag = blobs.put("log.txt", b"0123456789")

    def data(offset: int, length: int | None) -> bytes:
        blob = blobs.get("log.txt", offset=offset, length=length)
        assert blob is not None and blob.etag == etag
        return blob.data

    assert data(2, 3) == b"234"
    assert data(7, None) == b"789"
    assert data(8, 100) == b"89"
    assert data(0, 0) == b""
    assert data(10, None) == b""
    assert data(25, 5) == b""


def test_put_overwrites_and_changes_the_etag(blobs: BlobStore) -> None:
    first = blobs.put("a", b"one")
    second = blobs.put("a", b"two")
    assert first != second
    assert blobs.get("a").data == b"two"  # type: ignore[union-attr]


def test_put_if_absent(blobs: BlobStore) -> None:
    blobs.put("once", b"first", if_absent=True)
    with pytest.raises(BlobExists):
        blobs.put("once", b"second", if_absent=True)
    assert blobs.get("once").data == b"first"  # type: ignore[union-attr]


def test_conditional_put(blobs: BlobStore) -> None:
    first = blobs.put("state", b"v1")
    second = blobs.put("state", b"v2", etag=first)
    assert second != first
    with pytest.raises(EtagMismatch):
        blobs.put("state", b"v3", etag=first)
    assert blobs.get("state").data == b"v2"  # type: ignore[union-attr]


def test_conditional_put_of_a_missing_blob_raises_blob_not_found(blobs: BlobStore) -> None:
    etag = blobs.put("gone", b"x")
    blobs.delete("gone")
    with pytest.raises(BlobNotFound):
        blobs.put("gone", b"y", etag=etag)
    assert blobs.get("gone") is None


def test_racing_conditional_puts_have_exactly_one_winner(blobs: BlobStore) -> None:
    etag = blobs.put("contested", b"start")
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def contender(i: int) -> None:
        start.wait()
        try:
            blobs.put("contested", f"writer {i}".encode(), etag=etag)
            outcomes.append("won")
        except EtagMismatch:
            outcomes.append("lost")

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


def test_append_creates_then_appends_in_order(blobs: BlobStore) -> None:
    blobs.append("logs/task.log", b"line 1\n")
    first = blobs.stat("logs/task.log")
    for i in range(2, 6):
        blobs.append("logs/task.log", f"line {i}\n".encode())
    blob = blobs.get("logs/task.log")
    assert blob is not None
    assert blob.data == b"".join(f"line {i}\n".encode() for i in range(1, 6))
    info = blobs.stat("logs/task.log")
    assert first is not None and info is not None
    assert info.size == len(blob.data) and info.etag == blob.etag != first.etag


def test_append_to_a_blob_written_by_put_is_refused(blobs: BlobStore) -> None:
    blobs.put("whole.txt", b"whole")
    with pytest.raises(LimitExceeded, match="written whole by put"):
        blobs.append("whole.txt", b" more")
    assert blobs.get("whole.txt").data == b"whole"  # type: ignore[union-attr]


def test_put_replaces_an_appended_blob(blobs: BlobStore) -> None:
    blobs.append("log", b"appended")
    blobs.put("log", b"replaced")
    assert blobs.get("log").data == b"replaced"  # type: ignore[union-attr]


def test_append_of_nothing_creates_an_empty_blob(blobs: BlobStore) -> None:
    blobs.append("logs/empty.log", b"")
    info = blobs.stat("logs/empty.log")
    assert info is not None and info.size == 0


def test_stat(blobs: BlobStore) -> None:
    etag = blobs.put("dir/file.bin", b"12345")
    info = blobs.stat("dir/file.bin")
    assert info is not None
    assert (info.path, info.size, info.etag) == ("dir/file.bin", 5, etag)
    assert isinstance(info.modified, datetime) and info.modified.tzinfo is not None


def test_list_by_prefix_in_path_order(blobs: BlobStore) -> None:
    paths = ["b/2", "a/1", "b/10", "b/1", "c", "b", "ba/x"]
    etags = {path: blobs.put(path, path.encode()) for path in paths}
    assert [info.path for info in blobs.list("b/")] == ["b/1", "b/10", "b/2"]
    assert [info.path for info in blobs.list("b")] == ["b", "b/1", "b/10", "b/2", "ba/x"]
    listed = list(blobs.list())
    assert [info.path for info in listed] == sorted(paths)
    for info in listed:
        assert (info.size, info.etag) == (len(info.path), etags[info.path])
    assert list(blobs.list("zzz")) == []


def test_a_blob_and_a_folder_of_the_same_name_coexist(blobs: BlobStore) -> None:
    blobs.put("x", b"file")
    blobs.put("x/y", b"inside")
    assert blobs.get("x").data == b"file"  # type: ignore[union-attr]
    assert blobs.get("x/y").data == b"inside"  # type: ignore[union-attr]


def test_delete_is_idempotent(blobs: BlobStore) -> None:
    blobs.put("tmp/a", b"x")
    blobs.delete("tmp/a")
    assert blobs.get("tmp/a") is None
    assert list(blobs.list("tmp/")) == []
    blobs.delete("tmp/a")
    blobs.delete("never/there")


def test_large_blob(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    blobs.put("big.bin", data)
    assert blobs.get("big.bin").data == data  # type: ignore[union-attr]
    assert blobs.get("big.bin", offset=1_000_000, length=10).data == data[1_000_000:1_000_010]  # type: ignore[union-attr]
