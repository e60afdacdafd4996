"""Python tasks forked from the warm zygote (core.compute.forkserver) behave as `python -u -P -m
core.tasks.runtime.bootstrap SCRIPT` would: argv, cwd, environment, output, exit status, signals, process
group, atexit; and a zygote that dies costs no task its end."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.compute.forkserver import BOOTSTRAP
from core.compute.process import ProcessSpec, ProcessSupervisor, process_alive
from tests.unit.compute.conftest import WAIT, Exits

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds are Linux-only")

ROOT = str(Path(__file__).resolve().parents[3])  # so the zygote and its tasks import core
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "PYTHONPATH": ROOT}


@pytest.fixture
def supervisor(exits: Exits) -> Iterator[ProcessSupervisor]:
    sup = ProcessSupervisor(exits)
    sup.use_fork_server(sys.executable, ENV)
    try:
        yield sup
    finally:
        sup.close(kill=True, grace_seconds=1)


def _spec(tmp_path: Path, key: str, code: str, *args: str, env: dict[str, str] | None = None) -> ProcessSpec:
    script = tmp_path / f"{key}.py"
    script.write_text(textwrap.dedent(code))
    argv = [sys.executable, "-u", "-P", "-m", BOOTSTRAP, str(script), *args]
    return ProcessSpec(key, argv, tmp_path, {**ENV, **(env or {})}, tmp_path / f"{key}.log")


def _zygote(supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path) -> int:
    """Warm the zygote up (its first task starts as an ordinary process) and return its pid."""
    supervisor.start(_spec(tmp_path, "warm-up", "pass\n"))
    exits.wait("warm-up")
    server = supervisor._fork_server
    assert server is not None and server.alive
    return server._process.pid


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_forked_task_sees_what_a_fresh_interpreter_would(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    zygote = _zygote(supervisor, exits, tmp_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "helper_mod.py").write_text("VALUE = 'from PYTHONPATH'\n")
    code = """
        import os, sys, atexit
        import helper_mod
        atexit.register(lambda: print("atexit ran"))
        print(__name__, sys.argv[1:], os.getcwd(), os.environ["TASK_X"], helper_mod.VALUE)
        print("to stderr", file=sys.stderr)
        print("session leader", os.getsid(0) == os.getpid())
        print("builtins", callable(dbutils.widgets.get))
        sys.exit(3)
    """
    env = {"TASK_X": "x-value", "PYTHONPATH": f"{ROOT}{os.pathsep}{extra}"}
    handle = supervisor.start(_spec(tmp_path, "t", code, "a", "b c", env=env))
    assert _parent(handle.pid) == zygote  # forked, not started
    ended = exits.wait("t")
    assert (ended.exit_code, ended.killed) == (3, False)
    lines = (tmp_path / "t.log").read_text().splitlines()
    assert lines[0] == f"__main__ ['a', 'b c'] {tmp_path} x-value from PYTHONPATH"
    assert lines[1:] == ["to stderr", "session leader True", "builtins True", "atexit ran"]
    assert "TASK_X" not in os.environ  # the host's own environment is untouched


def test_an_uncaught_exception_is_a_traceback_and_exit_code_1(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    _zygote(supervisor, exits, tmp_path)
    supervisor.start(_spec(tmp_path, "boom", "def f():\n    raise ValueError('bad input')\nf()\n"))
    assert exits.wait("boom").exit_code == 1
    log = (tmp_path / "boom.log").read_text()
    assert log.startswith("Traceback (most recent call last):") and log.rstrip().endswith(
        "ValueError: bad input"
    )
    assert "bootstrap" not in log and "forkserver" not in log  # the task's own frames only


def test_a_killed_task_ends_with_its_group(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    _zygote(supervisor, exits, tmp_path)
    code = """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(child.pid, flush=True)
        time.sleep(60)
    """
    handle = supervisor.start(_spec(tmp_path, "sleeper", code))
    deadline = time.monotonic() + WAIT
    log = tmp_path / "sleeper.log"  # the fork opens it, a moment after `start` returns
    while not (log.exists() and log.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    grandchild = int((tmp_path / "sleeper.log").read_text().split()[0])
    assert supervisor.kill("sleeper", grace_seconds=1)
    ended = exits.wait("sleeper")
    assert ended.killed and ended.exit_code == -signal.SIGTERM
    assert not process_alive(handle)
    deadline = time.monotonic() + WAIT
    while (
        Path(f"/proc/{grandchild}").exists() and "Z" not in Path(f"/proc/{grandchild}/stat").read_text()[:80]
    ):
        assert time.monotonic() < deadline, "the task's grandchild outlived it"
        time.sleep(0.01)


def test_only_python_tasks_of_the_zygotes_interpreter_are_forked(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    zygote = _zygote(supervisor, exits, tmp_path)
    spec = ProcessSpec("sh", ["/bin/sh", "-c", "echo plain; sleep 30"], tmp_path, ENV, tmp_path / "sh.log")
    handle = supervisor.start(spec)
    assert _parent(handle.pid) == os.getpid() != zygote  # an ordinary child
    deadline = time.monotonic() + WAIT
    while (tmp_path / "sh.log").read_text() != "plain\n":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    supervisor.kill("sh", grace_seconds=0)
    assert exits.wait("sh").killed


def test_a_dead_zygote_loses_no_end_and_is_replaced(
    supervisor: ProcessSupervisor, exits: Exits, tmp_path: Path
) -> None:
    zygote = _zygote(supervisor, exits, tmp_path)
    handle = supervisor.start(_spec(tmp_path, "orphan", "import time\ntime.sleep(0.5)\n"))
    assert _parent(handle.pid) == zygote
    os.kill(zygote, signal.SIGKILL)  # the task runs on, reparented, with nobody to report its status
    ended = exits.wait("orphan")
    assert ended.exit_code == 1  # its status died with the zygote: taken as failed, never lost
    supervisor.start(_spec(tmp_path, "after", "pass\n"))  # an ordinary process while a new zygote starts
    assert exits.wait("after").exit_code == 0
    supervisor.start(_spec(tmp_path, "forked-again", "pass\n"))
    assert exits.wait("forked-again").exit_code == 0
    server = supervisor._fork_server
    assert server is not None and server.alive and server._process.pid != zygote
