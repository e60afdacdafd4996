"""What user code sees inside a Floe task, and the files it shares with Floe.

User code gets the names it has on Databricks: `dbutils` (widgets, jobs.taskValues, notebook.exit),
`spark` (a SparkSession created on first use), `display` and `displayHTML`. Notebooks get them from the
kernel setup (`core.tasks.runtime.kernel`), Python scripts from `core.tasks.runtime.bootstrap`, and any
code can `from core.tasks.runtime import dbutils, spark`. Importing this package imports neither pyspark
nor IPython.

## The contract between Floe and a task process

The executor creates a private folder per task attempt and passes its path in the environment variable
`FLOE_TASK_DIR`. File names are constants of `core.tasks.runtime.protocol`; the executor's side is
`write_inputs` / `read_outputs` (`core.tasks.runtime.host`, loaded on first use).

Written by the executor before launch, read by the task:

- `params.json`: `{"widgets": {name: value}, "job_parameters": {name: value}, "task_key": str,
  "run_id": int, "job_id": int}`. `widgets` is the merge the executor computed (a notebook's
  base_parameters, then job parameters, then run-now notebook_params). `dbutils.widgets` reads it.
- `upstream_values.json`: `{task_key: {key: value}}`, the task values of every task of the run that
  finished before this one (`{}` for a task that set none). `dbutils.jobs.taskValues.get` reads it.

Written by the task, each atomically (a temporary file in the folder, then `os.replace`):

- `values.json`: `{key: value}`, rewritten whole by every `dbutils.jobs.taskValues.set(key, value)`.
  Keys are non-empty strings; each value is JSON (no NaN/Infinity) of at most 48 KiB (49152 bytes,
  UTF-8, compact separators), otherwise `set` raises ValueError naming the key (and the size).
- `exit.json`: `{"result": str}`, from `dbutils.notebook.exit(value)` (`str(value)`). `exit` then raises
  `NotebookExit` (a BaseException) to stop the code; runners treat it as success (exit code 0).
- notebooks only (`core.tasks.notebook`):
  - `executed.ipynb`: the notebook as executed, every cell with its outputs (the failing cell with its
    error output; cells after a failure or an exit have none). Written whenever the notebook could be
    loaded, whether it succeeded, failed, timed out or was stopped by SIGTERM.
  - `.kernel/`: the IPC sockets of the notebook's kernel while it runs (left behind only when the runner
    is SIGKILLed; the executor removes the whole folder with the attempt anyway).
  - `error.json`: `{"error": "<ExceptionName>: message", "error_trace": "<traceback, ANSI codes
    stripped>", "cell": <index of the failing cell in executed.ipynb, or null when the notebook could
    not be loaded or the kernel not started>}`, only when the notebook failed.

Exit codes: 0 for success (also after `dbutils.notebook.exit`), 1 when user code failed (an uncaught
exception, a failing cell), 2 for a bad invocation of the runner itself; `SystemExit(n)` in a script
exits with `n` as Python does. stdout and stderr of the process (for a notebook: each cell's stream
output and errors, echoed as they arrive) are the task's log.

Outside a Floe task (no `FLOE_TASK_DIR`), `dbutils` still works: widgets have only their declared
defaults, task values are kept in memory, `taskValues.get` returns its `debugValue`.
"""

from __future__ import annotations

from core.tasks.runtime.dbutils import TASK_VALUE_MAX_BYTES, DBUtils, InputWidgetNotDefined, NotebookExit
from core.tasks.runtime.display import display, displayHTML
from core.tasks.runtime.protocol import TASK_DIR_ENV
from core.tasks.runtime.spark import LazySparkSession

TYPE_CHECKING = False
if TYPE_CHECKING:
    from core.tasks.runtime.host import TaskOutputs, read_outputs, write_inputs

__all__ = [
    "TASK_DIR_ENV",
    "TASK_VALUE_MAX_BYTES",
    "DBUtils",
    "InputWidgetNotDefined",
    "LazySparkSession",
    "NotebookExit",
    "TaskOutputs",
    "dbutils",
    "display",
    "displayHTML",
    "read_outputs",
    "spark",
    "write_inputs",
]

dbutils = DBUtils()
spark = LazySparkSession()

_HOST_NAMES = frozenset({"TaskOutputs", "read_outputs", "write_inputs"})


def __getattr__(name: str) -> object:
    # The executor's helpers (`host`) import pathlib and dataclasses; a task process never needs them.
    if name in _HOST_NAMES:
        from core.tasks.runtime import host

        return getattr(host, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
