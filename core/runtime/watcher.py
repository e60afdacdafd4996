"""The local folder watcher: the fast path of file-arrival triggers on `file://` locations.

It is only the fast path. Events can be lost (a file written before its folder was watched, an inotify
queue overflow, a folder replaced between two `watch()` calls, network file systems that send no events),
so the periodic reconcile listing (`core.schedule.listing.list_location`) remains what guarantees that
every arrival is seen; the watcher only makes the common case fast.

`FolderWatcher(on_file)` calls `on_file(absolute_path, size, modified_ms)` on watchdog's observer
thread for a file that was

- created, or moved into a watched folder (from outside or from within);
- written: on platforms that report a file closed after writing (Linux inotify), on that close, so a
  large copy is reported once complete rather than on every write; elsewhere on each modification.

A file written on Linux is thus typically reported twice, at creation (often still empty) and at close;
`record_arrival` counts the size change and the trigger's `wait_after_last_change` absorbs it.

Not reported: folders, files that vanished before they could be stat'ed, and paths that
`core.schedule.listing.ignored` leaves out of a listing (hidden and temporary files, judged below the
watched folder), so that events and listings agree. A path is reported under every watched folder that
contains it, spelled with that folder as given to `watch()` (a symlinked folder is watched at its target,
and events are mapped back). Exceptions raised by `on_file` are logged and do not stop the watcher.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from core.schedule.listing import ignored

log = logging.getLogger(__name__)

OnFile = Callable[[str, int, int], None]

# inotify reports IN_CLOSE_WRITE; FSEvents, kqueue, Windows and polling do not.
_REPORTS_CLOSE = Observer.__module__ == "watchdog.observers.inotify"
_WRITTEN: type[FileSystemEvent] = FileClosedEvent if _REPORTS_CLOSE else FileModifiedEvent
_EVENTS: list[type[FileSystemEvent]] = [FileCreatedEvent, FileMovedEvent, _WRITTEN]


@dataclass(frozen=True)
class _Root:
    """A folder the observer watches, by real path."""

    watch: ObservedWatch
    identity: tuple[int, int]  # (st_dev, st_ino): a folder deleted and re-created is a new watch


class FolderWatcher:
    """Watches a changing set of local folders (recursively) and reports files arriving in them."""

    def __init__(self, on_file: OnFile) -> None:
        self._on_file = on_file
        self._observer: BaseObserver = Observer()
        self._observer.daemon = True
        self._handler = _Handler(self._dispatch)
        self._roots: dict[str, _Root] = {}  # real path -> its watch
        # (folder as given, its real path), replaced whole so the observer thread reads it without a lock
        self._folders: tuple[tuple[str, str], ...] = ()
        self._failed: set[str] = set()  # folders whose watch failed, logged once
        self._lock = threading.Lock()  # serialises watch() and close()
        self._closed = False
        self._observer.start()

    def watch(self, folders: Iterable[str]) -> None:
        """Make `folders` (absolute paths, watched recursively) the watched set.

        Idempotent and cheap (a `stat` per folder): call it again whenever the set may have changed, and
        every few seconds anyway. A folder that does not exist yet is watched from the first call after
        it appears; one that was deleted and re-created is watched again.
        """
        wanted = sorted({os.path.normpath(os.path.abspath(folder)) for folder in folders})
        with self._lock:
            if self._closed:
                raise RuntimeError("FolderWatcher.watch() after close()")
            present: list[tuple[str, str, tuple[int, int]]] = []
            for folder in wanted:
                real = os.path.realpath(folder)
                try:
                    info = os.stat(real)
                except OSError:
                    continue  # not there (yet): looked at again on the next call
                if stat.S_ISDIR(info.st_mode):
                    present.append((folder, real, (info.st_dev, info.st_ino)))
            self._folders = tuple((folder, real) for folder, real, _ in present)
            self._schedule(_outermost({real: identity for _, real, identity in present}))

    def close(self) -> None:
        """Stop watching and end the observer thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._folders = ()
            self._roots.clear()
        self._observer.stop()
        self._observer.join(timeout=5)

    def __enter__(self) -> FolderWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _schedule(self, roots: dict[str, tuple[int, int]]) -> None:
        # An emitter stops itself when its folder is deleted; a folder re-created since may even reuse
        # the inode number, so a stopped emitter is replaced whatever the identity says.
        running = {e.watch for e in self._observer.emitters.copy() if e.should_keep_running()}
        for real, root in list(self._roots.items()):
            if roots.get(real) != root.identity or root.watch not in running:
                self._unschedule(real, root)
        for real, identity in roots.items():
            if real in self._roots:
                continue
            try:
                watch = self._observer.schedule(self._handler, real, recursive=True, event_filter=_EVENTS)
            except OSError as exc:  # permission denied, inotify watch limit: retried on the next call
                if real not in self._failed:
                    self._failed.add(real)
                    log.warning("cannot watch folder %s (%s); relying on periodic listings", real, exc)
                continue
            self._failed.discard(real)
            self._roots[real] = _Root(watch, identity)

    def _unschedule(self, real: str, root: _Root) -> None:
        del self._roots[real]
        try:
            self._observer.unschedule(root.watch)
        except (KeyError, OSError):  # the emitter already stopped itself (its folder was deleted)
            pass

    def _dispatch(self, path: str) -> None:
        reported: set[str] = set()
        for folder, real in self._folders:
            if not path.startswith(real.rstrip(os.sep) + os.sep):
                continue
            rel = path[len(real.rstrip(os.sep)) + 1 :]
            if ignored(rel.replace(os.sep, "/")):
                continue
            reported.add(os.path.join(folder, rel))
        for reported_path in sorted(reported):
            try:
                info = os.stat(reported_path)
            except OSError:
                continue  # gone again (a temporary file renamed away, deleted)
            if not stat.S_ISREG(info.st_mode):
                continue
            try:
                self._on_file(reported_path, info.st_size, info.st_mtime_ns // 1_000_000)
            except Exception:
                log.exception("file-arrival callback failed for %s", reported_path)


class _Handler(FileSystemEventHandler):
    def __init__(self, on_path: Callable[[str], None]) -> None:
        self._on_path = on_path

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        path = event.dest_path if isinstance(event, FileMovedEvent) else event.src_path
        if not path:
            return
        try:
            self._on_path(os.fsdecode(path))
        except Exception:  # never let the observer thread die
            log.exception("folder watcher failed on %r", event)


def _outermost(roots: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """The roots not inside another root: a recursive watch of `/a` already covers `/a/b`."""
    kept: dict[str, tuple[int, int]] = {}
    for real in sorted(roots):
        if not any(real == k or real.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept[real] = roots[real]
    return kept
