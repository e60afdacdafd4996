"""`FolderWatcher` on real folders: which files it reports, and how the watched set follows `watch()`.

Waits poll a condition until a deadline. To show that an event did *not* come, a test writes a file it
does expect afterwards (a barrier): events reach the callback in order, so once the barrier's arrived,
the earlier one would have too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.runtime.watcher import FolderWatcher

DEADLINE_SECONDS = 10.0


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()

    def __call__(self, path: str, size: int, modified_ms: int) -> None:
        with self._lock:
            self.events.append((path, size, modified_ms))

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _, _ in self.events]

    def saw(self, path: Path, size: int | None = None) -> bool:
        with self._lock:
            return any(p == str(path) and size in (None, s) for p, s, _ in self.events)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE_SECONDS:.0f} s: {what}")
        time.sleep(0.01)


def write(path: Path, data: bytes = b"x", mode: str = "wb") -> Path:
    with open(path, mode) as file:
        file.write(data)
    return path


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def watcher(recorder: Recorder) -> Iterator[FolderWatcher]:
    with FolderWatcher(recorder) as watcher:
        yield watcher


def arrived(recorder: Recorder, path: Path, size: int | None = None) -> None:
    wait_until(lambda: recorder.saw(path, size), f"{path} reported (size {size}); got {recorder.paths()}")


def test_created_file_with_size_and_modified_ms(
    tmp_path: Path, watcher: FolderWatcher, recorder: Recorder
) -> None:
    watcher.watch([str(tmp_path)])
    file = write(tmp_path / "a.csv", b"12345")
    arrived(recorder, file, 5)
    stat = file.stat()
    assert (str(file), 5, stat.st_mtime_ns // 1_000_000) in recorder.events


def test_modified_file(tmp_path: Path, watcher: FolderWatcher, recorder: Recorder) -> None:
    file = write(tmp_path / "a.csv", b"12")
    watcher.watch([str(tmp_path)])
    write(file, b"345", mode="ab")
    arrived(recorder, file, 5)


def test_moved_in_from_outside_and_renamed_within(
    tmp_path: Path, watcher: FolderWatcher, recorder: Recorder
) -> None:
    watched, outside = tmp_path / "in", tmp_path / "outside"
    watched.mkdir()
    outside.mkdir()
    write(outside / "a.csv", b"abc")
    watcher.watch([str(watched)])
    os.rename(outside / "a.csv", watched / "a.csv")
    arrived(recorder, watched / "a.csv", 3)
    write(watched / "b.csv.tmp", b"b")
    os.rename(watched / "b.csv.tmp", watched / "b.csv")
    arrived(recorder, watched / "b.csv", 1)
    assert str(watched / "b.csv.tmp") not in recorder.paths()


def test_nested_folders_and_a_folder_moved_in(
    tmp_path: Path, watcher: FolderWatcher, recorder: Recorder
) -> None:
    watched = tmp_path / "in"
    watched.mkdir()
    watcher.watch([str(watched)])
    (watched / "sub" / "deep").mkdir(parents=True)
    arrived(recorder, write(watched / "sub" / "deep" / "a.csv"))
    batch = tmp_path / "batch"
    batch.mkdir()
    write(batch / "b.csv")
    os.rename(batch, watched / "batch")
    arrived(recorder, watched / "batch" / "b.csv")
    assert all(os.path.isfile(path) for path in recorder.paths()), "folders are not reported"


def test_hidden_and_temporary_files_are_not_reported(
    tmp_path: Path, watcher: FolderWatcher, recorder: Recorder
) -> None:
    watcher.watch([str(tmp_path)])
    (tmp_path / ".staging").mkdir()
    write(tmp_path / ".staging" / "a.csv")
    write(tmp_path / ".hidden")
    write(tmp_path / "c.part")
    barrier = write(tmp_path / "barrier.csv")
    arrived(recorder, barrier)
    assert set(recorder.paths()) == {str(barrier)}


def test_a_folder_created_after_watch(tmp_path: Path, watcher: FolderWatcher, recorder: Recorder) -> None:
    later = tmp_path / "later" / "in"
    watcher.watch([str(later)])
    later.mkdir(parents=True)
    watcher.watch([str(later)])  # the runtime calls watch() every few seconds
    arrived(recorder, write(later / "a.csv"))


def test_a_folder_deleted_and_created_again(
    tmp_path: Path, watcher: FolderWatcher, recorder: Recorder
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    watcher.watch([str(folder)])
    arrived(recorder, write(folder / "a.csv"))
    (folder / "a.csv").unlink()
    folder.rmdir()
    watcher.watch([str(folder)])
    folder.mkdir()
    watcher.watch([str(folder)])
    arrived(recorder, write(folder / "b.csv"))


def test_a_folder_replaced_between_two_watch_calls(
    tmp_path: Path, watcher: FolderWatcher, recorder: Recorder
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    watcher.watch([str(folder)])
    arrived(recorder, write(folder / "a.csv"))
    (folder / "a.csv").unlink()
    folder.rmdir()
    folder.mkdir()  # may reuse the inode number; the old watch died with the old folder
    written = []

    def rewatched() -> bool:  # as the runtime does: watch() every few seconds, files keep coming
        watcher.watch([str(folder)])
        written.append(write(folder / f"b{len(written)}.csv"))
        return any(recorder.saw(path) for path in written)

    wait_until(rewatched, "a file in the re-created folder reported")


def test_unwatched_folders_stop_reporting(tmp_path: Path, watcher: FolderWatcher, recorder: Recorder) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    watcher.watch([str(a), str(b)])
    arrived(recorder, write(a / "1.csv"))
    watcher.watch([str(b)])
    write(a / "2.csv")
    arrived(recorder, write(b / "barrier.csv"))
    assert str(a / "2.csv") not in recorder.paths()


def test_a_nested_watched_folder_keeps_reporting_when_its_parent_is_unwatched(
    tmp_path: Path, watcher: FolderWatcher, recorder: Recorder
) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    watcher.watch([str(tmp_path), str(inner)])
    arrived(recorder, write(inner / "1.csv"))
    watcher.watch([str(inner)])
    write(tmp_path / "2.csv")
    arrived(recorder, write(inner / "3.csv"))
    assert str(tmp_path / "2.csv") not in recorder.paths()


def test_a_symlinked_folder_is_reported_under_the_name_it_was_given(
    tmp_path: Path, watcher: FolderWatcher, recorder: Recorder
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(real, target_is_directory=True)
    watcher.watch([str(alias)])
    write(real / "a.csv")
    arrived(recorder, alias / "a.csv")
    assert str(real / "a.csv") not in recorder.paths()


def test_a_failing_callback_is_logged_and_the_watcher_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()

    def on_file(path: str, size: int, modified_ms: int) -> None:
        if path.endswith("boom.csv"):
            raise RuntimeError("callback bug")
        recorder(path, size, modified_ms)

    with caplog.at_level(logging.ERROR, logger="core.runtime.watcher"), FolderWatcher(on_file) as watcher:
        watcher.watch([str(tmp_path)])
        write(tmp_path / "boom.csv")
        arrived(recorder, write(tmp_path / "after.csv"))
    assert any(
        "file-arrival callback failed" in r.getMessage()
        and r.exc_info
        and "callback bug" in str(r.exc_info[1])
        for r in caplog.records
    )


def test_close_is_idempotent_and_watch_after_close_refused(tmp_path: Path, recorder: Recorder) -> None:
    watcher = FolderWatcher(recorder)
    watcher.watch([str(tmp_path)])
    watcher.close()
    watcher.close()
    with pytest.raises(RuntimeError, match="after close"):
        watcher.watch([str(tmp_path)])
