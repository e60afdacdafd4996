"""Task logs: ship a task process's local log file to a blob, and read the tail back for runs/get-output.

A task process writes stdout and stderr to one local file (see `core.compute.process`). `LogShipper.ship`
copies the bytes added since its last call to an append blob, so every host and the API can read them;
`read_tail` returns what get-output reports as `logs`: the LAST 5 MB, with `logs_truncated`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from core.store.ports import BlobStore

__all__ = ["MAX_APPEND_BYTES", "TAIL_BYTES", "LogShipper", "read_tail"]

MAX_APPEND_BYTES = 4 * 1024 * 1024  # one BlobStore.append is at most 4 MiB
TAIL_BYTES = 5 * 1024 * 1024  # runs/get-output returns the last 5 MB of logs
_NEWLINE_SEARCH_BYTES = 64 * 1024


class LogShipper:
    """Copies new bytes of local log files to blobs with `BlobStore.append`.

    The blob holds exactly the bytes of the local file shipped so far, so the offset to ship from is the
    blob's size. It is read once per blob path (one `stat`) and then remembered in memory: a shipper that
    restarts, or a second shipper, continues where the blob ends instead of appending the file twice.
    Call `forget` when a task is finished so a long-lived server does not keep offsets forever.

    Thread-safe; calls for the same blob path are serialised. Log files are append-only: a local file that
    became shorter than what was shipped is not shipped again.
    """

    def __init__(self, blobs: BlobStore, *, chunk_bytes: int = MAX_APPEND_BYTES) -> None:
        if not 0 < chunk_bytes <= MAX_APPEND_BYTES:
            raise ValueError(f"chunk_bytes must be between 1 and {MAX_APPEND_BYTES}, not {chunk_bytes}")
        self._blobs = blobs
        self._chunk_bytes = chunk_bytes
        self._lock = threading.Lock()
        self._offsets: dict[str, int] = {}
        self._path_locks: dict[str, threading.Lock] = {}

    def ship(self, local_path: Path, blob_path: str) -> int:
        """Append the bytes of `local_path` not shipped yet to `blob_path`, in appends of at most 4 MiB.

        Returns how many bytes were shipped: 0 when nothing is new or the local file does not exist. Bytes
        the child writes while this runs are left for the next call. A failed append raises the store's
        error; the bytes appended before it count as shipped, the rest are shipped by the next call.
        """
        with self._lock:
            path_lock = self._path_locks.setdefault(blob_path, threading.Lock())
        with path_lock:
            try:
                f = open(local_path, "rb")  # noqa: SIM115 - closed below; os.fstat needs the fd
            except FileNotFoundError:
                return 0
            with f:
                offset = self._offset(blob_path)
                end = os.fstat(f.fileno()).st_size
                if end <= offset:
                    return 0
                f.seek(offset)
                shipped = 0
                while offset < end:
                    chunk = f.read(min(self._chunk_bytes, end - offset))
                    if not chunk:
                        break
                    self._blobs.append(blob_path, chunk)
                    offset += len(chunk)
                    shipped += len(chunk)
                    with self._lock:
                        self._offsets[blob_path] = offset
                return shipped

    def expect_new(self, blob_path: str) -> None:
        """Say that `blob_path` does not exist yet (a new task attempt's log), so the first `ship` appends
        without reading the blob's size first: one storage call fewer per task."""
        with self._lock:
            self._offsets.setdefault(blob_path, 0)

    def forget(self, blob_path: str) -> None:
        """Drop what is remembered about `blob_path` (a later `ship` reads the blob's size again)."""
        with self._lock:
            self._offsets.pop(blob_path, None)
            self._path_locks.pop(blob_path, None)

    def _offset(self, blob_path: str) -> int:
        with self._lock:
            known = self._offsets.get(blob_path)
        if known is not None:
            return known
        info = self._blobs.stat(blob_path)
        offset = info.size if info is not None else 0
        with self._lock:
            self._offsets[blob_path] = offset
        return offset


def read_tail(blobs: BlobStore, blob_path: str, max_bytes: int = TAIL_BYTES) -> tuple[str, bool]:
    """The last `max_bytes` of a log blob as text, and whether anything before them was cut.

    Costs one `stat` and one ranged `get` whatever the size of the blob. Bytes are decoded as UTF-8 with
    `errors="replace"`. When the text is cut, it starts on a clean boundary: after the first newline if one
    lies within the first 64 KiB of the tail (so the first line shown is whole), otherwise after any UTF-8
    continuation bytes at the start (so the first character shown is whole). A missing blob is ("", False).
    """
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, not {max_bytes}")
    info = blobs.stat(blob_path)
    if info is None:
        return "", False
    truncated = info.size > max_bytes
    offset = info.size - max_bytes if truncated else 0
    blob = blobs.get(blob_path, offset=offset, length=max_bytes)
    if blob is None:
        return "", False
    data = blob.data
    if truncated:
        data = data[_clean_start(data) :]
    return data.decode("utf-8", errors="replace"), truncated


def _clean_start(data: bytes) -> int:
    newline = data.find(b"\n", 0, _NEWLINE_SEARCH_BYTES)
    if newline >= 0:
        return newline + 1
    start = 0
    # A UTF-8 sequence is at most 4 bytes, so at most 3 continuation bytes (0b10xxxxxx) can lead.
    while start < min(3, len(data)) and data[start] & 0xC0 == 0x80:
        start += 1
    return start
