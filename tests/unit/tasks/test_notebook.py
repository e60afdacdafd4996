"""Notebooks run end to end: `python -m core.tasks.notebook` in a task folder, with a real IPython kernel."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from core.tasks.notebook import notebook_argv
from core.tasks.runtime import read_outputs, write_inputs
from tests.fixtures.services import service_missing

DATA = Path(__file__).parent / "data"


def run(
    notebook: Path, task_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the notebook as the executor would: its own process, FLOE_TASK_DIR set, the workspace as cwd."""
    base = {k: v for k, v in os.environ.items() if k not in ("FLOE_TASK_DIR", "SPARK_REMOTE")}
    argv = [*notebook_argv(sys.executable, notebook), *extra]
    return subprocess.run(
        argv,
        cwd=notebook.parent.parent,
        env={**base, "FLOE_TASK_DIR": str(task_dir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "task"
    folder.mkdir()
    write_inputs(
        folder,
        widgets={"name": "world"},
        job_parameters={},
        task_key="report",
        run_id=1,
        job_id=2,
        upstream_values={"ingest": {"rows": 21}},
    )
    return folder


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    """A copy of the test notebooks, with a `core` package beside them that must not shadow Floe's."""
    folder = tmp_path / "ws" / "notebooks"
    shutil.copytree(DATA, folder)
    (folder / "core").mkdir()
    (folder / "core" / "__init__.py").write_text("raise ImportError('the user core package was imported')\n")
    return folder


def executed(task_dir: Path) -> Any:
    return nbformat.read(task_dir / "executed.ipynb", as_version=4)


def texts(cell: Any) -> list[str]:
    """Each output of a cell as one text: stream text, text/plain data, or 'ename: evalue'."""
    out = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type == "error":
            out.append(f"{o.ename}: {o.evalue}")
        else:
            out.append(o.data.get("text/plain", ""))
    return out


def test_source_notebook_reads_widgets_sets_values_and_exits(notebooks: Path, task_dir: Path) -> None:
    done = run(notebooks / "exit_early.py", task_dir)

    assert done.returncode == 0, done.stderr
    assert "hello, world\n" in done.stdout
    assert "must not" not in done.stdout
    outputs = read_outputs(task_dir)
    assert outputs.values == {"total": 42}
    assert outputs.exit_result == "rows=42"
    assert outputs.error is None and not (task_dir / "error.json").exists()
    assert not (notebooks / "must-not-exist.txt").exists()

    nb = executed(task_dir)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code", "code"]
    assert texts(nb.cells[1]) == ["hello, world\n"]
    assert texts(nb.cells[2]) == ["Notebook exited: rows=42\n"]
    assert nb.cells[3].outputs == [] and nb.cells[3].execution_count is None
    assert nb.cells[1].execution_count == 1
    assert "floe" not in nb.cells[1].source  # the setup cell is not saved


def test_ipynb_notebook_end_to_end(notebooks: Path, task_dir: Path) -> None:
    done = run(notebooks / "exit_early.ipynb", task_dir)

    assert done.returncode == 0, done.stderr
    outputs = read_outputs(task_dir)
    assert (outputs.values, outputs.exit_result) == ({"greeted": "world"}, "WORLD")
    nb = executed(task_dir)
    assert texts(nb.cells[1]) == ["hello world\n"]  # the saved "stale output" is gone
    assert texts(nb.cells[2]) == ["{'answer': 42}"]
    assert texts(nb.cells[3]) == ["Notebook exited: WORLD\n"]
    assert nb.cells[4].outputs == []  # never ran: its saved output is dropped too
    assert "{'answer': 42}" in done.stdout  # results are echoed to the task log


def test_failing_cell_stops_the_notebook(notebooks: Path, task_dir: Path) -> None:
    done = run(notebooks / "failing.py", task_dir)

    assert done.returncode == 1
    assert done.stdout.startswith("first cell ran\n")
    assert "must not run" not in done.stdout
    error = json.loads((task_dir / "error.json").read_text())
    assert error["error"] == "ZeroDivisionError: division by zero"
    assert error["cell"] == 1
    assert "\x1b" not in error["error_trace"]
    assert re.search(r"----> \d+ divide\(1, 0\)", error["error_trace"])
    assert "return a / b" in error["error_trace"]
    assert error["error_trace"].rstrip().endswith("ZeroDivisionError: division by zero")
    assert "ZeroDivisionError" in done.stderr  # the traceback is in the task log too

    nb = executed(task_dir)
    assert texts(nb.cells[0]) == ["first cell ran\n"]
    assert texts(nb.cells[1]) == ["ZeroDivisionError: division by zero"]
    assert nb.cells[2].outputs == []


def test_shell_pip_and_unsupported_magics(tmp_path: Path, task_dir: Path) -> None:
    notebook = tmp_path / "ws" / "magics.py"
    notebook.parent.mkdir()
    (notebook.parent / "neighbour.py").write_text("X = 'a module next to the notebook'\n")
    (notebook.parent / "traitlets.py").write_text("raise ImportError('shadowed the kernel')\n")
    notebook.write_text(
        "# Databricks notebook source\n"
        "import neighbour\nprint(neighbour.X)\n"
        "# COMMAND ----------\n"
        "# MAGIC %sh\n# MAGIC echo from-sh $((1 + 2))\n# MAGIC pwd\n"
        "# COMMAND ----------\n"
        "# MAGIC %pip --version\n"
        "# COMMAND ----------\n"
        "# MAGIC %scala\n# MAGIC val x = 1\n"
    )

    done = run(notebook, task_dir)

    assert done.returncode == 1
    nb = executed(task_dir)
    assert texts(nb.cells[0]) == ["a module next to the notebook\n"]
    assert texts(nb.cells[1]) == [f"from-sh 3\n{notebook.parent}\n"]  # the kernel runs in the notebook folder
    assert sys.prefix in "".join(texts(nb.cells[2]))  # pip of the kernel's own interpreter
    error = json.loads((task_dir / "error.json").read_text())
    assert error["cell"] == 3
    assert error["error"] == (
        "NotImplementedError: %scala cells are not supported by Floe "
        "(supported: %python, %sql, %md, %pip, %sh)"
    )


def test_a_failing_shell_cell_fails_the_notebook(tmp_path: Path, task_dir: Path) -> None:
    notebook = tmp_path / "ws" / "sh.py"
    notebook.parent.mkdir()
    notebook.write_text("# Databricks notebook source\n# MAGIC %sh\n# MAGIC exit 3\n")
    done = run(notebook, task_dir)
    assert done.returncode == 1
    assert json.loads((task_dir / "error.json").read_text())["error"].startswith("CalledProcessError: ")


def test_a_cell_over_its_timeout_fails(tmp_path: Path, task_dir: Path) -> None:
    notebook = tmp_path / "ws" / "slow.py"
    notebook.parent.mkdir()
    notebook.write_text("import time\ntime.sleep(60)\n")

    done = run(notebook, task_dir, "--timeout-per-cell", "1")

    assert done.returncode == 1
    error = json.loads((task_dir / "error.json").read_text())
    assert (error["error"], error["cell"]) == ("TimeoutError: cell 0 did not finish within 1 seconds", 0)
    assert texts(executed(task_dir).cells[0]) == ["TimeoutError: cell 0 did not finish within 1 seconds"]


def test_a_notebook_that_cannot_be_loaded(tmp_path: Path, task_dir: Path) -> None:
    notebook = tmp_path / "ws" / "x.scala"
    notebook.parent.mkdir()
    notebook.write_text("// Databricks notebook source\n")
    done = run(notebook, task_dir)
    assert done.returncode == 1
    error = json.loads((task_dir / "error.json").read_text())
    assert error == {
        "error": "UnsupportedNotebook: x.scala: Scala notebooks are not supported by Floe; "
        "only Python and SQL notebooks",
        "error_trace": "",
        "cell": None,
    }


def test_the_runner_needs_a_task_folder(notebooks: Path, tmp_path: Path) -> None:
    done = run(notebooks / "failing.py", tmp_path / "missing")
    assert done.returncode == 2
    assert "FLOE_TASK_DIR must name an existing folder" in done.stderr


# ------------------------------------------------------------------------------------------------ spark


@pytest.fixture
def java() -> None:
    if shutil.which("java") is None:
        service_missing("Java")


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.usefixtures("java")
def test_spark_in_a_python_notebook(notebooks: Path, task_dir: Path) -> None:
    """`spark` in a Python cell, and a `%sql` cell of two statements (a view, then a query on it)."""
    done = run(notebooks / "spark_count.py", task_dir)

    assert done.returncode == 0, done.stderr
    assert read_outputs(task_dir).values == {"count": 3}
    nb = executed(task_dir)
    assert texts(nb.cells[0]) == ["count 3\n"]
    table = nb.cells[1].outputs[0]
    assert table.output_type == "display_data"
    assert "<th>tens</th>" in table.data["text/html"]
    assert table.data["text/plain"].splitlines()[3:5] == ["|   0|", "|  10|"]


# ------------------------------------------------------------------------------------------------ stopping


def start_sleeper(tmp_path: Path, task_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """A runner whose notebook reports its kernel's pid, then sleeps; returns (runner, kernel pid)."""
    notebook = tmp_path / "ws" / "sleepy.py"
    notebook.parent.mkdir()
    pid_file = tmp_path / "kernel.pid"
    notebook.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FLOE_TASK_DIR"}
    runner = subprocess.Popen(
        notebook_argv(sys.executable, notebook),
        env={**env, "FLOE_TASK_DIR": str(task_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert runner.poll() is None and time.monotonic() < deadline, "the notebook did not start"
        time.sleep(0.05)
    return runner, int(pid_file.read_text())


def kernel_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_sigterm_stops_the_notebook_and_keeps_what_ran(tmp_path: Path, task_dir: Path) -> None:
    runner, kernel = start_sleeper(tmp_path, task_dir)

    runner.send_signal(signal.SIGTERM)

    assert runner.wait(timeout=30) == 1
    assert not kernel_alive(kernel)
    error = json.loads((task_dir / "error.json").read_text())
    assert error["error"].startswith("DeadKernelError: the kernel died")
    assert error["cell"] == 0
    assert texts(executed(task_dir).cells[0])[-1].startswith("DeadKernelError")


def test_the_kernel_does_not_outlive_a_killed_runner(tmp_path: Path, task_dir: Path) -> None:
    runner, kernel = start_sleeper(tmp_path, task_dir)

    runner.kill()
    runner.wait(timeout=30)

    deadline = time.monotonic() + 0.5  # PR_SET_PDEATHSIG: at once, not at ipykernel's next poll
    while kernel_alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not kernel_alive(kernel)
