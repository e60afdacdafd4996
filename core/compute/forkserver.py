"""A fork server: Python task processes forked from a warm parent instead of started from scratch.

Starting `python -m core.tasks.runtime.bootstrap SCRIPT` costs an interpreter start and the imports of the
task runtime, tens of milliseconds per task. The fork server is one long-lived child of the host (the
*zygote*, `python -u -P -m core.compute.forkserver FD`) that has imported all of that once. Asked to spawn,
it forks; the fork becomes the task: a new session (so the task's process group is its own), stdout and
stderr on the task's log file, the task's working directory and environment, then the bootstrap runs the
script exactly as it would in a fresh interpreter, and the process exits through the interpreter's normal
shutdown (atexit handlers, flushed streams).

The host talks to the zygote over a socket pair, one JSON object per line:

- host → zygote: `{"key", "argv": [SCRIPT, ARGS...], "cwd", "env", "log"}`;
- zygote → host: `{"key", "pid"}` once the fork exists (or `{"key", "error"}`), and `{"key", "exit"}` when
  the task ended (the exit status, or minus the signal that ended it, as `Popen.returncode`).

The zygote is the tasks' parent, so it reaps them; before reaping a task it SIGKILLs what is left of the
task's process group, as `ProcessSupervisor` does for its own children. It is single-threaded (forking a
threaded process is unsafe), ignores SIGINT and SIGTERM (the host decides when it ends: EOF on the socket),
and exits when the host closes the socket or dies. Only tasks run by the interpreter that runs the zygote
can be forked from it (`ProcessSupervisor` checks the argv); others start as ordinary processes.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODULE = "core.compute.forkserver"
BOOTSTRAP = "core.tasks.runtime.bootstrap"
_SPAWN_TIMEOUT_S = 10.0


class ForkServerError(Exception):
    """The zygote is gone or refused a spawn; the caller starts the task as an ordinary process."""


class ForkServer:
    """The host's side: starts the zygote, asks it for tasks, hears of their ends (`on_exit(key, code)`,
    called from the server's reader thread) and of its own (`on_lost()`, once). Thread-safe."""

    def __init__(
        self,
        python: str,
        *,
        env: Mapping[str, str],
        on_exit: Callable[[str, int], None],
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.python = python
        self._on_exit = on_exit
        self._on_lost = on_lost
        self._lock = threading.Lock()  # one spawn request in flight at a time
        self._replies: dict[str, dict[str, Any]] = {}
        self._replied = threading.Condition()
        self._alive = True
        mine, theirs = socket.socketpair()
        self._sock = mine
        try:
            self._process = subprocess.Popen(
                [python, "-u", "-P", "-m", MODULE, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        finally:
            theirs.close()
        self._reader = threading.Thread(target=self._read, name="floe-forkserver", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self._alive

    def spawn(self, key: str, argv: list[str], cwd: Path, env: Mapping[str, str], log_path: Path) -> int:
        """Fork a task; returns its pid. Raises ForkServerError when the zygote cannot."""
        request = {"key": key, "argv": argv, "cwd": str(cwd), "env": dict(env), "log": str(log_path)}
        line = (json.dumps(request) + "\n").encode()
        with self._lock:
            if not self._alive:
                raise ForkServerError("the fork server is not running")
            try:
                self._sock.sendall(line)
            except OSError as exc:
                self._alive = False
                raise ForkServerError(f"the fork server is gone: {exc}") from exc
            with self._replied:
                if not self._replied.wait_for(
                    lambda: key in self._replies or not self._alive, _SPAWN_TIMEOUT_S
                ):
                    # Hung: end it, so it cannot fork this task later while the caller starts it itself.
                    self._alive = False
                    self._process.kill()
                    raise ForkServerError(f"the fork server did not answer in {_SPAWN_TIMEOUT_S:g} s")
                reply = self._replies.pop(key, None)
        if reply is None:
            raise ForkServerError("the fork server is gone")
        if "error" in reply:
            raise ForkServerError(str(reply["error"]))
        return int(reply["pid"])

    def close(self) -> None:
        """End the zygote (its running tasks are the caller's to kill first)."""
        with self._lock:
            self._alive = False
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=5)

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                try:
                    data = self._sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._handle(json.loads(line))
        finally:
            self._alive = False
            with self._replied:
                self._replied.notify_all()
            if self._on_lost is not None:
                self._on_lost()  # no status of a running task will come any more

    def _handle(self, message: dict[str, Any]) -> None:
        if "exit" in message:
            try:
                self._on_exit(str(message["key"]), int(message["exit"]))
            except Exception:
                log.exception("on_exit failed for forked task %s", message.get("key"))
            return
        with self._replied:
            self._replies[str(message["key"])] = message
            self._replied.notify_all()


# ------------------------------------------------------------------------------------------------- zygote


def serve(fd: int) -> dict[str, Any] | None:
    """The zygote's loop. Returns in a forked child with the request it is to run; returns None in the
    zygote when the host is gone."""
    # The imports every forked task shares (the bootstrap imports runpy and the runtime when it runs).
    import gc
    import runpy  # noqa: F401

    import core.tasks.runtime
    import core.tasks.runtime.bootstrap
    import core.tasks.runtime.spark  # noqa: F401

    gc.freeze()  # what the zygote imported stays out of every fork's collections (and its pages shared)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    sock = socket.socket(fileno=fd)
    children: dict[int, str] = {}
    buffer = b""
    while True:
        readable, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in readable:
            try:
                while os.read(wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
            _reap(sock, children)
        if sock in readable:
            data = sock.recv(65536)
            if not data:
                return None  # the host closed the socket or died
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as exc:
                    _send(sock, {"key": request["key"], "error": f"fork failed: {exc.strerror}"})
                    continue
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
                        signal.signal(sig, signal.SIG_DFL)
                    sock.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    return request
                children[pid] = request["key"]
                _send(sock, {"key": request["key"], "pid": pid})


def _reap(sock: socket.socket, children: dict[int, str]) -> None:
    while children:
        try:
            ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if ended is None:
            return
        pid = ended.si_pid
        try:
            os.killpg(pid, signal.SIGKILL)  # what is left of its group, before the pgid can be reused
        except (ProcessLookupError, PermissionError):
            pass
        _, status = os.waitpid(pid, 0)
        key = children.pop(pid, None)
        if key is not None:
            _send(sock, {"key": key, "exit": os.waitstatus_to_exitcode(status)})


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.sendall((json.dumps(message) + "\n").encode())
    except OSError:
        pass  # the host is gone; its end of the socket reads EOF


def _become_task(request: dict[str, Any]) -> int:
    """In the forked child: become the task process `python -u -P -m bootstrap SCRIPT ARGS...` would be."""
    os.setsid()
    log_fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for entry in reversed(os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        if entry and entry not in sys.path:
            sys.path.insert(1, entry)  # what the interpreter would have read from the task's PYTHONPATH
    from core.tasks.runtime.bootstrap import main

    return main(list(request["argv"]))


if __name__ == "__main__":
    task = serve(int(sys.argv[1]))
    sys.exit(0 if task is None else _become_task(task))
