"""`notebook_task`: find a notebook, load it, and run it cell by cell in an IPython kernel.

The host side needs `locate_notebook` (which file runs) and `notebook_argv` (the task process command);
the task process is `python -m core.tasks.notebook NOTEBOOK_PATH`, which calls `run_notebook` with the
folder named by `FLOE_TASK_DIR` (the file contract is in `core.tasks.runtime`).

Where `notebook_path` is looked for: the rules of `core.tasks.python_script` (a `file:` URI; an absolute
path of this host; an absolute path that does not exist here is a workspace path, looked up under the
workspace root, `/Workspace/` prefix dropped; a relative path is under the workspace, and must be relative
with `source: GIT`). A Databricks notebook path has no extension, so each candidate is tried as is, then
with `.py`, `.ipynb`, `.sql`, `.scala`, `.r` appended (the last two only to say they are not supported).

Formats: Jupyter `.ipynb` (nbformat 4), Databricks source files (`core.tasks.notebook_source`), and any
other `.py` file, which runs as a one-cell notebook.

How a notebook runs (`run_notebook`): one IPython kernel, started with this interpreter (`sys.executable`,
whatever kernelspec is installed) in the notebook's folder (Databricks' working directory for a
notebook), so modules next to the notebook import. A hidden first cell, never saved, installs `dbutils`,
`spark`, `display`, `displayHTML` and the `%%sql` magic (`core.tasks.runtime.kernel`). Then each cell in
order; each output is echoed to this process's stdout/stderr as it arrives (the task log; what user code
writes to the file descriptors directly, such as the Spark JVM's log, goes to the log only). The run
stops at the first failing cell (error.json, exit code 1) or after the cell that called
`dbutils.notebook.exit` (exit.json, exit code 0; the `NotebookExit` error in that cell's outputs is
replaced by a line "Notebook exited: <value>"). A cell over `timeout_per_cell`, a dead kernel and
SIGTERM (the kernel is shut down) fail the cell that was running. `executed.ipynb` is written whenever
the notebook could be loaded. The kernel lives in a session of its own (jupyter_client's choice) but
is SIGKILLed by Linux as soon as this process dies (`die_with_parent`).

nbformat and nbclient are imported only when a notebook is loaded or run.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.tasks.notebook_source import UnsupportedNotebook, parse_source, source_language
from core.tasks.paths import locate_file
from core.tasks.runtime.protocol import (
    ERROR_FILE,
    EXECUTED_NOTEBOOK_FILE,
    EXIT_FILE,
    TASK_DIR_ENV,
    read_json,
    write_bytes_atomic,
    write_json_atomic,
)

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = [
    "UnsupportedNotebook",
    "load_notebook",
    "locate_notebook",
    "main",
    "notebook_argv",
    "run_notebook",
    "strip_ansi",
]

_FIELD = "notebook_task.notebook_path"
_SUFFIXES = ("", ".py", ".ipynb", ".sql", ".scala", ".r")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_FLOE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder that holds the `core` package
_EXIT_ERROR = "NotebookExit"


# ------------------------------------------------------------------------------------------------ host side


def notebook_argv(python: str, path: Path) -> list[str]:
    """The command of the task process that runs the notebook at `path` (see `main`)."""
    return [python, "-u", "-P", "-m", "core.tasks.notebook", str(path)]


def locate_notebook(notebook_path: str, *, workspace: Path, git: bool = False) -> Path:
    """The notebook file for `notebook_path` (rules in the module docstring).

    Raises InvalidParameterValue for an empty value, a URI scheme other than `file:`, an absolute path
    with `git=True`, or a path that matches no file.
    """
    return locate_file(
        notebook_path, field=_FIELD, what="notebook to run", workspace=workspace, git=git, suffixes=_SUFFIXES
    )


# ------------------------------------------------------------------------------------------------ loading


def load_notebook(path: Path) -> NotebookNode:
    """The notebook in `path` as an nbformat v4 notebook.

    Raises UnsupportedNotebook for Scala/R notebooks and files that are not notebooks, and
    nbformat's errors for an invalid `.ipynb`.
    """
    import nbformat
    from nbformat import v4

    suffix = path.suffix.lower()
    if suffix in (".scala", ".r"):
        raise UnsupportedNotebook(
            f"{path.name}: {'Scala' if suffix == '.scala' else 'R'} notebooks are not supported by Floe; "
            "only Python and SQL notebooks"
        )
    text = path.read_text(encoding="utf-8")
    if suffix == ".ipynb":
        nb = nbformat.reads(text, as_version=4)
        nb.metadata["floe"] = {"source": path.name, "format": "ipynb"}
        return nb
    language = source_language(text)
    if language is None:
        if suffix == ".sql":
            raise UnsupportedNotebook(
                f"{path.name}: a .sql notebook must start with '-- Databricks notebook source'"
            )
        if suffix != ".py":
            raise UnsupportedNotebook(
                f"{path.name}: not a notebook (.ipynb, or a Databricks source .py / .sql file)"
            )
        cells = [v4.new_code_cell(text.rstrip("\n"))]
    else:
        cells = [
            v4.new_markdown_cell(c.source, metadata=dict(c.metadata))
            if c.cell_type == "markdown"
            else v4.new_code_cell(c.source, metadata=dict(c.metadata))
            for c in parse_source(text, language)
        ]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["floe"] = {"source": path.name, "format": f"databricks-{language}" if language else "python"}
    return nb


# ------------------------------------------------------------------------------------------------ running


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences (colours in IPython tracebacks)."""
    return _ANSI.sub("", text)


def run_notebook(
    path: Path,
    task_dir: Path,
    *,
    timeout_per_cell: int | None = None,
    kernel_name: str = "python3",
    cwd: Path | None = None,
) -> int:
    """Run the notebook at `path` and leave its outputs in `task_dir`; 0 on success, 1 on failure.

    `timeout_per_cell` (seconds, None for no limit) fails a cell that runs longer. `kernel_name` other
    than "python3" uses that installed kernelspec as is; "python3" always means this interpreter. `cwd`
    is the kernel's working directory, the notebook's folder by default.
    """
    from core.tasks.notebook_client import execute

    task_dir = task_dir.absolute()  # the kernel runs in another working directory
    try:
        nb = load_notebook(path)
    except Exception as exc:
        _write_error(task_dir, f"{type(exc).__name__}: {exc}", "", None)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for cell in nb.cells:  # outputs saved in an .ipynb are not this run's
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    env = {**os.environ, TASK_DIR_ENV: str(task_dir)}
    folder = (cwd or path.parent).absolute()
    outcome = asyncio.run(
        execute(
            nb,
            setup_code=_setup_code(folder),
            cwd=folder,
            env=env,
            kernel_name=kernel_name,
            timeout_per_cell=timeout_per_cell,
            exited=lambda: (task_dir / EXIT_FILE).exists(),
            echo=_echo,
            sockets_in=task_dir,
        )
    )
    if outcome.exited:
        _replace_exit_error(nb, outcome.cell, task_dir)
    _write_executed(nb, task_dir)
    if outcome.error is not None:
        _write_error(task_dir, outcome.error, outcome.error_trace, outcome.cell)
        return 1
    return 0


def _setup_code(folder: Path) -> str:
    # The kernel starts with -P (nothing of the notebook's folder can shadow its own modules); once it is
    # up, the folder goes first on sys.path, as a script's folder does, so modules next to the notebook
    # import. Floe's folder is first only while the runtime imports, so that a `core` package next to the
    # notebook cannot shadow Floe's (the limit of the name: user code importing its own `core` then gets
    # Floe's, already in sys.modules).
    return (
        "import sys as _floe_sys\n"
        f"_floe_sys.path.insert(0, {_FLOE_ROOT!r})\n"
        "try:\n"
        "    import core.tasks.runtime.kernel as _floe_kernel\n"
        "finally:\n"
        f"    _floe_sys.path.remove({_FLOE_ROOT!r})\n"
        "_floe_kernel.die_with_parent()\n"
        "_floe_kernel.install(get_ipython())\n"
        f"_floe_sys.path.insert(0, {str(folder)!r})\n"
        "del _floe_sys, _floe_kernel\n"
    )


def _echo(output: dict[str, Any]) -> None:
    """Copy one cell output to this process's stdout/stderr (the task log)."""
    kind = output.get("output_type")
    if kind == "stream":
        stream = sys.stderr if output.get("name") == "stderr" else sys.stdout
        stream.write(output.get("text", ""))
        stream.flush()
    elif kind == "error":
        if output.get("ename") == _EXIT_ERROR:
            return
        sys.stderr.write(strip_ansi("\n".join(output.get("traceback", []))) + "\n")
        sys.stderr.flush()
    elif kind in ("execute_result", "display_data"):
        text = output.get("data", {}).get("text/plain")
        if text:
            sys.stdout.write((text if isinstance(text, str) else "".join(text)) + "\n")
            sys.stdout.flush()


def _replace_exit_error(nb: NotebookNode, cell_index: int | None, task_dir: Path) -> None:
    """Show `dbutils.notebook.exit` as Databricks does, not as a NotebookExit traceback."""
    from nbformat import v4

    if cell_index is None:
        return
    result = (read_json(task_dir / EXIT_FILE) or {}).get("result", "")
    cell = nb.cells[cell_index]
    cell.outputs = [
        v4.new_output("stream", name="stdout", text=f"Notebook exited: {result}\n")
        if o.get("output_type") == "error" and o.get("ename") == _EXIT_ERROR
        else o
        for o in cell.outputs
    ]


def _write_executed(nb: NotebookNode, task_dir: Path) -> None:
    import nbformat

    write_bytes_atomic(task_dir / EXECUTED_NOTEBOOK_FILE, nbformat.writes(nb).encode("utf-8"))


def _write_error(task_dir: Path, error: str, trace: str, cell: int | None) -> None:
    write_json_atomic(
        task_dir / ERROR_FILE, {"error": strip_ansi(error), "error_trace": strip_ansi(trace), "cell": cell}
    )


# ------------------------------------------------------------------------------------------------ process


def main(argv: list[str] | None = None) -> int:
    """`python -m core.tasks.notebook NOTEBOOK_PATH [--timeout-per-cell SECONDS]`, in `FLOE_TASK_DIR`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m core.tasks.notebook")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout-per-cell", type=int, default=None)
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args(argv)
    task_dir = os.environ.get(TASK_DIR_ENV)
    if not task_dir or not Path(task_dir).is_dir():
        print(f"{TASK_DIR_ENV} must name an existing folder (got {task_dir!r})", file=sys.stderr)
        return 2
    return run_notebook(
        args.notebook.absolute(),
        Path(task_dir),
        timeout_per_cell=args.timeout_per_cell,
        kernel_name=args.kernel,
    )


if __name__ == "__main__":
    sys.exit(main())
