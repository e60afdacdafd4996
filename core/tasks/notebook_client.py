"""The kernel side of `core.tasks.notebook.run_notebook`: nbclient, one kernel, one cell at a time.

Imported only by a notebook task process (it imports nbclient and jupyter_client). The policy (which
files to write, what counts as success) stays in `core.tasks.notebook`; this module reports what
happened as an `Outcome`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode, v4

__all__ = ["Outcome", "execute"]

_PYTHON3 = "python3"
_EXIT_ERROR = "NotebookExit"
_SETUP_TIMEOUT_SECONDS = 120
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes, with the NUL


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the notebook run ended.

    cell: the index of the cell that failed or exited; None when every cell ran, or when the run failed
        before the first cell (kernel start, setup).
    exited: True when a cell called `dbutils.notebook.exit` (then `error` is None).
    error: "<ExceptionName>: message" when the run failed, else None; error_trace: its traceback text
        (may hold ANSI colour codes).
    """

    cell: int | None = None
    exited: bool = False
    error: str | None = None
    error_trace: str = ""


class _SameInterpreter(KernelSpecManager):
    """Kernel "python3" is ipykernel in THIS interpreter, whatever kernelspecs are installed elsewhere.

    `-P`: the notebook's folder (the kernel's cwd) must not shadow the kernel's own modules (the runner's
    setup code puts it on sys.path once the kernel is up).
    `capture_fd_output=False`: output written to the file descriptors directly (the Spark JVM's log4j,
    `os.system`) goes to the task log only, as on Databricks (driver log), not into the notebook; with
    capture on, ipykernel would copy it to both and the log would show it twice (once echoed by us).
    """

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == _PYTHON3:
            return KernelSpec(
                argv=[
                    sys.executable,
                    "-P",
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                    "--IPKernelApp.capture_fd_output=False",
                ],
                display_name="Python 3 (Floe)",
                language="python",
                metadata={},
            )
        return super().get_kernel_spec(kernel_name)


class _EchoingClient(NotebookClient):
    """A NotebookClient that hands every cell output to `echo` as soon as it arrives."""

    def __init__(self, nb: NotebookNode, echo: Callable[[dict[str, Any]], None] | None, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self._echo = echo

    def output(
        self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> NotebookNode | None:
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None and self._echo is not None:
            self._echo(out)
        return out


def _sockets_folder(parent: Path | None) -> str:
    """A private folder for the kernel's IPC sockets (no TCP port open to other local users)."""
    if parent is not None:
        folder = parent / ".kernel"
        if len(str(folder / "kernel-ipc-99999")) <= _MAX_SOCKET_PATH:
            folder.mkdir(mode=0o700, exist_ok=True)
            return str(folder)
    return tempfile.mkdtemp(prefix="floe-kernel-")


def _describe(ename: str, evalue: str) -> str:
    return f"{ename}: {evalue}" if evalue else ename


async def execute(
    nb: NotebookNode,
    *,
    setup_code: str,
    cwd: Path,
    env: Mapping[str, str],
    kernel_name: str,
    timeout_per_cell: int | None,
    exited: Callable[[], bool],
    echo: Callable[[dict[str, Any]], None] | None = None,
    sockets_in: Path | None = None,
) -> Outcome:
    """Run `setup_code` silently, then the code cells of `nb` in order (outputs recorded in `nb`).

    Stops after the first cell that fails, and after the first cell after which `exited()` is true.
    Never raises for a failure of the notebook or the kernel: that is the returned Outcome.
    The kernel's sockets go to `<sockets_in>/.kernel/` (removed at the end), or to a temporary folder
    when `sockets_in` is None or its path too long for a Unix socket.
    """
    sockets = _sockets_folder(sockets_in)
    try:
        return await _execute(
            nb,
            AsyncKernelManager(
                kernel_name=kernel_name,
                kernel_spec_manager=_SameInterpreter(),
                transport="ipc",
                connection_file=str(Path(sockets) / "kernel.json"),
            ),
            setup_code=setup_code,
            cwd=cwd,
            env=env,
            timeout_per_cell=timeout_per_cell,
            exited=exited,
            echo=echo,
        )
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


async def _execute(
    nb: NotebookNode,
    km: AsyncKernelManager,
    *,
    setup_code: str,
    cwd: Path,
    env: Mapping[str, str],
    timeout_per_cell: int | None,
    exited: Callable[[], bool],
    echo: Callable[[dict[str, Any]], None] | None,
) -> Outcome:
    client = _EchoingClient(
        nb,
        echo,
        km=km,
        kernel_name=km.kernel_name,
        timeout=timeout_per_cell,
        allow_error_names=[_EXIT_ERROR],
        shutdown_kernel="immediate",
        coalesce_streams=True,  # one stdout and one stderr block per cell, however many writes
    )
    outcome: Outcome | None = None
    try:
        async with client.async_setup_kernel(cleanup_kc=True, cwd=str(cwd), env=dict(env)):
            outcome = await _run_cells(client, nb, setup_code, exited)
    except Exception as exc:
        if outcome is None:  # the kernel could not start, or died between cells
            return Outcome(error=_describe(type(exc).__name__, str(exc)), error_trace=traceback.format_exc())
        # Else the run was over and only the clean-up failed: after SIGTERM, nbclient's own signal handler
        # has already shut the kernel down (and the cell reported a dead kernel); the outcome stands.
    return outcome or Outcome()


async def _run_cells(
    client: _EchoingClient, nb: NotebookNode, setup_code: str, exited: Callable[[], bool]
) -> Outcome:
    assert client.kc is not None
    reply = await client.kc.execute_interactive(
        setup_code, silent=True, store_history=False, timeout=_SETUP_TIMEOUT_SECONDS
    )
    content = reply["content"]
    if content.get("status") != "ok":
        ename, evalue = content.get("ename", "Error"), content.get("evalue", "")
        trace = "\n".join(content.get("traceback", []))
        return Outcome(
            error=f"Floe could not set up the kernel: {_describe(ename, evalue)}", error_trace=trace
        )
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        failure = await _run_cell(client, cell, index)
        if failure is not None:
            return failure
        if exited():
            return Outcome(cell=index, exited=True)
    return Outcome()


async def _run_cell(client: _EchoingClient, cell: NotebookNode, index: int) -> Outcome | None:
    try:
        await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
    except CellExecutionError:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            last = errors[-1]
            return Outcome(
                cell=index,
                error=_describe(last.get("ename", "Error"), last.get("evalue", "")),
                error_trace="\n".join(last.get("traceback", [])),
            )
        return Outcome(cell=index, error="CellExecutionError: the cell failed without an error output")
    except CellTimeoutError:
        return _stopped(
            cell, index, "TimeoutError", f"cell {index} did not finish within {client.timeout} seconds"
        )
    except DeadKernelError:
        return _stopped(
            cell, index, "DeadKernelError", "the kernel died (killed, out of memory, or the task was stopped)"
        )
    return None


def _stopped(cell: NotebookNode, index: int, ename: str, evalue: str) -> Outcome:
    """A cell that Floe stopped: the error is added to its outputs, as a failing cell would show it."""
    cell.setdefault("outputs", []).append(
        v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
    )
    return Outcome(cell=index, error=f"{ename}: {evalue}", error_trace=f"{ename}: {evalue}")
