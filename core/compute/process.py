"""Child processes of this host: start them, kill them, and hear when they end.

The local runtime runs every task attempt as a child process so that a crash of user code never takes a
worker down, and a worker never blocks for the length of a task: `ProcessSupervisor.start` returns as soon
as the process exists, and `on_exit` is called when it ends.

How exits are noticed: each child gets a Linux pidfd (`os.pidfd_open`, Linux 5.3+), which becomes readable
when the child terminates. All pidfds sit in one `selectors.DefaultSelector` (epoll) watched by ONE daemon
thread; a self-pipe wakes that thread when a child is added, a kill needs a deadline, or the supervisor
closes. There is no thread per child and no sleep-polling. The watcher thread alone owns the selector and
alone reaps children, so no zombie outlives its `on_exit` call.

Process groups: a child is started with `start_new_session=True`, so it leads a new session and process
group (pgid == pid) that its own children join. `kill` signals the whole group, and when the leader ends
(killed or not) whatever is left of its group is SIGKILLed before the leader is reaped: a task leaves no
stray grandchildren behind holding its log file open. (A grandchild that calls `setsid` itself escapes; that
is deliberate daemonisation and out of reach of group signals.) Group signals are only sent while the leader
is not yet reaped, so the pgid can never have been recycled for an unrelated group.

Warm starts: with `use_fork_server`, a Python task of the given interpreter (`python -u -P -m
core.tasks.runtime.bootstrap ...`) is forked from a zygote that has imported the task runtime
(`core.compute.forkserver`) instead of started from scratch: a few milliseconds instead of tens. The zygote
is its parent and reaps it, reporting its status over a socket; the supervisor still watches its pidfd,
signals its group and reports its end through `on_exit` exactly as for its own children.

Timestamps in `ProcessHandle` and `ProcessExit` are epoch milliseconds (the Jobs API's unit), read from the
system clock: this module touches the outside world, as `core/compute` may.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import FloeError

if TYPE_CHECKING:
    from core.compute.forkserver import ForkServer

__all__ = [
    "ProcessExit",
    "ProcessHandle",
    "ProcessSpec",
    "ProcessSupervisor",
    "SpawnError",
    "process_alive",
]

log = logging.getLogger(__name__)

_HANDLE_VERSION = 1


class SpawnError(FloeError):
    """The task process could not be started (missing executable, bad working directory, no resources).

    Reported as a failed task attempt, never as a crash of the worker."""

    error_code = "INTERNAL_ERROR"
    http_status = 500


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """What to run.

    key: the task run id as text; unique among the live processes of one supervisor.
    argv: the command; `argv[0]` is looked up on the PATH of `env` when it has no `/`.
    cwd: the working directory of the child.
    env: the FULL environment of the child; the supervisor adds nothing to it.
    log_path: stdout and stderr both go to this file (created with its parent folders, appended to). Both
        streams share one file description, so their order is the order the child wrote them in.
    """

    key: str
    argv: list[str]
    cwd: Path
    env: Mapping[str, str]
    log_path: Path


@dataclass(frozen=True, slots=True)
class ProcessHandle:
    """A started process, small enough to persist on the task record (`to_json` / `from_json`).

    `start_ticks` (field 22 of /proc/<pid>/stat: clock ticks after boot) and `boot_id` identify the process
    beyond its pid, so `process_alive` can tell it from a later process that got the same pid.
    """

    key: str
    pid: int
    pgid: int
    started_at: int  # epoch ms
    start_ticks: int
    boot_id: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": _HANDLE_VERSION,
                "key": self.key,
                "pid": self.pid,
                "pgid": self.pgid,
                "started_at": self.started_at,
                "start_ticks": self.start_ticks,
                "boot_id": self.boot_id,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ProcessHandle:
        """Parse `to_json` output. Raises ValueError for text that is not a handle or is from a newer Floe."""
        try:
            data = json.loads(text)
            version = int(data["v"])
            if version > _HANDLE_VERSION:
                raise ValueError(f"process handle version {version} is newer than {_HANDLE_VERSION}")
            return cls(
                key=str(data["key"]),
                pid=int(data["pid"]),
                pgid=int(data["pgid"]),
                started_at=int(data["started_at"]),
                start_ticks=int(data["start_ticks"]),
                boot_id=str(data["boot_id"]),
            )
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a process handle: {text[:200]!r}") from exc


@dataclass(frozen=True, slots=True)
class ProcessExit:
    """How a process ended.

    exit_code: the exit status, or minus the signal number when a signal ended it (as Popen reports).
    killed: True when `kill` or `close` was asked to end it (whatever signal finally did).
    started_at / ended_at: epoch ms; `ended_at` is when the watcher noticed the exit.
    """

    key: str
    pid: int
    exit_code: int
    killed: bool
    started_at: int
    ended_at: int
    log_path: Path

    @property
    def signal(self) -> int | None:
        """The signal that ended the process, or None if it exited by itself."""
        return -self.exit_code if self.exit_code < 0 else None

    def describe(self) -> str:
        """One line for a task's error message, e.g. 'exited with code 3', 'killed by SIGKILL'."""
        if self.signal is None:
            return f"exited with code {self.exit_code}"
        try:
            name = signal.Signals(self.signal).name
        except ValueError:
            name = f"signal {self.signal}"
        return f"killed by {name}"


# ------------------------------------------------------------------------------------------------ /proc


def _read_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


_BOOT_ID = _read_boot_id()
_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _boot_ticks() -> int:
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) // _TICK_NS


class _StartTicks:
    """The start time of a just-spawned child, in the clock ticks of /proc/<pid>/stat field 22.

    Reading /proc/<pid>/stat right after exec costs 1-3 ms (the kernel contends with the child starting
    up), ten times the spawn itself. But that field is the kernel's CLOCK_BOOTTIME at fork, in ticks: when
    CLOCK_BOOTTIME reads the same tick before and after the spawn (about 97% of spawns; a tick is 10 ms),
    that tick is the answer. The first such spawn checks the rule against /proc once; if it ever disagrees
    (an unusual kernel), /proc is read every time.
    """

    def __init__(self) -> None:
        self.clock_agrees: bool | None = None  # None until checked

    def of(self, pid: int, before: int, after: int) -> int:
        if before == after and self.clock_agrees:
            return before
        stat = _proc_stat(pid)  # the child is not reaped yet, so /proc/<pid> exists, zombie or not
        ticks = stat[1] if stat is not None else before
        if before == after and self.clock_agrees is None:
            self.clock_agrees = ticks == before
            if not self.clock_agrees:
                log.info("process start ticks do not follow CLOCK_BOOTTIME here; reading /proc instead")
        return ticks


_start_ticks = _StartTicks()


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks after boot) of a process, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Field 2 (comm) is in parentheses and may itself contain spaces and parentheses: split at the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    return fields[0].decode(), int(fields[19])


def process_alive(handle: ProcessHandle) -> bool:
    """Whether the process of `handle` still runs on this host (e.g. after its supervisor died).

    True only if a process with that pid exists, is not a zombie, and started at the same instant (clock
    ticks after boot) in the same boot as the one recorded: a recycled pid is not mistaken for the task.
    Ask on the host that started the process: a handle from another host (or an earlier boot of this one)
    has a different `boot_id` and is reported as not alive, because this host cannot see it.
    """
    if handle.boot_id != _BOOT_ID:
        return False
    stat = _proc_stat(handle.pid)
    if stat is None:
        return False
    state, start_ticks = stat
    return state != "Z" and start_ticks == handle.start_ticks


# ------------------------------------------------------------------------------------------------ supervisor


@dataclass(eq=False, slots=True)
class _Child:
    handle: ProcessHandle
    popen: subprocess.Popen[bytes] | None  # None for a child of the fork server, which reaps it
    pidfd: int | None  # watched by the selector (None: a forked child that ended before it could be watched)
    log_path: Path
    exit_code: int | None = None  # a forked child's status, as its zygote reported it
    ended: bool = False  # a forked child's pidfd fired: it is gone, its status may still be on its way
    killed: bool = False
    kill_deadline: float | None = None  # monotonic time at which SIGKILL follows the SIGTERM


class ProcessSupervisor:
    """Starts child processes and calls `on_exit` exactly once for each of them when it ends.

    `on_exit` runs on the supervisor's watcher thread: it must not block for long (record the result,
    enqueue a message, return). An exception it raises is logged and swallowed; it never stops the watcher.
    Inside `on_exit` the process is already gone from `running()`, so a retry may reuse its key at once.

    Thread-safe: `start`, `kill`, `is_running`, `running` and `close` may be called from any thread.
    """

    def __init__(self, on_exit: Callable[[ProcessExit], None], *, name: str = "floe-process-watcher") -> None:
        self._on_exit = on_exit
        self._fork_python: str | None = None
        self._fork_env: Mapping[str, str] = {}
        self._fork_server: ForkServer | None = None
        self._fork_losses = 0
        self._early_exits: dict[str, int] = {}  # forked children whose end arrived before their start
        self._lock = threading.Lock()
        self._live: dict[str, _Child] = {}
        self._starting: set[str] = set()
        self._pending: list[_Child] = []  # started, not yet registered with the selector
        self._abandoned: list[_Child] = []  # left running by close(kill=False)
        self._closing = False
        self._closed = False
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._watch, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------------- public

    def use_fork_server(self, python: str, env: Mapping[str, str]) -> None:
        """Start Python tasks of `python` (`python -u -P -m core.tasks.runtime.bootstrap ...`) by forking
        them from a warm zygote (`core.compute.forkserver`) instead of starting an interpreter. The zygote
        starts with the first such spec (which starts as an ordinary process meanwhile) and again if it
        dies; other specs start as ordinary processes."""
        self._fork_python, self._fork_env = python, dict(env)

    def start(self, spec: ProcessSpec) -> ProcessHandle:
        """Start `spec` and return at once; `on_exit` follows when the process ends.

        Raises ValueError if a live process already has `spec.key`, RuntimeError after `close`, and
        SpawnError if the process cannot be started (then `on_exit` is not called).
        """
        if not spec.argv:
            raise ValueError(f"process {spec.key!r}: argv is empty")
        with self._lock:
            if self._closing:
                raise RuntimeError("the process supervisor is closed")
            if spec.key in self._live or spec.key in self._starting:
                raise ValueError(f"a process with key {spec.key!r} is already running")
            self._starting.add(spec.key)
        try:
            child = self._spawn_forked(spec) or self._spawn(spec)
        except BaseException:
            with self._lock:
                self._starting.discard(spec.key)
            raise
        with self._lock:
            self._starting.discard(spec.key)
            closing = self._closing
            if not closing:
                self._live[spec.key] = child
                if child.popen is None:
                    child.exit_code = self._early_exits.pop(spec.key, None)
                if child.pidfd is not None:
                    self._pending.append(child)
        if closing:  # close() ran while this process was spawning: nobody would watch it
            _killpg(child.handle.pgid, signal.SIGKILL)
            if child.popen is not None:
                child.popen.wait()
            if child.pidfd is not None:
                os.close(child.pidfd)
            raise RuntimeError("the process supervisor is closed")
        if child.pidfd is None:  # a forked task gone before it could be watched
            self._forked_gone(child)
        self._wake()
        return child.handle

    def kill(self, key: str, *, grace_seconds: float = 5.0) -> bool:
        """Ask the process group of `key` to end: SIGTERM now, SIGKILL after `grace_seconds` if the leader
        still runs (at once when `grace_seconds <= 0`). Returns at once; `on_exit` reports the end with
        `killed=True`. Returns False if no live process has that key (unknown or already ended)."""
        with self._lock:
            child = self._live.get(key)
            if child is None:
                return False
            self._signal_locked(child, grace_seconds)
        self._wake()
        return True

    def is_running(self, key: str) -> bool:
        """True from `start` until just before `on_exit` is called for that key."""
        with self._lock:
            return key in self._live or key in self._starting

    def running(self) -> list[ProcessHandle]:
        """Handles of every live process, in start order."""
        with self._lock:
            return [child.handle for child in self._live.values()]

    def close(self, kill: bool = True, *, grace_seconds: float = 5.0, timeout: float | None = None) -> None:
        """Stop the supervisor. Idempotent.

        With `kill=True` every live process is killed as by `kill(key, grace_seconds=...)`, and close waits
        until each has been reaped and reported to `on_exit` (at most `timeout`, default grace + 10 s).
        With `kill=False` live processes are left running, unwatched and unreaped: only for a host that is
        about to exit, whose task records keep the handles for `process_alive` and re-driving.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("close() cannot be called from on_exit (the watcher thread)")
        with self._lock:
            if self._closed:
                return
            self._closing = True
            if kill:
                for child in self._live.values():
                    self._signal_locked(child, grace_seconds)
            else:
                self._abandoned.extend(self._live.values())
                self._live.clear()
                self._pending.clear()
        self._wake()
        self._thread.join(timeout if timeout is not None else max(grace_seconds, 0.0) + 10.0)
        if self._fork_server is not None:
            self._fork_server.close()
        if self._thread.is_alive():
            log.warning("process watcher did not stop in time; %d process(es) left", len(self._live))
            return
        with self._lock:
            self._closed = True
            leftovers = [*self._abandoned, *self._live.values()]
            self._abandoned.clear()
        for child in leftovers:
            if child.pidfd is not None:
                with contextlib.suppress(OSError):
                    os.close(child.pidfd)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> ProcessSupervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- spawning

    def _spawn_forked(self, spec: ProcessSpec) -> _Child | None:
        """Fork `spec` from the zygote when it is a Python task of the zygote's interpreter; None when it
        is not, or the zygote is not up (the caller then starts an ordinary process)."""
        python = self._fork_python
        if python is None or list(spec.argv[:5]) != _bootstrap_prefix(python):
            return None
        from core.compute.forkserver import ForkServer, ForkServerError

        with self._lock:
            server = self._fork_server
            if server is None or not server.alive:
                if server is not None:
                    self._fork_losses += 1
                    if self._fork_losses >= _MAX_FORK_SERVER_LOSSES:
                        log.error("the fork server keeps ending; Python tasks start as ordinary processes")
                        self._fork_python = None
                        return None
                    log.warning("the fork server ended; starting another")
                self._fork_server = ForkServer(
                    python, env=self._fork_env, on_exit=self._forked_exited, on_lost=self._fork_server_lost
                )
                return None  # this one starts as an ordinary process while the zygote imports
        try:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            started_at = time.time_ns() // 1_000_000
            ticks_before = _boot_ticks()
            pid = server.spawn(spec.key, list(spec.argv[5:]), spec.cwd, spec.env, spec.log_path)
        except (ForkServerError, OSError) as exc:
            log.warning("starting task %s as an ordinary process: %s", spec.key, exc)
            return None
        try:
            pidfd: int | None = os.pidfd_open(pid)
        except OSError:
            pidfd = None  # already reaped by the zygote: its status is on its way
        stat = _proc_stat(pid)
        handle = ProcessHandle(
            key=spec.key,
            pid=pid,
            pgid=pid,  # the fork calls setsid()
            started_at=started_at,
            start_ticks=stat[1] if stat is not None else ticks_before,
            boot_id=_BOOT_ID,
        )
        return _Child(handle=handle, popen=None, pidfd=pidfd, log_path=spec.log_path)

    def _forked_exited(self, key: str, exit_code: int) -> None:
        """The zygote reaped a forked task (called from the fork server's reader thread): report it once
        its pidfd has fired too."""
        with self._lock:
            child = self._live.get(key)
            if child is None:
                if key in self._starting:
                    self._early_exits[key] = exit_code  # `start` hands it to the child once registered
                return
            child.exit_code = exit_code
            ready = child.ended
            if ready:
                self._live.pop(key, None)
        if ready:
            self._report(child, exit_code)
            self._wake()  # a closing watcher waits for the last child

    def _fork_server_lost(self) -> None:
        """The zygote is gone: the forked tasks already gone will get no status from it."""
        with self._lock:
            waiting = [c for c in self._live.values() if c.popen is None and c.ended and c.exit_code is None]
        for child in waiting:
            self._forked_gone(child)

    def _forked_gone(self, child: _Child) -> None:
        """A forked task's process is gone: report it with the status its zygote sent, or wait for that
        status; a zygote that died meanwhile will send none, so the task counts as failed."""
        server = self._fork_server
        with self._lock:
            child.ended = True
            if self._live.get(child.handle.key) is not child:
                return  # reported already
            code = child.exit_code
            if code is None and server is not None and server.alive:
                return  # `_forked_exited` reports it
            self._live.pop(child.handle.key, None)
        if code is None:
            log.warning(
                "task process %s ended with the fork server, its exit status unknown", child.handle.pid
            )
            code = 1
        self._report(child, code)

    def _report(self, child: _Child, exit_code: int) -> None:
        ended = ProcessExit(
            key=child.handle.key,
            pid=child.handle.pid,
            exit_code=exit_code,
            killed=child.killed,
            started_at=child.handle.started_at,
            ended_at=time.time_ns() // 1_000_000,
            log_path=child.log_path,
        )
        try:
            self._on_exit(ended)
        except Exception:
            log.exception("on_exit failed for process %s (pid %d)", ended.key, ended.pid)

    def _spawn(self, spec: ProcessSpec) -> _Child:
        try:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            log_fd = os.open(spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise SpawnError(f"cannot open the log file {str(spec.log_path)!r}: {exc.strerror}") from exc
        try:
            started_at = time.time_ns() // 1_000_000
            ticks_before = _boot_ticks()
            # No preexec_fn and close_fds=True keep CPython on its vfork fast path; start_new_session
            # (setsid in the child) is compatible with it.
            popen = subprocess.Popen(
                list(spec.argv),
                cwd=spec.cwd,
                env=dict(spec.env),
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise SpawnError(
                f"cannot start task process {spec.argv[0]!r} in {str(spec.cwd)!r}: {exc.strerror or exc}"
            ) from exc
        except ValueError as exc:  # e.g. a NUL byte in a parameter or an environment value
            raise SpawnError(f"cannot start task process {spec.argv[0]!r}: {exc}") from exc
        finally:
            os.close(log_fd)
        ticks_after = _boot_ticks()
        try:
            pidfd = os.pidfd_open(popen.pid)
        except OSError as exc:
            # Cannot watch it (fd exhaustion): do not leave an unwatched process behind.
            _killpg(popen.pid, signal.SIGKILL)
            popen.wait()
            raise SpawnError(f"cannot watch task process {popen.pid}: {exc.strerror or exc}") from exc
        handle = ProcessHandle(
            key=spec.key,
            pid=popen.pid,
            pgid=popen.pid,
            started_at=started_at,
            start_ticks=_start_ticks.of(popen.pid, ticks_before, ticks_after),
            boot_id=_BOOT_ID,
        )
        return _Child(handle=handle, popen=popen, pidfd=pidfd, log_path=spec.log_path)

    # ------------------------------------------------------------------------------------------- signals

    def _signal_locked(self, child: _Child, grace_seconds: float) -> None:
        """Signal a live (hence unreaped) child's group. Caller holds the lock."""
        child.killed = True
        if grace_seconds <= 0:
            _killpg(child.handle.pgid, signal.SIGKILL)
            child.kill_deadline = None
            return
        deadline = time.monotonic() + grace_seconds
        if child.kill_deadline is None or deadline < child.kill_deadline:
            child.kill_deadline = deadline
        _killpg(child.handle.pgid, signal.SIGTERM)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the watcher is already due to wake
        except OSError:
            pass  # closed

    # ------------------------------------------------------------------------------------------- watcher

    def _watch(self) -> None:
        while True:
            try:
                if not self._watch_once():
                    return
            except Exception:  # never let the watcher die: a dead watcher means unreaped zombies
                log.exception("process watcher error")
                time.sleep(0.1)  # error path only: do not spin on a persistent failure

    def _watch_once(self) -> bool:
        """One turn of the watcher loop; False when the supervisor is closing and nothing is left to watch."""
        with self._lock:
            pending, self._pending = self._pending, []
            deadlines = [c.kill_deadline for c in self._live.values() if c.kill_deadline is not None]
            if self._closing and not self._live:
                return False
        for child in pending:
            self._selector.register(child.pidfd, selectors.EVENT_READ, child)
        timeout = None if not deadlines else max(0.0, min(deadlines) - time.monotonic())
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                _drain(self._wake_r)
            else:
                self._reap(key.data)
        self._escalate()
        return True

    def _escalate(self) -> None:
        now = time.monotonic()
        with self._lock:
            for child in self._live.values():
                if child.kill_deadline is not None and child.kill_deadline <= now:
                    child.kill_deadline = None
                    _killpg(child.handle.pgid, signal.SIGKILL)

    def _reap(self, child: _Child) -> None:
        assert child.pidfd is not None
        self._selector.unregister(child.pidfd)
        if child.popen is None:  # forked: the zygote reaps it and sends its status
            os.close(child.pidfd)
            child.pidfd = None
            self._forked_gone(child)
            return
        with self._lock:
            self._live.pop(child.handle.key, None)
        # The leader is dead but not reaped, so its pgid still names this group: clear out what is left.
        _killpg(child.handle.pgid, signal.SIGKILL)
        exit_code = child.popen.wait()
        os.close(child.pidfd)
        self._report(child, exit_code)


_MAX_FORK_SERVER_LOSSES = 3  # a zygote that ends this often (it cannot start?) is given up


def _bootstrap_prefix(python: str) -> list[str]:
    from core.compute.forkserver import BOOTSTRAP

    return [python, "-u", "-P", "-m", BOOTSTRAP]


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the group is already empty
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
        # EPERM: a member changed its credentials (setuid); nothing more we can do to it.


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass
