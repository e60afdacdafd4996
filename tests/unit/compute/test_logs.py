"""LogShipper and read_tail against the real blob adapters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.compute.logs import MAX_APPEND_BYTES, TAIL_BYTES, LogShipper, read_tail
from core.store import Storage
from core.store.ports import Blob, BlobInfo, BlobStore

MiB = 1024 * 1024


class Recording(BlobStore):
    """The real adapter, with a record of the calls that cost a storage transaction."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.appends: list[int] = []
        self.gets: list[tuple[int, int | None]] = []
        self.stats = 0

    def put(self, path: str, data: bytes, *, if_absent: bool = False, etag: str | None = None) -> str:
        return self.inner.put(path, data, if_absent=if_absent, etag=etag)

    def get(self, path: str, *, offset: int = 0, length: int | None = None) -> Blob | None:
        self.gets.append((offset, length))
        return self.inner.get(path, offset=offset, length=length)

    def append(self, path: str, data: bytes) -> None:
        self.appends.append(len(data))
        self.inner.append(path, data)

    def stat(self, path: str) -> BlobInfo | None:
        self.stats += 1
        return self.inner.stat(path)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        return self.inner.list(prefix)

    def delete(self, path: str) -> None:
        self.inner.delete(path)


@pytest.fixture
def blobs(storage: Storage) -> Recording:
    """Every adapter's blobs (`storage` is parametrized over sqlite and azure), recorded."""
    return Recording(storage.blobs)


def content(blobs: BlobStore, path: str) -> bytes:
    blob = blobs.get(path)
    assert blob is not None
    return blob.data


# ------------------------------------------------------------------------------------------------ ship


def test_ship_copies_only_new_bytes(blobs: Recording, tmp_path: Path) -> None:
    local = tmp_path / "task.log"
    local.write_bytes(b"line 1\n")
    shipper = LogShipper(blobs)

    assert shipper.ship(local, "logs/run/task.log") == 7
    assert shipper.ship(local, "logs/run/task.log") == 0  # idempotent when nothing is new
    with local.open("ab") as f:
        f.write(b"line 2\n")
    assert shipper.ship(local, "logs/run/task.log") == 7

    assert content(blobs, "logs/run/task.log") == b"line 1\nline 2\n"
    assert blobs.stats == 1  # the offset is read from the blob once, then remembered


def test_ship_appends_at_most_4_mib_at_a_time(blobs: Recording, tmp_path: Path) -> None:
    data = bytes(range(256)) * (9 * MiB // 256) + b"tail"
    local = tmp_path / "big.log"
    local.write_bytes(data)

    assert LogShipper(blobs).ship(local, "big.log") == len(data)

    assert blobs.appends == [MAX_APPEND_BYTES, MAX_APPEND_BYTES, len(data) - 2 * MAX_APPEND_BYTES]
    assert content(blobs, "big.log") == data


def test_a_new_shipper_continues_where_the_blob_ends(blobs: Recording, tmp_path: Path) -> None:
    local = tmp_path / "task.log"
    local.write_bytes(b"before restart\n")
    LogShipper(blobs).ship(local, "t.log")
    with local.open("ab") as f:
        f.write(b"after restart\n")

    assert LogShipper(blobs).ship(local, "t.log") == len(b"after restart\n")
    assert content(blobs, "t.log") == b"before restart\nafter restart\n"


def test_ship_of_a_missing_file_ships_nothing(blobs: Recording, tmp_path: Path) -> None:
    assert LogShipper(blobs).ship(tmp_path / "not-yet.log", "x.log") == 0
    assert blobs.stat("x.log") is None


def test_forget_reads_the_offset_again(blobs: Recording, tmp_path: Path) -> None:
    local = tmp_path / "task.log"
    local.write_bytes(b"abc")
    shipper = LogShipper(blobs)
    shipper.ship(local, "f.log")

    shipper.forget("f.log")

    assert shipper.ship(local, "f.log") == 0
    assert content(blobs, "f.log") == b"abc"


def test_chunk_size_is_bounded(blobs: Recording) -> None:
    with pytest.raises(ValueError, match="chunk_bytes"):
        LogShipper(blobs, chunk_bytes=MAX_APPEND_BYTES + 1)


# ------------------------------------------------------------------------------------------------ tail


def test_tail_of_a_small_log_is_all_of_it(blobs: Recording) -> None:
    blobs.append("s.log", "héllo\nwörld\n".encode())
    assert read_tail(blobs, "s.log") == ("héllo\nwörld\n", False)


def test_tail_of_a_missing_log_is_empty(blobs: Recording) -> None:
    assert read_tail(blobs, "missing.log") == ("", False)


def test_tail_of_a_large_log_is_truncated_at_a_line_start(blobs: Recording) -> None:
    line = "ünïcödé line €\n".encode()  # multi-byte characters: any cut may split one
    data = line * (6 * MiB // len(line) + 1) + b"last line\n"
    for i in range(0, len(data), MAX_APPEND_BYTES):
        blobs.append("big.log", data[i : i + MAX_APPEND_BYTES])
    blobs.gets.clear()

    text, truncated = read_tail(blobs, "big.log")

    assert truncated is True
    assert blobs.gets == [(len(data) - TAIL_BYTES, TAIL_BYTES)]  # one ranged read, whatever the size
    assert text.startswith("ünïcödé line €\n")
    assert text.endswith("last line\n")
    assert "\ufffd" not in text
    assert len(text.encode()) <= TAIL_BYTES


def test_tail_without_newlines_starts_on_a_whole_character(blobs: Recording) -> None:
    blobs.append("one-line.log", ("€" * 1000).encode())  # 3 bytes each, no newline at all

    for max_bytes in (100, 101, 102):
        text, truncated = read_tail(blobs, "one-line.log", max_bytes=max_bytes)
        assert truncated is True
        assert text == "€" * (max_bytes // 3)
