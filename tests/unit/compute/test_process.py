"""ProcessSupervisor with real child processes: exits, signals, process groups, leaks."""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.compute.process import (
    ProcessExit,
    ProcessHandle,
    ProcessSpec,
    ProcessSupervisor,
    SpawnError,
    process_alive,
)
from tests.unit.compute.conftest import WAIT, Exits

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds are Linux-only")

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}


@pytest.fixture
def supervisor(exits: Exits) -> Iterator[ProcessSupervisor]:
    sup = ProcessSupervisor(exits)
    yield sup
    sup.close(grace_seconds=0)


def sh(tmp_path: Path, key: str, script: str, **env: str) -> ProcessSpec:
    return ProcessSpec(
        key=key,
        argv=["sh", "-c", script],
        cwd=tmp_path,
        env={**ENV, **env},
        log_path=tmp_path / "logs" / f"{key}.log",
    )


class Ready:
    """A FIFO the child writes a line to once it is ready (e.g. has installed a signal trap)."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "ready.fifo"
        os.mkfifo(self.path)
        # Non-blocking read end, opened before the child: select() waits until the child writes.
        self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)

    def wait(self, timeout: float = WAIT) -> str:
        readable, _, _ = select.select([self._fd], [], [], timeout)
        assert readable, f"child not ready within {timeout}s"
        return os.read(self._fd, 4096).decode()

    def close(self) -> None:
        os.close(self._fd)


@pytest.fixture
def ready(tmp_path: Path) -> Iterator[Ready]:
    r = Ready(tmp_path)
    yield r
    r.close()


def wait_gone(pid: int, timeout: float = WAIT) -> None:
    """Wait until `pid` has terminated (a zombie counts: it runs no more), via a pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        assert readable, f"process {pid} still runs after {timeout}s"
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ exits


def test_exit_zero_and_nonzero(supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path) -> None:
    ok = supervisor.start(sh(tmp_path, "ok", "exit 0"))
    bad = supervisor.start(sh(tmp_path, "bad", "exit 3"))

    assert exits.wait("ok").exit_code == 0
    ended = exits.wait("bad")
    assert (ended.exit_code, ended.killed, ended.signal) == (3, False, None)
    assert ended.pid == bad.pid and ok.pid != bad.pid
    assert ended.describe() == "exited with code 3"
    assert ended.started_at == bad.started_at <= ended.ended_at
    assert ended.log_path == tmp_path / "logs" / "bad.log"


def test_killed_by_a_signal_it_sent_itself(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    supervisor.start(sh(tmp_path, "k", "kill -KILL $$"))

    ended = exits.wait("k")
    assert (ended.exit_code, ended.killed, ended.signal) == (-signal.SIGKILL, False, signal.SIGKILL)
    assert ended.describe() == "killed by SIGKILL"


def test_on_exit_runs_on_the_watcher_after_the_key_is_released(exits: Exits, tmp_path: Path) -> None:
    seen: list[bool] = []
    sup: ProcessSupervisor

    def on_exit(ended: ProcessExit) -> None:
        seen.append(sup.is_running(ended.key))
        exits(ended)

    sup = ProcessSupervisor(on_exit, name="test-watcher")
    try:
        sup.start(sh(tmp_path, "a", "exit 0"))
        exits.wait("a")
    finally:
        sup.close()
    assert seen == [False]
    assert exits.threads == ["test-watcher"]


def test_stdout_and_stderr_interleave_in_one_log(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    spec = sh(tmp_path, "log", "echo out1; echo err1 >&2; echo out2; echo err2 >&2")
    spec.log_path.parent.mkdir()
    spec.log_path.write_text("before\n")  # appended to, never truncated

    supervisor.start(spec)
    exits.wait("log")

    assert spec.log_path.read_text() == "before\nout1\nerr1\nout2\nerr2\n"


def test_the_environment_and_cwd_are_exactly_the_given_ones(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    spec = ProcessSpec(
        key="env", argv=["/usr/bin/env"], cwd=workdir, env={"ONLY": "this"}, log_path=tmp_path / "env.log"
    )
    supervisor.start(spec)
    exits.wait("env")
    assert spec.log_path.read_text() == "ONLY=this\n"

    supervisor.start(sh(tmp_path, "pwd", "pwd; read line || echo stdin-is-empty"))
    exits.wait("pwd")
    assert (tmp_path / "logs" / "pwd.log").read_text() == f"{tmp_path}\nstdin-is-empty\n"


# ------------------------------------------------------------------------------------------------ kill


def test_kill_sends_sigterm_to_the_group(supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path) -> None:
    supervisor.start(sh(tmp_path, "s", "exec sleep 1000"))
    assert supervisor.is_running("s")

    assert supervisor.kill("s") is True

    ended = exits.wait("s")
    assert (ended.exit_code, ended.killed) == (-signal.SIGTERM, True)
    assert not supervisor.is_running("s")
    assert supervisor.kill("s") is False  # already gone
    assert supervisor.kill("unknown") is False


def test_kill_escalates_to_sigkill_after_the_grace(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path, ready: Ready
) -> None:
    supervisor.start(sh(tmp_path, "stubborn", f"trap '' TERM; echo ready > {ready.path}; sleep 1000"))
    ready.wait()

    t0 = time.monotonic()
    assert supervisor.kill("stubborn", grace_seconds=0.3)
    ended = exits.wait("stubborn")

    assert time.monotonic() - t0 >= 0.3
    assert (ended.exit_code, ended.killed) == (-signal.SIGKILL, True)


def test_kill_takes_down_grandchildren(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path, ready: Ready
) -> None:
    supervisor.start(sh(tmp_path, "tree", f"sleep 1000 & echo $! > {ready.path}; wait"))
    grandchild = int(ready.wait())
    assert process_alive_pid(grandchild)

    supervisor.kill("tree")

    assert exits.wait("tree").killed
    wait_gone(grandchild)


def test_grandchildren_left_behind_by_a_finished_task_are_killed(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path, ready: Ready
) -> None:
    supervisor.start(sh(tmp_path, "leaver", f"sleep 1000 & echo $! > {ready.path}; exit 0"))
    grandchild = int(ready.wait())

    ended = exits.wait("leaver")

    assert (ended.exit_code, ended.killed) == (0, False)
    wait_gone(grandchild)


def process_alive_pid(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------------------------------------ many


def test_twenty_processes_at_once_report_one_exit_each(exits: Exits, tmp_path: Path) -> None:
    sup = ProcessSupervisor(exits)
    try:
        handles = [sup.start(sh(tmp_path, f"p{i}", f"exit {i}")) for i in range(20)]
        exits.wait_count(20)
    finally:
        sup.close()  # joins the watcher: any duplicate report would have been made by now

    assert sorted((c.key, c.exit_code) for c in exits.calls) == sorted((f"p{i}", i) for i in range(20))
    assert {c.pid for c in exits.calls} == {h.pid for h in handles}


def test_an_on_exit_that_raises_does_not_break_the_watcher(
    tmp_path: Path, exits: Exits, caplog: pytest.LogCaptureFixture
) -> None:
    def on_exit(ended: ProcessExit) -> None:
        exits(ended)
        if ended.key == "first":
            raise RuntimeError("boom")

    sup = ProcessSupervisor(on_exit)
    try:
        sup.start(sh(tmp_path, "first", "exit 0"))
        exits.wait("first")
        sup.start(sh(tmp_path, "second", "exit 4"))
        assert exits.wait("second").exit_code == 4
    finally:
        sup.close()
    assert "on_exit failed for process first" in caplog.text


def test_close_kills_everything_and_stops_the_watcher(exits: Exits, tmp_path: Path, ready: Ready) -> None:
    sup = ProcessSupervisor(exits, name="closing-watcher")
    sup.start(sh(tmp_path, "a", "exec sleep 1000"))
    sup.start(sh(tmp_path, "b", "exec sleep 1000"))
    sup.start(sh(tmp_path, "c", f"trap '' TERM; echo ready > {ready.path}; sleep 1000"))
    ready.wait()
    assert {h.key for h in sup.running()} == {"a", "b", "c"}

    sup.close(grace_seconds=0.2)

    assert sorted((c.key, c.killed) for c in exits.calls) == [("a", True), ("b", True), ("c", True)]
    assert sup.running() == []
    assert "closing-watcher" not in {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="closed"):
        sup.start(sh(tmp_path, "late", "exit 0"))
    sup.close()  # idempotent


def test_a_key_is_unique_among_live_processes(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    supervisor.start(sh(tmp_path, "dup", "exec sleep 1000"))
    with pytest.raises(ValueError, match="'dup' is already running"):
        supervisor.start(sh(tmp_path, "dup", "exit 0"))
    supervisor.kill("dup", grace_seconds=0)
    exits.wait("dup")
    supervisor.start(sh(tmp_path, "dup", "exit 0"))  # free again once ended


def test_a_process_that_cannot_start_is_a_spawn_error(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    missing = ProcessSpec(
        key="m", argv=["no-such-program-floe"], cwd=tmp_path, env=ENV, log_path=tmp_path / "m.log"
    )
    with pytest.raises(SpawnError, match="cannot start task process 'no-such-program-floe'"):
        supervisor.start(missing)
    bad_cwd = dataclasses.replace(missing, argv=["true"], cwd=tmp_path / "nowhere")
    with pytest.raises(SpawnError, match="nowhere"):
        supervisor.start(bad_cwd)
    nul = dataclasses.replace(missing, argv=["echo", "a\0b"])
    with pytest.raises(SpawnError):
        supervisor.start(nul)

    assert not supervisor.is_running("m")
    supervisor.start(sh(tmp_path, "m", "exit 0"))  # the key was released
    exits.wait("m")
    assert [c.key for c in exits.calls] == ["m"]


# ------------------------------------------------------------------------------------------------ handles


def test_handle_json_round_trip(supervisor: ProcessSupervisor, tmp_path: Path) -> None:
    handle = supervisor.start(sh(tmp_path, "h", "exit 0"))

    assert ProcessHandle.from_json(handle.to_json()) == handle
    assert handle.pgid == handle.pid
    assert len(handle.to_json()) < 200
    with pytest.raises(ValueError, match="not a process handle"):
        ProcessHandle.from_json('{"v": 1}')
    with pytest.raises(ValueError, match="newer"):
        ProcessHandle.from_json(handle.to_json().replace('"v":1', '"v":99'))


def test_process_alive(supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path) -> None:
    handle = supervisor.start(sh(tmp_path, "alive", "exec sleep 1000"))

    assert process_alive(handle)
    # Same pid, another start time: a recycled pid is not our process.
    assert not process_alive(dataclasses.replace(handle, start_ticks=handle.start_ticks + 1))
    # Another boot (or host).
    assert not process_alive(dataclasses.replace(handle, boot_id="another-boot"))
    # Survives persistence.
    assert process_alive(ProcessHandle.from_json(handle.to_json()))

    supervisor.kill("alive", grace_seconds=0)
    exits.wait("alive")
    assert not process_alive(handle)


def test_start_ticks_match_proc_for_every_spawn(exits: Exits, tmp_path: Path) -> None:
    # The handle's start time is mostly derived from CLOCK_BOOTTIME, not read from /proc: check it agrees.
    sup = ProcessSupervisor(exits)
    try:
        handles = [sup.start(sh(tmp_path, f"t{i}", "exec sleep 1000")) for i in range(40)]
        assert all(process_alive(h) for h in handles)
    finally:
        sup.close(grace_seconds=0)


# ------------------------------------------------------------------------------------------------ leaks


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            found.update(int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except FileNotFoundError:
            pass
    return found


def test_fifty_processes_leak_no_fds_threads_or_zombies(tmp_path: Path) -> None:
    exits = Exits()
    threads_before = threading.active_count()
    sup = ProcessSupervisor(exits)
    fds_before = _open_fds()

    handles = [sup.start(sh(tmp_path, f"n{i}", "echo hi")) for i in range(50)]
    exits.wait_count(50)

    assert _open_fds() == fds_before
    assert not {h.pid for h in handles} & _children_of(os.getpid())  # all reaped
    sup.close()
    assert threading.active_count() == threads_before
    assert _open_fds() == fds_before - 3  # the watcher's epoll fd and its self-pipe are closed too


def test_on_exit_may_start_a_retry_with_the_same_key(exits: Exits, tmp_path: Path) -> None:
    sup: ProcessSupervisor

    def on_exit(ended: ProcessExit) -> None:
        exits(ended)
        if ended.exit_code == 1:
            sup.start(sh(tmp_path, ended.key, "exit 0"))

    sup = ProcessSupervisor(on_exit)
    try:
        sup.start(sh(tmp_path, "retry", "exit 1"))
        calls = exits.wait_count(2)
    finally:
        sup.close()
    assert [(c.key, c.exit_code) for c in calls] == [("retry", 1), ("retry", 0)]


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the abandoned Popen is "still running", on purpose
def test_close_without_kill_leaves_processes_running(exits: Exits, tmp_path: Path) -> None:
    sup = ProcessSupervisor(exits)
    handle = sup.start(sh(tmp_path, "survivor", "exec sleep 1000"))

    sup.close(kill=False)

    try:
        assert process_alive(handle)
        assert exits.calls == []
    finally:
        os.killpg(handle.pgid, signal.SIGKILL)
        os.waitpid(handle.pid, 0)
    assert not process_alive(handle)
