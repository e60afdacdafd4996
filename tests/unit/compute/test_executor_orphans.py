"""A Floe that died leaves task processes behind; the next one started on the same home kills them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.compute.process import ProcessHandle, process_alive
from core.executor import Launch, TaskExecutor
from core.store import Storage


def _executor(home: Path, workspace: Path, storage: Storage) -> TaskExecutor:
    return TaskExecutor(
        home=home,
        workspace=workspace,
        python=sys.executable,
        blobs=storage.blobs,
        on_ended=lambda outcome: None,
    )


def test_processes_of_a_dead_executor_are_killed_by_the_next(tmp_path: Path, sqlite_storage: Storage) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "sleep.py").write_text("import time\ntime.sleep(300)\n")
    home = tmp_path / "home"
    first = _executor(home, workspace, sqlite_storage)
    first.launch(
        Launch(
            job_id=1,
            run_id=2,
            task_run_id=3,
            task_key="t",
            attempt=0,
            task={"task_key": "t", "spark_python_task": {"python_file": "sleep.py"}},
            overriding={},
        )
    )
    record = home / "running" / "3.json"
    handle = ProcessHandle.from_json(record.read_text())
    assert process_alive(handle)
    first.supervisor.close(kill=False)  # the host dies: nothing stops its children

    second = _executor(home, workspace, sqlite_storage)
    try:
        deadline = time.monotonic() + 10
        while process_alive(handle) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(handle)
        assert not record.exists()
    finally:
        second.close()
